"""ResNet image backbone (v2xfusion_tools/models/camera/resnet.py)."""
import torch

from v2xfusion_tools.models.camera.resnet import ResNet


def test_resnet34_returns_the_requested_stages_at_their_strides():
    net = ResNet(depth=34, out_indices=(1, 2, 3))
    outs = net(torch.randn(2, 3, 64, 128))
    assert [tuple(o.shape) for o in outs] == [(2, 128, 8, 16), (2, 256, 4, 8), (2, 512, 2, 4)]
    assert net.out_channels == [128, 256, 512] and net.out_strides == [8, 16, 32]


def test_resnet34_has_torchvision_names_and_block_counts():
    keys = set(ResNet(depth=34).state_dict())
    # ResNet-34: 3, 4, 6, 3 BasicBlocks; the first block of stages 2-4 downsamples
    for stage, blocks in enumerate((3, 4, 6, 3), start=1):
        assert f"layer{stage}.{blocks - 1}.bn2.running_var" in keys
        assert f"layer{stage}.{blocks}.conv1.weight" not in keys
        assert (f"layer{stage}.0.downsample.0.weight" in keys) == (stage > 1)
    assert {"conv1.weight", "bn1.weight", "layer1.0.conv1.weight",
            "layer2.0.downsample.1.running_mean"} <= keys
    assert not any(k.startswith("fc.") for k in keys)
    shapes = ResNet(depth=34).state_dict()
    assert tuple(shapes["layer3.0.conv1.weight"].shape) == (256, 128, 3, 3)
    assert tuple(shapes["layer3.0.downsample.0.weight"].shape) == (256, 128, 1, 1)


def test_resnet_gradients_reach_the_stem():
    net = ResNet(depth=18, out_indices=(3,))
    net(torch.randn(2, 3, 64, 64))[0].sum().backward()
    assert net.conv1.weight.grad is not None and net.conv1.weight.grad.abs().sum() > 0
