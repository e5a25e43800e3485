"""`v2xfusion convert-checkpoint`: published PointPillars BEVFusion weights -> our Pipeline A artifacts.

The guide's weight-conversion path (NVIDIA's CUDA-V2XFusion `.pth` -> 4 ONNX + IR, no retraining):
a state dict in BEVFusion / CUDA-V2XFusion naming is matched onto our model by name
(models/checkpoint.py: derived grid buffers dropped, spconv 1.x kernels permuted) after two
normalisations published checkpoints need: the `module.` prefix of a DataParallel wrapper is
stripped, and pytorch_quantization's calibration state (`._amax` of TensorQuantizers, CUDA-V2XFusion's
QAT checkpoints) is set aside, since our INT8 comes from NNCF. Every key that does not land is
reported; a model weight the checkpoint lacks is an error unless allowed, since an export with
random weights in it would look like a working model.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch

from v2xfusion_perception.errors import V2XError
from v2xfusion_tools.export.artifacts import ExportResult, checkpoint_source, export_artifacts, pipeline_of
from v2xfusion_tools.models import build_model
from v2xfusion_tools.models.checkpoint import load_matching, read_state_dict
from v2xfusion_tools.progress import ProgressFactory

WRAPPER_PREFIXES = ("module.", "model.")
QUANTIZER_STATE = ("._amax", "_quantizer._amax")


@dataclass
class ConversionReport:
    """loaded: model weights filled; missing: model weights the checkpoint lacks; unexpected: checkpoint
    tensors the model has no place for; mismatched: (name, checkpoint shape, model shape);
    quantizer_state: pytorch_quantization entries set aside; stripped_prefix: the wrapper prefix removed."""

    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)
    quantizer_state: list[str] = field(default_factory=list)
    stripped_prefix: str | None = None

    def format(self) -> str:
        lines = [f"loaded {len(self.loaded)} weights; {len(self.missing)} missing, {len(self.unexpected)} unexpected, "
                 f"{len(self.mismatched)} of another shape, {len(self.quantizer_state)} quantizer entries set aside"
                 + (f"; prefix '{self.stripped_prefix}' stripped" if self.stripped_prefix else "")]
        lines += [f"  missing:    {name}" for name in self.missing]
        lines += [f"  unexpected: {name}" for name in self.unexpected]
        lines += [f"  mismatched: {name}: checkpoint {list(a)}, model {list(b)}" for name, a, b in self.mismatched]
        return "\n".join(lines)


def normalise_state_dict(state_dict: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str], str | None]:
    """Strip a wrapper prefix shared by every key and set quantizer state aside.
    Returns (weights, quantizer keys, stripped prefix or None)."""
    prefix = next((p for p in WRAPPER_PREFIXES if state_dict and all(k.startswith(p) for k in state_dict)), None)
    weights, quantizer = {}, []
    for key, value in state_dict.items():
        name = key[len(prefix):] if prefix else key
        if name.endswith(QUANTIZER_STATE):
            quantizer.append(name)
        else:
            weights[name] = value
    return weights, sorted(quantizer), prefix


def convert_checkpoint(config: Mapping[str, Any], checkpoint: str | Path, out_root: str | Path,
                       config_path: str | Path | None = None, fixed_v: int | None = None,
                       save: str | Path | None = None, allow_missing: bool = False,
                       progress: ProgressFactory | None = None) -> tuple[ConversionReport, ExportResult]:
    """Load a published checkpoint onto the config's Pipeline A model, optionally save it as one of
    our checkpoints (`save`), and export the artifact folder. Raises V2XError for a checkpoint that
    leaves model weights unfilled (unless allow_missing) or a config that is not Pipeline A."""
    model = build_model(config)
    if pipeline_of(model) != "A":
        raise V2XError("config: convert-checkpoint maps PointPillars (Pipeline A) checkpoints; the config's LiDAR "
                       "encoder is the sparse encoder of Pipeline B")
    weights, quantizer, prefix = normalise_state_dict(read_state_dict(checkpoint))
    matched = load_matching(model, weights)
    report = ConversionReport(matched.loaded, matched.missing, matched.unexpected, matched.mismatched, quantizer, prefix)
    if (report.missing or report.mismatched) and not allow_missing:
        raise V2XError(f"{checkpoint}: {len(report.missing)} model weights missing and {len(report.mismatched)} of "
                       f"another shape (first: {(report.missing or [m[0] for m in report.mismatched])[0]}); the "
                       f"checkpoint does not fit this config's model (pass --allow-missing to export anyway)\n"
                       f"{report.format()}")
    model.eval()
    if save is not None:
        Path(save).parent.mkdir(parents=True, exist_ok=True)
        torch.save({"state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}}, save)
    source = {**checkpoint_source(config_path, checkpoint), "converted_from": "published state dict",
              "unmatched_keys": len(report.unexpected) + len(report.missing) + len(report.mismatched)}
    result = export_artifacts(config, model, out_root, source, fixed_v=fixed_v, progress=progress)
    return report, result
