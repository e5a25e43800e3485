"""Loading weights by name (v2xfusion_tools/models/checkpoint.py)."""
import pytest
import torch

from v2xfusion_perception.errors import V2XError
from v2xfusion_tools.models import build_model
from v2xfusion_tools.models.camera.resnet import ResNet
from v2xfusion_tools.models.checkpoint import load_matching, read_state_dict
from .batches import load_fixture, random_batch


def test_imagenet_resnet_loads_into_the_camera_backbone_by_prefix():
    model = build_model(load_fixture("a", "kitti"))
    imagenet = ResNet(depth=34).state_dict()  # torchvision's resnet34 names, plus its classifier
    imagenet["fc.weight"], imagenet["fc.bias"] = torch.zeros(1000, 512), torch.zeros(1000)
    imagenet = {k: torch.randn_like(v) if v.is_floating_point() else v for k, v in imagenet.items()}
    report = load_matching(model, imagenet, prefix="encoders.camera.backbone.")
    assert sorted(report.unexpected) == ["encoders.camera.backbone.fc.bias",
                                         "encoders.camera.backbone.fc.weight"]
    assert report.missing == [] and report.mismatched == []
    assert torch.equal(model.state_dict()["encoders.camera.backbone.layer3.2.conv1.weight"],
                       imagenet["layer3.2.conv1.weight"])


def test_bevfusion_style_checkpoint_loads_with_spconv1_kernels_and_grid_constants(tmp_path):
    config = load_fixture("b", "v2x")
    torch.manual_seed(0)
    source = build_model(config)
    batch = random_batch(config)
    source(batch)
    source.eval()
    published = {}
    for key, value in source.state_dict().items():
        # spconv 1.x stored sparse kernels as (k0, k1, k2, in, out)
        published[key] = value.permute(1, 2, 3, 4, 0).contiguous() if value.dim() == 5 else value
    published["encoders.camera.vtransform.dx"] = torch.tensor([0.8, 0.8, 8.0])
    published["encoders.camera.vtransform.nx"] = torch.tensor([32, 32, 1])
    published["heads.object.task_heads.0.heatmap.1.weight"] = torch.zeros(10, 64, 3, 3)  # other classes
    torch.save({"state_dict": published, "meta": {"epoch": 3}}, tmp_path / "published.pth")
    torch.manual_seed(1)
    target = build_model(config).eval()
    report = load_matching(target, read_state_dict(tmp_path / "published.pth"))
    assert report.unexpected == []
    assert report.mismatched == [("heads.object.task_heads.0.heatmap.1.weight", (10, 64, 3, 3),
                                  (3, 64, 3, 3))]
    assert report.missing == ["heads.object.task_heads.0.heatmap.1.weight"]
    target.heads["object"].task_heads[0].heatmap[1].weight.data.copy_(
        source.heads["object"].task_heads[0].heatmap[1].weight.data)
    with torch.no_grad():
        expected, actual = source(batch).preds[0], target(batch).preds[0]
    for name in expected:
        assert torch.equal(expected[name], actual[name]), name


def test_unreadable_checkpoints_are_named(tmp_path):
    with pytest.raises(V2XError, match="checkpoint not found"):
        read_state_dict(tmp_path / "none.pth")
    (tmp_path / "text.pth").write_text("not a checkpoint")
    with pytest.raises(V2XError, match="text.pth: not a weights-only PyTorch checkpoint"):
        read_state_dict(tmp_path / "text.pth")
