"""Pipeline A INT8: NNCF PTQ of each of the four stages (guide §4.2.5) and its validation.

Calibration inputs of every stage come from running the FP32 PyTorch model frame by frame, with the
glue the runtime does in kernels (BEVPool-v2, pillar scatter) in PyTorch between the stages; the PFE is
fed padded to its static V when the artifact folder has a static-V PFE (preferred, as the guide's
quantize_all). Each stage is quantized on its own inputs and saved as <stem>_int8.xml. Validation
runs the whole chain twice on held-out frames, every stage FP32 and every stage INT8 (both through
OpenVINO in f32 inference precision), and compares the decoded boxes (agreement.py) and each stage's
outputs.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import openvino as ov
import torch

from v2xfusion_tools.export.manifest import add_model, model_file, read_manifest, verify_files, write_manifest
from v2xfusion_tools.export.metadata import onnx_metadata_text
from v2xfusion_tools.export.onnx_pipeline_a import STAGES, pad_pillars, stage_modules
from v2xfusion_tools.export.openvino_ir import compile_fp32, make_core, save_ir
from v2xfusion_tools.models import BEVFusion, FusionBatch
from v2xfusion_tools.models.camera.bev_pool import bev_pool_v2
from v2xfusion_tools.progress import ProgressFactory, stage
from v2xfusion_tools.quantize.agreement import Agreement, agreement
from v2xfusion_tools.quantize.detections import FrameBoxes, HeadDecoder
from v2xfusion_tools.quantize.ptq import FUSER_INPUT_CONV, HEAD_TASK_BRANCHES, PtqSettings, quantize_model

# A stage runner: {input name: array} -> outputs in the stage's output order.
Runner = Callable[[Mapping[str, np.ndarray]], list[np.ndarray]]

# Where INT8 costs accuracy (measured on the quick-trained KITTI model, box agreement with FP32 at BEV
# IoU 0.7 with only that stage INT8): the PFE's input mixes absolute coordinates (tens of metres) with
# centimetre offsets, and its INT8 version, even with the point decoration in float and only the PFN
# MatMul quantized, matched 88% of the boxes: the PFE (a 9 -> 64 MatMul per point, a few ms) stays
# floating point in the INT8 set (its <stem>_int8.xml holds no quantizer). The fuser's input convolution and the head's task branches stay
# float (ptq.FUSER_INPUT_CONV, ptq.HEAD_TASK_BRANCHES).
DEFAULT_SETTINGS = {
    "camera.backbone": PtqSettings(),
    "lidar_pfe": PtqSettings(keep_float=True),
    "fuser": PtqSettings(ignored_patterns=(FUSER_INPUT_CONV,)),
    "head": PtqSettings(ignored_patterns=(HEAD_TASK_BRANCHES,)),
}


@dataclass
class FrameRun:
    """One frame through the chain: every stage's inputs and the head's outputs by name."""

    stage_inputs: dict[str, dict[str, np.ndarray]]
    head_outputs: dict[str, np.ndarray]
    dropped_pillars: int = 0


@dataclass
class QuantizationReport:
    """Per stage: the settings used and the INT8 file; validation: box agreement INT8 vs FP32 and the
    relative RMS error of each stage's outputs (INT8 stage vs FP32 stage on the same FP32 inputs)."""

    stages: dict[str, dict[str, Any]] = field(default_factory=dict)
    agreement: Agreement | None = None
    stage_errors: dict[str, float] = field(default_factory=dict)
    calibration_frames: int = 0
    dropped_pillars: int = 0  # over the validation frames

    def as_dict(self) -> dict[str, Any]:
        return {"stages": self.stages, "calibration_frames": self.calibration_frames,
                "pillars_beyond_static_v": self.dropped_pillars,
                "validation": None if self.agreement is None else self.agreement.as_dict(),
                "stage_output_relative_rms_error": self.stage_errors}


