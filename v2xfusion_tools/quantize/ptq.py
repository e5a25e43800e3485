"""NNCF post-training quantization of one OpenVINO model on recorded inputs (guide §4.2.5, §5.2.6).

`PtqSettings` names what the guide tunes: the preset (performance: symmetric activations; mixed:
asymmetric activations, the guide's choice for the unified model), the activation range estimator
(default min-max, or histogram as the guide recommends), the ignored scope (layers kept in floating
point) and how many calibration samples. Custom ops (the unified model's BevPoolV2 /
SparseConvolution / SparseToDense) stay floating point: NNCF quantizes only the inputs of the
standard convolutions and matmuls around them (design.md §3 (d)).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal, Mapping, Sequence

import nncf
import numpy as np
import openvino as ov
from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters
from nncf.quantization.range_estimator import RangeEstimatorParametersSet

# The CenterHead's task branches (heatmap, reg, height, dim, rot, vel: conv + BN + ReLU, then the output
# conv): their outputs are the decoded numbers themselves, and 8-bit box offsets and sizes move boxes out
# of a 0.7 BEV IoU match. Measured on the quick-trained KITTI model with only the head INT8: 11% of the
# FP32 boxes matched with everything quantized, 82% with the output convs float, 98% with the branches
# float (the shared 3x3 conv, most of the head's work, stays INT8).
HEAD_TASK_BRANCHES = r".*task_heads\.\d+/.*"
# The ConvFuser's convolution over the concatenated camera and LiDAR BEV maps: one per-tensor 8-bit
# scale for two maps of different ranges (measured with only the fuser INT8: 90% of the boxes matched
# with it quantized, 97.5% with it float).
FUSER_INPUT_CONV = r".*/fuser/fuser/fuser\.0/Conv.*"
PRESETS = {"performance": nncf.QuantizationPreset.PERFORMANCE, "mixed": nncf.QuantizationPreset.MIXED}
ACTIVATION_RANGES = ("minmax", "histogram")


@dataclass(frozen=True)
class PtqSettings:
    """preset: performance | mixed; activation_range: minmax (NNCF's default estimator) | histogram;
    subset_size: calibration samples used; ignored_types / ignored_patterns: OpenVINO op types / node
    name regexes left in floating point; keep_float: the whole model stays floating point (a stage
    whose INT8 version costs more accuracy than it saves time)."""

    preset: Literal["performance", "mixed"] = "performance"
    activation_range: Literal["minmax", "histogram"] = "minmax"
    subset_size: int = 300
    ignored_types: tuple[str, ...] = ()
    ignored_patterns: tuple[str, ...] = field(default_factory=tuple)
    keep_float: bool = False

    def describe(self) -> dict[str, object]:
        if self.keep_float:
            return {"keep_float": True}
        return {"preset": self.preset, "activation_range": self.activation_range, "subset_size": self.subset_size,
                "ignored_types": list(self.ignored_types), "ignored_patterns": list(self.ignored_patterns)}


def quantize_model(model: ov.Model, samples: Sequence[Mapping[str, np.ndarray]], settings: PtqSettings) -> ov.Model:
    """INT8 model from `model` calibrated on `samples` ({input name: array} each, batch of one frame);
    `model` itself when settings.keep_float."""
    if settings.keep_float:
        return model
    # NNCF's INFO lines list every ignored node (dozens per model): our report says what stayed float
    nncf.set_log_level(logging.WARNING)
    if not samples:
        raise ValueError("samples: quantization needs at least one calibration sample")
    if settings.preset not in PRESETS or settings.activation_range not in ACTIVATION_RANGES:
        raise ValueError(f"preset {settings.preset!r} / activation_range {settings.activation_range!r}: choose "
                         f"{', '.join(PRESETS)} / {', '.join(ACTIVATION_RANGES)}")
    advanced = AdvancedQuantizationParameters()
    if settings.activation_range == "histogram":
        advanced = AdvancedQuantizationParameters(
            activations_range_estimator_params=RangeEstimatorParametersSet.HISTOGRAM)
    ignored = None
    if settings.ignored_types or settings.ignored_patterns:
        ignored = nncf.IgnoredScope(types=list(settings.ignored_types), patterns=list(settings.ignored_patterns),
                                    validate=False)
    dataset = nncf.Dataset([dict(sample) for sample in samples])
    return nncf.quantize(model, dataset, preset=PRESETS[settings.preset], target_device=nncf.TargetDevice.CPU,
                         subset_size=min(settings.subset_size, len(samples)), ignored_scope=ignored,
                         advanced_parameters=advanced)
