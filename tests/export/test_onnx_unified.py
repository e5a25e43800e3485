"""Pipeline B's unified ONNX (v2xfusion_tools/export/onnx_unified.py): custom-domain nodes with their
attributes, metadata, onnx.checker, and OpenVINO (our extension, f32) against the PyTorch model: raw
outputs, decoded boxes, the FP16 variants."""
import numpy as np
import onnx
import openvino as ov
import torch

import v2xfusion_ov_extension
from v2xfusion_tools.export.geometry import read_geometry
from v2xfusion_tools.export.metadata import read_onnx_metadata
from v2xfusion_tools.export.openvino_ir import F32_CONFIG
from v2xfusion_tools.models.lidar.sparse_encoder import SparseBasicBlock

GUIDE_INPUTS = ["img", "indices", "intervals", "voxel_features", "coors"]  # guide §5.2.4


def _compiled(path):
    core = ov.Core()
    core.add_extension(str(v2xfusion_ov_extension.library_path()))
    return core.compile_model(core.read_model(str(path)), "CPU", F32_CONFIG)


def _inputs(model, batch, geometry) -> dict:
    features, coors = model.encoders["lidar"]["voxelize"](batch.points)
    return {"img": batch.img.numpy(), "indices": geometry.indices, "intervals": geometry.intervals,
            "voxel_features": features.numpy(), "coors": coors.int().numpy()}


def test_unified_onnx_holds_the_custom_nodes_their_attributes_and_the_geometry(detector_b, artifacts_b):
    config, model, _ = detector_b
    onnx_model = onnx.load(artifacts_b.folder / "bevfusion_unified.onnx")
    onnx.checker.check_model(onnx_model)
    graph = onnx_model.graph
    assert [i.name for i in graph.input] == GUIDE_INPUTS
    assert [o.name for o in graph.output] == ["heatmap", "reg", "height", "dim", "rot", "vel"]
    custom = [n for n in graph.node if n.domain == "v2xfusion"]
    kinds = [n.op_type for n in custom]
    encoder = model.encoders["lidar"]["backbone"]
    convs = sum(2 if isinstance(b, SparseBasicBlock) else 1 for stage in encoder.encoder_layers for b in stage) + 2
    assert kinds.count("BevPoolV2") == 1 and kinds.count("SparseToDense") == 1
    assert kinds.count("SparseConvolution") == convs
    attributes = {a.name for a in next(n for n in custom if n.op_type == "SparseConvolution").attribute}
    assert {"kernel_size", "stride", "padding", "dilation", "subm", "indice_key", "in_spatial_shape",
            "activation"} <= attributes
    assert not any(n.op_type == "BatchNormalization" for n in graph.node if "sparse_encoder" in n.name)
    metadata = read_onnx_metadata(artifacts_b.folder / "bevfusion_unified.onnx")
    assert metadata["pc_range"] == config["geometry"]["pc_range"]
    assert metadata["voxel_size"] == config["geometry"]["voxel_size"]
    assert metadata["sparse_shape"] == list(encoder.sparse_shape)


def test_openvino_unified_outputs_and_boxes_match_the_pytorch_model(detector_b, artifacts_b):
    _, model, batches = detector_b
    geometry = read_geometry(artifacts_b.folder / "geometry")
    compiled = _compiled(artifacts_b.folder / "bevfusion_unified.onnx")
    head = model.heads["object"]
    boxes = 0
    for frame in (8, 11, 15):
        result = compiled(_inputs(model, batches[frame], geometry))
        with torch.no_grad():
            want = model(batches[frame])
        for name in head.output_names:
            got, ref = np.asarray(result[name]), want.preds[0][name].numpy()
            assert np.abs(got - ref).max() <= 1e-4 * np.abs(ref).max(), (frame, name)
        decoded = head.predict([{n: torch.from_numpy(np.asarray(result[n])) for n in head.output_names}])[0]
        expected = want.detections[0]
        assert decoded.boxes.shape[0] == expected.boxes.shape[0], frame
        if len(decoded.boxes):
            assert (decoded.boxes[:, :3] - expected.boxes[:, :3]).abs().max() < 0.01
        boxes += len(decoded.boxes)
    assert boxes >= 3


def test_fp16_onnx_and_fp16_ir_stay_within_fp16_rounding(detector_b, artifacts_b):
    _, model, batches = detector_b
    geometry = read_geometry(artifacts_b.folder / "geometry")
    inputs = _inputs(model, batches[9], geometry)
    want = _compiled(artifacts_b.folder / "bevfusion_unified.onnx")(inputs)
    for name in ("bevfusion_unified_fp16.onnx", "bevfusion_unified_fp16.xml"):
        got = _compiled(artifacts_b.folder / name)(inputs)
        for key in ("heatmap", "reg", "dim"):
            ref = np.asarray(want[key])
            assert np.abs(np.asarray(got[key]) - ref).max() < 2e-2 * np.abs(ref).max(), (name, key)
    fp16_onnx = onnx.load(artifacts_b.folder / "bevfusion_unified_fp16.onnx")
    assert sum(i.data_type == onnx.TensorProto.FLOAT16 for i in fp16_onnx.graph.initializer) > 50
    assert (artifacts_b.folder / "bevfusion_unified_fp16.onnx").stat().st_size < \
        0.6 * (artifacts_b.folder / "bevfusion_unified.onnx").stat().st_size