class ChainA:
    """Pipeline A on one frame: camera -> BEVPool-v2, voxelize -> PFE -> scatter, fuser, head.

    runners: one per stage (PyTorch or OpenVINO); the glue between them is the model's PyTorch
    reference of the runtime's kernels. static_voxels: pad / cut the PFE input to that many pillars.
    """

    def __init__(self, model: BEVFusion, runners: Mapping[str, Runner], output_names: Sequence[str],
                 static_voxels: int | None) -> None:
        self.model, self.runners, self.output_names = model, runners, list(output_names)
        self.static_voxels = static_voxels

    @torch.no_grad()
    def run(self, batch: FusionBatch, until: str | None = None) -> FrameRun:
        """The chain on one frame; with `until` only as far as that stage's inputs (head_outputs empty)."""
        if batch.img.shape[0] != 1:
            raise ValueError("batch: the stages run one frame at a time")
        inputs: dict[str, dict[str, np.ndarray]] = {"camera.backbone": {"img": batch.img.numpy()}}
        pfe_in, real, coors, dropped = self._pillars(batch)
        inputs["lidar_pfe"] = pfe_in
        if until in ("camera.backbone", "lidar_pfe"):
            return FrameRun(inputs, {}, dropped)
        model = self.model
        depth, feature = self.runners["camera.backbone"](inputs["camera.backbone"])
        geometry = model.encoders["camera"]["vtransform"].prepare_bevpool_v2(model.camera_geometry(batch))
        camera_bev = bev_pool_v2(torch.from_numpy(depth), torch.from_numpy(feature), geometry)
        (pillars,) = self.runners["lidar_pfe"](pfe_in)
        scatter = model.encoders["lidar"]["backbone"].pts_middle_encoder
        lidar_bev = scatter(torch.from_numpy(pillars[:real]), coors[:real].long(), 1)
        inputs["fuser"] = {"camera_bev": camera_bev.numpy(), "lidar_bev": lidar_bev.numpy()}
        if until == "fuser":
            return FrameRun(inputs, {}, dropped)
        (middle,) = self.runners["fuser"](inputs["fuser"])
        inputs["head"] = {"middle": middle}
        if until == "head":
            return FrameRun(inputs, {}, dropped)
        return FrameRun(inputs, dict(zip(self.output_names, self.runners["head"](inputs["head"]))), dropped)

    def _pillars(self, batch: FusionBatch) -> tuple[dict[str, np.ndarray], int, torch.Tensor, int]:
        """PFE inputs (padded / cut to the static V), the count of real pillars, their coors, and how
        many pillars beyond the static V were dropped."""
        voxels, num_points, coors = self.model.encoders["lidar"]["voxelize"](batch.points)
        num_points, coors = num_points.to(torch.int32), coors.to(torch.int32)
        real, dropped = voxels.shape[0], 0
        if self.static_voxels is not None:
            dropped = max(0, real - self.static_voxels)
            real = min(real, self.static_voxels)
            voxels, num_points, coors = pad_pillars(voxels[:real], num_points[:real], coors[:real], self.static_voxels)
        return {"voxels": voxels.numpy(), "num_points": num_points.numpy(), "coors": coors.numpy()}, real, coors, dropped


class StageSamples:
    """The calibration inputs of one stage, computed frame by frame when NNCF iterates (nothing held)."""

    def __init__(self, chain: ChainA, frames: Sequence[FusionBatch], stage_name: str) -> None:
        self.chain, self.frames, self.stage_name = chain, frames, stage_name

    def __len__(self) -> int:
        return len(self.frames)

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        for i in range(len(self.frames)):
            yield self.chain.run(self.frames[i], until=self.stage_name).stage_inputs[self.stage_name]


def torch_runners(model: BEVFusion) -> dict[str, Runner]:
    """The FP32 PyTorch stage modules as runners (the export's own modules)."""
    modules = stage_modules(model)

    def runner(module: torch.nn.Module) -> Runner:
        def run(inputs: Mapping[str, np.ndarray]) -> list[np.ndarray]:
            with torch.no_grad():
                out = module(*(torch.from_numpy(np.asarray(v)) for v in inputs.values()))
            return [t.numpy() for t in (out if isinstance(out, tuple) else (out,))]
        return run

    return {name: runner(modules[name]) for name in STAGES}


