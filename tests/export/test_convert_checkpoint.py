"""`convert-checkpoint` (v2xfusion_tools/export/convert_checkpoint.py): a checkpoint written here in
BEVFusion / CUDA-V2XFusion naming (DataParallel prefix, derived grid buffers, pytorch_quantization
state, a branch our model lacks) maps onto Pipeline A by name and exports the same network."""
import numpy as np
import onnxruntime
import pytest
import torch

from models.batches import load_fixture
from v2xfusion_perception.errors import V2XError
from v2xfusion_tools.export.artifacts import load_model
from v2xfusion_tools.export.convert_checkpoint import convert_checkpoint
from v2xfusion_tools.export.onnx_pipeline_a import stage_io, stage_modules
from v2xfusion_tools.models import build_model

FOREIGN = "encoders.camera.vtransform.dtransform.0.weight"  # BEVFusion's LiDAR-depth branch
QUANTIZER = "encoders.camera.backbone.conv1._input_quantizer._amax"


def _published(model) -> dict:
    """The model's weights as a CUDA-V2XFusion training run saves them."""
    weights = {f"module.{k}": v.clone() for k, v in model.state_dict().items()}
    weights["module.encoders.camera.vtransform.frustum"] = torch.zeros(118, 4, 8, 3)
    weights[f"module.{QUANTIZER}"] = torch.tensor(3.5)
    weights[f"module.{FOREIGN}"] = torch.zeros(8, 1, 1, 1)
    return {"state_dict": weights, "meta": {"epoch": 100, "CLASSES": ["Car", "Pedestrian", "Cyclist"]}}


def test_published_names_map_onto_our_model_and_export_the_same_network(tmp_path):
    config = load_fixture("a", "kitti")
    torch.manual_seed(3)
    source = build_model(config).eval()
    torch.save(_published(source), tmp_path / "dense_epoch_100.pth")
    report, result = convert_checkpoint(config, tmp_path / "dense_epoch_100.pth", tmp_path / "artifacts",
                                        save=tmp_path / "converted.pth")
    assert report.stripped_prefix == "module."
    assert report.unexpected == [FOREIGN] and report.quantizer_state == [QUANTIZER]
    assert not report.missing and not report.mismatched
    assert set(report.loaded) == set(source.state_dict())
    assert FOREIGN in report.format()
    io = stage_io(source, config)["head"]
    session = onnxruntime.InferenceSession(str(result.folder / "head.onnx"))
    heatmap = session.run(None, {k: v.numpy() for k, v in io.inputs.items()})[0]
    with torch.no_grad():
        want = stage_modules(source)["head"](*io.inputs.values())[0].numpy()
    np.testing.assert_allclose(heatmap, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
    reloaded = load_model(config, tmp_path / "converted.pth")
    for key, value in source.state_dict().items():
        assert torch.equal(reloaded.state_dict()[key], value), key


def test_a_checkpoint_lacking_weights_or_a_pipeline_b_config_is_refused(tmp_path):
    config = load_fixture("a", "kitti")
    published = _published(build_model(config))
    del published["state_dict"]["module.heads.object.shared_conv.conv.weight"]
    torch.save(published, tmp_path / "partial.pth")
    with pytest.raises(V2XError, match="heads.object.shared_conv.conv.weight"):
        convert_checkpoint(config, tmp_path / "partial.pth", tmp_path / "out")
    with pytest.raises(V2XError, match="Pipeline B"):
        convert_checkpoint(load_fixture("b", "kitti"), tmp_path / "partial.pth", tmp_path / "out")
    torch.save({"model": "not weights"}, tmp_path / "bad.pth")
    with pytest.raises(V2XError, match="bad.pth"):
        convert_checkpoint(config, tmp_path / "bad.pth", tmp_path / "out")
