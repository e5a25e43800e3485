"""Measured parity of the exported models against PyTorch: the figures tests/export asserts bounds on.

Run: OMP_NUM_THREADS=2 .venv/bin/python benchmarks/parity.py

Uses the export tests' tiny detectors (tests/export/trained.py: fixture geometry, head fitted to random
scenes so that boxes mean something) and prints, on held-out frames:
* Pipeline A, per ONNX file and output: max |ONNX Runtime - PyTorch| and max |OpenVINO FP32 - PyTorch|,
  each relative to max |PyTorch| (the tests' bound: 1e-4);
* Pipeline B, per unified-model output: the same for OpenVINO FP32 with our extension's custom ops;
* both: decoded boxes of OpenVINO FP32 vs PyTorch: counts and the largest centre difference (bound: 1 cm).
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime
import openvino as ov
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import v2xfusion_ov_extension  # noqa: E402
from export.trained import batch_camera_calibration, detector  # noqa: E402
from v2xfusion_tools.export.artifacts import export_artifacts  # noqa: E402
from v2xfusion_tools.export.geometry import read_geometry  # noqa: E402
from v2xfusion_tools.export.onnx_pipeline_a import stage_modules  # noqa: E402
from v2xfusion_tools.export.openvino_ir import F32_CONFIG  # noqa: E402
from v2xfusion_tools.quantize.pipeline_a import ChainA, openvino_runner, torch_runners  # noqa: E402

STAGES = ("camera.backbone", "lidar_pfe", "fuser", "head")
HELD_OUT = range(8, 20)


def relative(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.abs(np.asarray(got) - want).max() / max(np.abs(want).max(), 1e-12))


def pipeline_a(work: Path) -> None:
    config, model, batches = detector("a")
    folder = export_artifacts(config, model, work / "a", {"config": "tiny a"}).folder
    core = ov.Core()
    modules = stage_modules(model)
    chain = ChainA(model, torch_runners(model), model.heads["object"].output_names, None)
    print("Pipeline A (tiny detector), relative max error per output over the held-out frames:")
    worst = {}
    for frame in HELD_OUT:
        inputs = chain.run(batches[frame]).stage_inputs
        for stage in STAGES:
            path = folder / f"{stage}.onnx"
            with torch.no_grad():
                out = modules[stage](*(torch.from_numpy(np.asarray(v)) for v in inputs[stage].values()))
            want = [t.numpy() for t in (out if isinstance(out, tuple) else (out,))]
            ort = onnxruntime.InferenceSession(str(path)).run(None, inputs[stage])
            compiled = core.compile_model(str(path), "CPU", F32_CONFIG)
            got = compiled(inputs[stage])
            for k, output in enumerate(compiled.outputs):
                key = (stage, output.get_any_name())
                errors = (relative(ort[k], want[k]), relative(got[output], want[k]))
                worst[key] = tuple(max(a, b) for a, b in zip(worst.get(key, (0.0, 0.0)), errors))
    for (stage, name), (ort_error, ov_error) in worst.items():
        print(f"  {stage:<16} {name:<16} onnxruntime {ort_error:.2e}   openvino fp32 {ov_error:.2e}")
    runners = {stage: openvino_runner(core.compile_model(str(folder / f"{stage}.onnx"), "CPU", F32_CONFIG))
               for stage in STAGES}
    boxes_chain = ChainA(model, runners, model.heads["object"].output_names, None)
    report_boxes("A", model, batches, lambda batch: boxes_chain.run(batch).head_outputs)


def pipeline_b(work: Path) -> None:
    config, model, batches = detector("b")
    folder = export_artifacts(config, model, work / "b", {"config": "tiny b"},
                              calibration=batch_camera_calibration(config)).folder
    geometry = read_geometry(folder / "geometry")
    core = ov.Core()
    core.add_extension(str(v2xfusion_ov_extension.library_path()))
    compiled = core.compile_model(core.read_model(str(folder / "bevfusion_unified.onnx")), "CPU", F32_CONFIG)

    def run(batch):
        features, coors = model.encoders["lidar"]["voxelize"](batch.points)
        result = compiled({"img": batch.img.numpy(), "indices": geometry.indices, "intervals": geometry.intervals,
                           "voxel_features": features.numpy(), "coors": coors.int().numpy()})
        return {name: np.asarray(result[name]) for name in model.heads["object"].output_names}

    print("Pipeline B (tiny detector, unified model with BevPoolV2 / SparseConvolution / SparseToDense), "
          "relative max error per output over the held-out frames:")
    worst = {}
    for frame in HELD_OUT:
        got = run(batches[frame])
        with torch.no_grad():
            want = model(batches[frame]).preds[0]
        for name, value in got.items():
            worst[name] = max(worst.get(name, 0.0), relative(value, want[name].numpy()))
    for name, error in worst.items():
        print(f"  unified          {name:<16} openvino fp32 {error:.2e}")
    report_boxes("B", model, batches, run)


def report_boxes(pipeline: str, model, batches, head_outputs) -> None:
    head = model.heads["object"]
    counts, worst = [0, 0], 0.0
    for frame in HELD_OUT:
        outputs = head_outputs(batches[frame])
        got = head.predict([{name: torch.from_numpy(np.asarray(outputs[name])) for name in head.output_names}])[0]
        with torch.no_grad():
            want = model(batches[frame]).detections[0]
        counts[0] += len(want.boxes)
        counts[1] += len(got.boxes)
        if len(got.boxes) == len(want.boxes) and len(got.boxes):
            worst = max(worst, float((got.boxes[:, :3] - want.boxes[:, :3]).norm(dim=1).max()))
    print(f"  decoded boxes, pipeline {pipeline}: PyTorch {counts[0]}, OpenVINO FP32 {counts[1]} over "
          f"{len(HELD_OUT)} frames; largest centre difference {worst * 1000:.3f} mm")


def main() -> None:
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as work:
        pipeline_a(Path(work))
        pipeline_b(Path(work))


if __name__ == "__main__":
    main()
