"""GeneralizedLSSFPN camera neck (v2xfusion_tools/models/camera/lss_fpn.py)."""
import torch

from v2xfusion_tools.models.camera.lss_fpn import GeneralizedLSSFPN


def test_fpn_outputs_keep_input_resolutions_and_bevfusion_names():
    fpn = GeneralizedLSSFPN([128, 256, 512], 256)
    inputs = [torch.randn(2, 128, 8, 16), torch.randn(2, 256, 4, 8), torch.randn(2, 512, 2, 4)]
    outs = fpn(inputs)
    assert [tuple(o.shape) for o in outs] == [(2, 256, 8, 16), (2, 256, 4, 8)]
    shapes = {k: tuple(v.shape) for k, v in fpn.state_dict().items()}
    # lateral 1x1 convs see [level i, level above]: 256 + 512 at the coarsest pair, 128 + 256 below it
    assert shapes["lateral_convs.1.conv.weight"] == (256, 256 + 512, 1, 1)
    assert shapes["lateral_convs.0.conv.weight"] == (256, 128 + 256, 1, 1)
    assert shapes["fpn_convs.0.conv.weight"] == (256, 256, 3, 3)
    assert "fpn_convs.1.bn.running_mean" in shapes and "lateral_convs.0.conv.bias" not in shapes


def test_fpn_fine_output_depends_on_the_coarsest_level():
    fpn = GeneralizedLSSFPN([8, 16, 32], 8).eval()
    inputs = [torch.randn(1, 8, 8, 8), torch.randn(1, 16, 4, 4), torch.randn(1, 32, 2, 2, requires_grad=True)]
    fpn(inputs)[0].sum().backward()
    assert inputs[2].grad.abs().sum() > 0
