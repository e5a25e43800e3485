"""Pipeline B INT8 in the guide's three stages (§5.2.6), all in this one environment.

1. `dump_voxels`: frames of a split through the data pipeline (evaluation mode) and the dynamic
   voxelizer into <calib_dir>/NNNNNN.npz (img, voxel_features, coors), the first n_calib for
   calibration, the next n_val for validation.
2. `pseudo_gt`: the FP32 unified model (OpenVINO, f32, our extension) decodes the validation frames;
   its boxes are the pseudo ground truth (self-distillation), cached in an .npz.
3. `quantize_unified`: NNCF PTQ (mixed preset, histogram activation range by default) on the
   calibration frames, saved as bevfusion_unified_int8.xml, validated against the pseudo ground
   truth; the agreement goes into the manifest.
The BEVPool-v2 geometry is the artifact folder's (one calibration, as the guide's).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch

from v2xfusion_perception.errors import DatasetError, V2XError
from v2xfusion_tools.export.geometry import read_geometry
from v2xfusion_tools.export.manifest import add_model, model_file, read_manifest, verify_files, write_manifest
from v2xfusion_tools.export.metadata import onnx_metadata_text
from v2xfusion_tools.export.openvino_ir import compile_fp32, make_core, save_ir
from v2xfusion_tools.models.lidar.voxelize import voxelize_dynamic
from v2xfusion_tools.progress import ProgressFactory, stage
from v2xfusion_tools.quantize.agreement import Agreement, agreement
from v2xfusion_tools.quantize.detections import FrameBoxes, HeadDecoder
from v2xfusion_tools.quantize.ptq import FUSER_INPUT_CONV, HEAD_TASK_BRANCHES, PtqSettings, quantize_model

STAGE = "unified"
INDEX_FILE = "index.json"
# the guide's recommended preset and range (§5.2.6); the fuser's input convolution and the head's task
# branches stay float as in Pipeline A (ptq.py)
DEFAULT_SETTINGS = PtqSettings(preset="mixed", activation_range="histogram",
                               ignored_patterns=(FUSER_INPUT_CONV, HEAD_TASK_BRANCHES))


@dataclass(frozen=True)
class UnifiedQuantization:
    """What stage 3 produced: the INT8 IR, the settings, the agreement with the pseudo ground truth."""

    int8_file: Path
    settings: PtqSettings
    agreement: Agreement
    calibration_frames: int


def frame_file(calib_dir: Path, index: int) -> Path:
    return calib_dir / f"{index:06d}.npz"


def dump_voxels(config: Mapping[str, Any], calib_dir: str | Path, split: str = "val", num_frames: int = 400,
                data_root: str | Path | None = None, progress: ProgressFactory | None = None) -> int:
    """Stage 1: write up to num_frames frames of `split` as network inputs; returns the count written."""
    from v2xfusion_tools.data.dataset import FrameFailure
    from v2xfusion_tools.data.loader import build_dataset

    calib_dir = Path(calib_dir)
    calib_dir.mkdir(parents=True, exist_ok=True)
    dataset = build_dataset(config, split, training=False, data_root=data_root)
    count = min(num_frames, len(dataset))
    geo = config["geometry"]
    frames = []
    with stage(progress, f"voxel dump ({split})", count) as advance:
        for index in range(count):
            sample = dataset[index]
            if isinstance(sample, FrameFailure):
                raise DatasetError(sample.message)
            voxels = voxelize_dynamic(torch.from_numpy(sample.points), geo["pc_range"], geo["voxel_size"])
            coors = np.pad(voxels.coors.numpy().astype(np.int32), ((0, 0), (1, 0)))
            np.savez(frame_file(calib_dir, index), img=sample.img[None], voxel_features=voxels.features.numpy(),
                     coors=coors)
            frames.append(sample.meta.frame_id)
            advance(1)
    (calib_dir / INDEX_FILE).write_text(json.dumps({"source": str(dataset.source), "split": split,
                                                    "frame_ids": frames}, indent=1) + "\n")
    return count


def load_frame(calib_dir: Path, index: int, indices: np.ndarray, intervals: np.ndarray) -> dict[str, np.ndarray]:
    """The unified model's inputs of dumped frame `index`."""
    path = frame_file(calib_dir, index)
    if not path.is_file():
        raise DatasetError(f"{path}: dumped frame not found (run the voxel dump stage with enough frames)")
    with np.load(path) as data:
        return {"img": data["img"], "indices": indices, "intervals": intervals,
                "voxel_features": data["voxel_features"], "coors": data["coors"]}


