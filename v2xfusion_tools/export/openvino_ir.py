"""OpenVINO side of export and quantization: a Core with our extension, ONNX -> IR, FP32 compiling.

The extension library is loaded from the installed `v2xfusion_ov_extension` package only. `fp32`
compiles with INFERENCE_PRECISION_HINT f32: on CPUs that report BF16 the plugin otherwise runs an
"FP32" model in bf16 (design.md §3 (a)). FP16 IR is the FP32 graph with its weights compressed on
save (`compress_to_fp16`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import openvino as ov

from v2xfusion_tools.export.metadata import stamp_ov_model

F32_CONFIG = {"INFERENCE_PRECISION_HINT": "f32"}


def make_core(extension: bool = False) -> ov.Core:
    """An OpenVINO Core; with the custom ops of the unified model when `extension`."""
    core = ov.Core()
    if extension:
        import v2xfusion_ov_extension

        core.add_extension(str(v2xfusion_ov_extension.library_path()))
    return core


def compile_config(precision: str, threads: int | None = None) -> dict[str, str]:
    """CPU compile properties: f32 inference for fp32 (fp16 / int8 IR keep the plugin's choice unless
    f32 is asked for), and a fixed thread count when given."""
    config = dict(F32_CONFIG) if precision == "fp32" else {}
    if threads:
        config["INFERENCE_NUM_THREADS"] = str(threads)
    return config


def compile_fp32(core: ov.Core, model: ov.Model | str | Path, threads: int | None = None) -> ov.CompiledModel:
    """Compile for CPU in true float32."""
    return core.compile_model(model if isinstance(model, ov.Model) else str(model), "CPU",
                              compile_config("fp32", threads))


def bound_voxels(model: ov.Model, names: tuple[str, ...], max_voxels: int) -> None:
    """Give a dynamic-V model an upper bound: the named inputs' first axis becomes 1..max_voxels."""
    shapes = {}
    for name in names:
        shape = model.input(name).get_partial_shape()
        shape[0] = ov.Dimension(1, max_voxels)
        shapes[name] = shape
    model.reshape(shapes)


def save_ir(model: ov.Model, xml_path: Path, metadata: Mapping[str, str], compress_to_fp16: bool) -> Path:
    """Save `model` as .xml/.bin with the geometry metadata in its rt_info."""
    stamp_ov_model(model, metadata)
    xml_path.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(model, str(xml_path), compress_to_fp16=compress_to_fp16)
    return xml_path


def onnx_to_fp16_ir(core: ov.Core, onnx_path: Path, xml_path: Path, metadata: Mapping[str, str],
                    voxel_inputs: tuple[str, ...] = (), max_voxels: int | None = None) -> Path:
    """Read an ONNX file and save it as an FP16-compressed IR (dynamic voxel axes bounded when given)."""
    model = core.read_model(str(onnx_path))
    if voxel_inputs and max_voxels:
        bound_voxels(model, voxel_inputs, max_voxels)
    return save_ir(model, xml_path, metadata, compress_to_fp16=True)