def openvino_runner(compiled: ov.CompiledModel) -> Runner:
    def run(inputs: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        result = compiled(dict(inputs))
        return [np.asarray(result[output]) for output in compiled.outputs]
    return run


@dataclass
class ValidationBoxes:
    """Detections of the validation frames by the FP32 and the INT8 chain: at the manifest's score
    threshold (what the agreement compares), and at `ap_score_threshold` (for AP) when one was given."""

    fp32: list[FrameBoxes] = field(default_factory=list)
    int8: list[FrameBoxes] = field(default_factory=list)
    fp32_for_ap: list[FrameBoxes] = field(default_factory=list)
    int8_for_ap: list[FrameBoxes] = field(default_factory=list)


def quantize_pipeline_a(folder: Path, model: BEVFusion, calibration: Sequence[FusionBatch],
                        validation: Sequence[FusionBatch], settings: Mapping[str, PtqSettings] | None = None,
                        threads: int | None = None, ap_score_threshold: float | None = None,
                        progress: ProgressFactory | None = None) -> tuple[QuantizationReport, ValidationBoxes]:
    """Quantize the four stages of the artifact folder, add them to its manifest, validate.

    calibration / validation: one-frame batches (evaluation mode), read when needed. Returns the
    report and the FP32 / INT8 detections of the validation frames (for AP against ground truth).
    """
    manifest = read_manifest(folder)
    verify_files(folder, manifest)
    settings = {**DEFAULT_SETTINGS, **(settings or {})}
    sources = {name: model_file(manifest, name, "fp32", prefer_static=True) for name in STAGES}
    static_voxels = sources["lidar_pfe"]["static_voxels"]
    head_outputs = list(manifest["head"]["outputs"])
    report = QuantizationReport(calibration_frames=len(calibration))
    recorder = ChainA(model, torch_runners(model), head_outputs, static_voxels)
    core = make_core()
    int8_files = {}
    with stage(progress, "NNCF PTQ (4 stages)", len(STAGES)) as advance:
        for name in STAGES:
            source = sources[name]
            samples = StageSamples(recorder, calibration, name)
            quantized = quantize_model(core.read_model(str(folder / source["file"])), samples, settings[name])
            xml = save_ir(quantized, folder / f"{Path(source['file']).stem}_int8.xml",
                          onnx_metadata_text(folder / source["file"]), compress_to_fp16=False)
            add_model(manifest, folder, name, "int8", xml.name, source["static_voxels"])
            int8_files[name] = xml
            report.stages[name] = {"source": source["file"], "int8": xml.name, **settings[name].describe()}
            advance(1)
    fp32 = ChainA(model, {name: openvino_runner(compile_fp32(core, folder / sources[name]["file"], threads))
                          for name in STAGES}, head_outputs, static_voxels)
    int8 = ChainA(model, {name: openvino_runner(compile_fp32(core, int8_files[name], threads)) for name in STAGES},
                  head_outputs, static_voxels)
    decoder = HeadDecoder(manifest)
    low = HeadDecoder(manifest, ap_score_threshold) if ap_score_threshold is not None else None
    boxes = ValidationBoxes()
    errors: dict[str, list[float]] = {name: [] for name in STAGES}
    with stage(progress, "validation FP32 vs INT8", len(validation)) as advance:
        for i in range(len(validation)):
            batch = validation[i]
            run32, run8 = fp32.run(batch), int8.run(batch)
            boxes.fp32.append(decoder(run32.head_outputs))
            boxes.int8.append(decoder(run8.head_outputs))
            if low is not None:
                boxes.fp32_for_ap.append(low(run32.head_outputs))
                boxes.int8_for_ap.append(low(run8.head_outputs))
            report.dropped_pillars += run32.dropped_pillars
            for name in STAGES:  # each INT8 stage on the FP32 chain's inputs
                want = fp32.runners[name](run32.stage_inputs[name])
                got = int8.runners[name](run32.stage_inputs[name])
                errors[name].append(max(relative_rms_error(g, w) for g, w in zip(got, want)))
            advance(1)
    report.agreement = agreement(boxes.fp32, boxes.int8, len(manifest["class_names"]))
    report.stage_errors = {name: float(np.mean(values)) if values else 0.0 for name, values in errors.items()}
    manifest["quantization"] = report.as_dict()
    write_manifest(folder, manifest, "quantize")
    return report, boxes


def relative_rms_error(got: np.ndarray, want: np.ndarray) -> float:
    """||got - want|| / ||want|| (RMS error relative to the output's RMS)."""
    norm = float(np.linalg.norm(want)) or 1.0
    return float(np.linalg.norm(got - want)) / norm

