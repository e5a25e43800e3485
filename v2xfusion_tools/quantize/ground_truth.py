"""AP of FP32 and INT8 detections against a data set's labels: the accuracy cost of quantization.

The detections of validation frames (agreement.py compares them with each other) are scored the way
`v2xfusion eval` scores a checkpoint (training.evaluate.score: KITTI-style AP of the preset's
protocol against the label_2 files), so "AP drop" means the same number the training reports.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from v2xfusion_tools.export.manifest import read_manifest, write_manifest
from v2xfusion_tools.quantize.detections import FrameBoxes
from v2xfusion_tools.quantize.samples import DatasetFrames
from v2xfusion_tools.training.evaluate import FramePrediction, score


def ap_against_labels(config: Mapping[str, Any], frames: DatasetFrames, detections: Sequence[FrameBoxes],
                      labels: str | Path) -> dict[str, float]:
    """BEV and 3-D AP (R40, moderate, strict overlaps) per class and their mean, in percent."""
    predictions = [FramePrediction(frames.meta(i), d.boxes[:, :7].astype(np.float64), d.scores.astype(np.float64),
                                   d.labels.astype(np.int64)) for i, d in enumerate(detections)]
    evaluation = score(predictions, config, labels)
    result = {}
    for metric in ("bev", "3d"):
        values = [evaluation.ap(name, metric, "moderate") for name in evaluation.protocol.classes]
        result.update({f"{name} {metric.upper()} AP40 mod": v for name, v in zip(evaluation.protocol.classes, values)})
        result[f"mean {metric.upper()} AP40 mod"] = float(np.mean(values))
    return result


def record_ap(folder: str | Path, ap: Mapping[str, Mapping[str, float]]) -> None:
    """Add {"fp32": {...}, "int8": {...}} APs to the quantization report in the folder's manifest."""
    manifest = read_manifest(folder)
    manifest.setdefault("quantization", {})["ap_against_labels"] = {k: dict(v) for k, v in ap.items()}
    write_manifest(Path(folder), manifest, "quantize")
