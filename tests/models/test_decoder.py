"""ConvFuser, SECOND and SECONDFPN (v2xfusion_tools/models/fuser.py, decoder/)."""
import torch

from v2xfusion_tools.models.decoder.second import SECOND
from v2xfusion_tools.models.decoder.second_fpn import SECONDFPN
from v2xfusion_tools.models.fuser import ConvFuser


def test_conv_fuser_concatenates_camera_then_lidar():
    fuser = ConvFuser([80, 64], 80)
    assert tuple(fuser.state_dict()["0.weight"].shape) == (80, 144, 3, 3)
    assert "1.running_mean" in fuser.state_dict()
    camera, lidar = torch.randn(2, 80, 16, 16), torch.randn(2, 64, 16, 16, requires_grad=True)
    out = fuser([camera, lidar])
    assert out.shape == (2, 80, 16, 16)
    out.sum().backward()
    assert lidar.grad.abs().sum() > 0


def test_second_and_fpn_return_to_the_bev_resolution():
    backbone = SECOND(80, [128, 256], layer_nums=[5, 5], layer_strides=[1, 2])
    neck = SECONDFPN([128, 256], [256, 256], upsample_strides=[1, 2], use_conv_for_no_stride=True)
    stages = backbone(torch.randn(2, 80, 16, 16))
    assert [tuple(s.shape) for s in stages] == [(2, 128, 16, 16), (2, 256, 8, 8)]
    assert neck(stages).shape == (2, 512, 16, 16)
    shapes = {k: tuple(v.shape) for k, v in {**backbone.state_dict(), **neck.state_dict()}.items()}
    assert shapes["blocks.0.0.weight"] == (128, 80, 3, 3)
    assert shapes["blocks.1.15.weight"] == (256, 256, 3, 3)  # opening conv + 5 x (conv, BN, ReLU)
    assert shapes["deblocks.0.0.weight"] == (256, 128, 1, 1)  # use_conv_for_no_stride: a 1x1 conv
    assert shapes["deblocks.1.0.weight"] == (256, 256, 2, 2)  # ConvTranspose2d (in, out, k, k)
    assert isinstance(neck.deblocks[1][0], torch.nn.ConvTranspose2d)


def test_fractional_upsample_stride_is_a_strided_conv():
    neck = SECONDFPN([16], [8], upsample_strides=[0.5])
    assert neck([torch.randn(1, 16, 8, 8)]).shape == (1, 8, 4, 4)
