"""The artifact models on OpenVINO: read from manifest-verified bytes, checked, compiled for a device.

Every model is read from the bytes whose sha256 the manifest vouches for (never re-read from disk
after the check), its geometry metadata (ONNX metadata_props arrive under rt_info `framework`, an IR
saved by the export keeps them under `v2xfusion`) is checked against the manifest, and its inputs /
outputs against the stage's declared ones. Custom ops (Pipeline B) come from the extension library
of the installed `v2xfusion_ov_extension` package only: an artifact folder is data, never code.

Precision: an fp32 model compiles with INFERENCE_PRECISION_HINT f32 (CPUs that report BF16 would
otherwise run it in bf16, design.md §3 (a)); fp16 / int8 models keep the device's choice, which is
reported back as `inference_precision`.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import openvino as ov

from v2xfusion_perception.manifest import Manifest, ManifestError, ModelEntry

# rt_info sections holding the export's metadata: IR (stamped on save) and ONNX (metadata_props)
METADATA_SECTIONS = ("v2xfusion", "framework")


def make_core(extension: bool = False) -> ov.Core:
    """An OpenVINO Core; with our custom ops (BevPoolV2, SparseConvolution, SparseToDense) when
    `extension`, from the installed v2xfusion_ov_extension package."""
    core = ov.Core()
    if extension:
        try:
            import v2xfusion_ov_extension
            library = v2xfusion_ov_extension.library_path()
        except (ImportError, FileNotFoundError) as exc:
            raise ManifestError(f"pipeline B needs the OpenVINO extension package v2xfusion_ov_extension ({exc}); "
                                f"install it with `pip install --no-build-isolation ./ov_extension`") from None
        core.add_extension(str(library))
    return core


def model_metadata(model: ov.Model) -> dict[str, Any]:
    """The export's metadata of a model, JSON values decoded ({} when it carries none)."""
    info = model.get_rt_info()
    for section in METADATA_SECTIONS:
        if section in info:
            values = {}
            for key in info[section]:
                text = model.get_rt_info([section, key]).astype(str)
                try:
                    values[key] = json.loads(text)
                except json.JSONDecodeError:
                    values[key] = text
            if "stage" in values:
                return values
    return {}


def compile_config(device: str, model_precision: str, threads: int | None) -> dict[str, str]:
    """Compile properties: latency mode, f32 inference for fp32 models, a CPU thread count if given."""
    config = {"PERFORMANCE_HINT": "LATENCY"}
    if model_precision == "fp32":
        config["INFERENCE_PRECISION_HINT"] = "f32"
    if threads and device in ("CPU", "AUTO"):
        config["INFERENCE_NUM_THREADS"] = str(int(threads))
    return config


@dataclass
class CompiledStage:
    """One stage compiled for a device: its manifest entry, the compiled model, one infer request and
    the precision the device runs it in."""

    entry: ModelEntry
    compiled: ov.CompiledModel
    request: ov.InferRequest
    inference_precision: str
    metadata: Mapping[str, Any]

    @property
    def input_names(self) -> list[str]:
        return [port.any_name for port in self.compiled.inputs]

    @property
    def output_names(self) -> list[str]:
        return [port.any_name for port in self.compiled.outputs]


def read_model(core: ov.Core, manifest: Manifest, entry: ModelEntry) -> ov.Model:
    """The model of a manifest entry from verified bytes (ONNX, or IR .xml + .bin)."""
    content = manifest.read_verified(entry.file)
    try:
        if entry.weights is None:
            return core.read_model(content)
        weights = np.frombuffer(manifest.read_verified(entry.weights), dtype=np.uint8)
        return core.read_model(content, ov.Tensor(weights))
    except RuntimeError as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ManifestError(f"{manifest.folder / entry.file}: OpenVINO cannot read it ({first_line})") from None


def check_io(manifest: Manifest, entry: ModelEntry, model: ov.Model) -> None:
    """The model's inputs and outputs carry the names the manifest declares, with matching static dims."""
    inputs, outputs = manifest.stage_io(entry.stage)
    ports = {name: port for port in [*model.inputs, *model.outputs] for name in port.get_names()}
    for name, declared in [*inputs.items(), *outputs.items()]:
        port = ports.get(name)
        if port is None:
            raise ManifestError(f"{manifest.folder / entry.file}: has no input / output {name!r} that {manifest.path} "
                                f"declares for stage '{entry.stage}'")
        shape = port.get_partial_shape()
        want = list(declared.get("shape", []))
        if shape.rank.is_static and len(want) == shape.rank.get_length():
            for axis, (dim, size) in enumerate(zip(shape, want)):
                if size > 0 and dim.is_static and dim.get_length() != size:
                    raise ManifestError(f"{manifest.folder / entry.file}: {name} has {shape} but {manifest.path} "
                                        f"declares {want} (axis {axis})")
        elif shape.rank.is_static:
            raise ManifestError(f"{manifest.folder / entry.file}: {name} has rank {shape.rank.get_length()} but "
                                f"{manifest.path} declares shape {want}")


def load_stage(core: ov.Core, manifest: Manifest, entry: ModelEntry, device: str,
               threads: int | None = None, reshape: Mapping[str, Any] | None = None) -> CompiledStage:
    """Read, check and compile one stage's model. reshape: {input name: shape} applied before compiling
    (e.g. an upper bound on a dynamic voxel axis)."""
    model = read_model(core, manifest, entry)
    metadata = model_metadata(model)
    manifest.check_model_metadata(entry, metadata)
    check_io(manifest, entry, model)
    if reshape:
        model.reshape(dict(reshape))
    try:
        compiled = core.compile_model(model, device, compile_config(device, entry.precision, threads))
    except RuntimeError as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ManifestError(f"{manifest.folder / entry.file}: cannot compile it for device {device} "
                            f"({first_line})") from None
    try:
        hint = compiled.get_property("INFERENCE_PRECISION_HINT")
        precision = hint.to_string() if isinstance(hint, ov.Type) else str(hint)
    except RuntimeError:  # a device without the property (AUTO on some builds)
        precision = entry.precision
    return CompiledStage(entry, compiled, compiled.create_infer_request(), precision, metadata)