def _frames(calib_dir: Path, start: int, count: int, folder: Path, manifest: Mapping[str, Any]) -> list[dict]:
    geo = manifest["bevpool_geometry"]
    geometry = read_geometry(folder / Path(geo["indices"]).parent)
    return [load_frame(calib_dir, i, geometry.indices, geometry.intervals) for i in range(start, start + count)]


def save_boxes(path: Path, frames: list[FrameBoxes]) -> None:
    counts = np.array([len(f.scores) for f in frames], dtype=np.int64)
    np.savez(path, counts=counts, boxes=np.concatenate([f.boxes for f in frames]) if frames else np.zeros((0, 9)),
             scores=np.concatenate([f.scores for f in frames]) if frames else np.zeros(0),
             labels=np.concatenate([f.labels for f in frames]) if frames else np.zeros(0, dtype=np.int64))


def load_boxes(path: Path) -> list[FrameBoxes]:
    if not path.is_file():
        raise V2XError(f"{path}: no pseudo ground truth (run the pseudo-gt stage first)")
    with np.load(path) as data:
        bounds = np.concatenate([[0], np.cumsum(data["counts"])])
        return [FrameBoxes(data["boxes"][a:b], data["scores"][a:b], data["labels"][a:b])
                for a, b in zip(bounds[:-1], bounds[1:])]


def _decoded_boxes(compiled: Callable[[dict], Any], manifest: Mapping[str, Any], frames: list[dict],
                   description: str, progress: ProgressFactory | None) -> list[FrameBoxes]:
    """The unified model's decoded boxes of each frame's inputs, with a progress bar."""
    decoder = HeadDecoder(manifest)
    names = manifest["head"]["outputs"]
    boxes = []
    with stage(progress, description, len(frames)) as advance:
        for inputs in frames:
            result = compiled(inputs)
            boxes.append(decoder({name: np.asarray(result[name]) for name in names}))
            advance(1)
    return boxes


def pseudo_gt(folder: str | Path, calib_dir: str | Path, cache: str | Path, n_calib: int = 300, n_val: int = 100,
              threads: int | None = None, progress: ProgressFactory | None = None) -> list[FrameBoxes]:
    """Stage 2: FP32 boxes of validation frames n_calib .. n_calib + n_val, cached in `cache`."""
    folder, calib_dir = Path(folder), Path(calib_dir)
    manifest = read_manifest(folder)
    verify_files(folder, manifest)
    compiled = compile_fp32(make_core(extension=True), folder / model_file(manifest, STAGE, "fp32")["file"], threads)
    boxes = _decoded_boxes(compiled, manifest, _frames(calib_dir, n_calib, n_val, folder, manifest),
                           "pseudo ground truth (FP32)", progress)
    save_boxes(Path(cache), boxes)
    return boxes


def quantize_unified(folder: str | Path, calib_dir: str | Path, cache: str | Path, n_calib: int = 300,
                     n_val: int = 100, settings: PtqSettings = DEFAULT_SETTINGS, threads: int | None = None,
                     progress: ProgressFactory | None = None) -> UnifiedQuantization:
    """Stage 3: PTQ on frames 0 .. n_calib, save bevfusion_unified_int8.xml, validate against the
    cached pseudo ground truth, record everything in the manifest."""
    folder, calib_dir = Path(folder), Path(calib_dir)
    manifest = read_manifest(folder)
    verify_files(folder, manifest)
    reference = load_boxes(Path(cache))
    if len(reference) != n_val:
        raise V2XError(f"{cache}: pseudo ground truth of {len(reference)} frames, --n-val is {n_val} (rerun pseudo-gt)")
    core = make_core(extension=True)
    source = model_file(manifest, STAGE, "fp32")["file"]
    calibration = _frames(calib_dir, 0, n_calib, folder, manifest)
    settings = PtqSettings(**{**settings.__dict__, "subset_size": n_calib})
    with stage(progress, "NNCF PTQ (unified)", 1) as advance:
        quantized = quantize_model(core.read_model(str(folder / source)), calibration, settings)
        advance(1)
    xml = save_ir(quantized, folder / "bevfusion_unified_int8.xml", onnx_metadata_text(folder / source),
                  compress_to_fp16=False)
    add_model(manifest, folder, STAGE, "int8", xml.name)
    compiled = compile_fp32(core, xml, threads)
    candidates = _decoded_boxes(compiled, manifest, _frames(calib_dir, n_calib, n_val, folder, manifest),
                                "validation INT8 vs pseudo ground truth", progress)
    result = agreement(reference, candidates, len(manifest["class_names"]))
    manifest["quantization"] = {"stages": {STAGE: {"source": source, "int8": xml.name, **settings.describe()}},
                                "calibration_frames": n_calib, "validation": result.as_dict()}
    write_manifest(folder, manifest, "quantize")
    return UnifiedQuantization(xml, settings, result, n_calib)
