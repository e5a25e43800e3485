"""Geometry metadata carried inside every exported model: ONNX metadata_props and OpenVINO rt_info.

The runtime reads geometry from the manifest and checks it against these values (design.md §1), so
a model copied into the wrong artifact folder is refused; the guide's standalone inference reads
pc_range / voxel_size / sparse_shape from the ONNX the same way (guide §5.2.5). Values are JSON text.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import onnx

RT_INFO_SECTION = "v2xfusion"


def model_metadata(config: Mapping[str, Any], pipeline: str, stage: str,
                   extra: Mapping[str, Any] | None = None) -> dict[str, str]:
    """{key: JSON text} for a stage of `pipeline`: preset, stage, pc_range, voxel_size, bev_size,
    out_size_factor, class_names, plus `extra` (e.g. sparse_shape, static_voxels)."""
    geo = config["geometry"]
    values: dict[str, Any] = {
        "preset": config["preset"], "pipeline": pipeline, "stage": stage, "pc_range": geo["pc_range"],
        "voxel_size": geo["voxel_size"], "bev_size": geo["bev_size"],
        "out_size_factor": geo["out_size_factor"], "class_names": config["class_names"],
    }
    values.update(extra or {})
    return {key: json.dumps(value) for key, value in values.items()}


def stamp_onnx(path: Path, metadata: Mapping[str, str]) -> None:
    """Write `metadata` into the ONNX file's metadata_props (replacing keys of the same name)."""
    model = onnx.load(path)
    kept = [p for p in model.metadata_props if p.key not in metadata]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    for key, value in metadata.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, path)


def onnx_metadata_text(path: Path) -> dict[str, str]:
    """metadata_props of an ONNX file as written ({key: JSON text}): what a model derived from it
    (an FP16 or INT8 IR) carries on."""
    model = onnx.load(path, load_external_data=False)
    return {p.key: p.value for p in model.metadata_props}


def read_onnx_metadata(path: Path) -> dict[str, Any]:
    """metadata_props of an ONNX file, JSON values decoded."""
    return {key: json.loads(value) for key, value in onnx_metadata_text(path).items()}


def stamp_ov_model(model, metadata: Mapping[str, str]) -> None:
    """The same values into an openvino.Model's rt_info under `v2xfusion` (saved with the IR)."""
    for key, value in metadata.items():
        model.set_rt_info(value, [RT_INFO_SECTION, key])
