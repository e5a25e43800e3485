"""Run a model over a split and score it: KITTI-style AP (R40 / R11, BEV / 3-D) or the DAIR-V2X-I variant.

Detections are decoded by the model's CenterHead at a low score threshold (AP integrates over scores),
mapped back to the original LiDAR frame, turned into KITTI prediction labels through the frame's
calibration (evaluation.lidar_detections) and scored against the KITTI-format label_2 files of the
config's `dataset_kitti_root` (guide §2: the DAIR mirror's, or KITTI's own) by evaluation.kitti_ap.
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from v2xfusion_perception.errors import ConfigError, DatasetError
from v2xfusion_tools.data import (FrameMeta, GlobalBatchSampler, V2XDataset, batches, build_dataset, data_settings,
                                  make_loader)
from v2xfusion_tools.data.transforms import transform_boxes
from v2xfusion_tools.datasets.kitti_format import KittiLabels
from v2xfusion_tools.evaluation.io import read_ground_truth, write_predictions
from v2xfusion_tools.evaluation.kitti_ap import METRICS, PROTOCOLS, KittiEvaluation, evaluate
from v2xfusion_tools.evaluation.lidar_detections import kitti_from_lidar_detections
from v2xfusion_tools.models import BEVFusion, build_model
from v2xfusion_tools.training.checkpoints import load_weights
from v2xfusion_tools.training.distributed import choose_device
from v2xfusion_tools.training.settings import train_settings

ProgressFactory = Callable[[str, int], AbstractContextManager]

# what training prints after each validation: (class, metric) at the moderate difficulty, strict overlaps, R40
HEADLINE = (("Car", "bev"), ("Car", "3d"), ("Pedestrian", "bev"), ("Cyclist", "bev"))


@dataclass(frozen=True)
class FramePrediction:
    """One frame's detections in its original LiDAR frame: boxes (K, 7) float64 internal, scores (K,)
    float64, labels (K,) int64 indices into class_names."""

    meta: FrameMeta
    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray


def label_root(config: Mapping[str, Any], data_root: str | Path | None = None) -> Path:
    """The label_2 folder ground truth is read from: the config's dataset_kitti_root; when data_root
    replaces dataset_root and dataset_kitti_root starts with it (both presets' layouts do:
    data/kitti-v2x/training/label_2, data/dair-v2x-i-kitti/training/label_2), it moves along."""
    labels = str(config["dataset_kitti_root"])
    root = str(config["dataset_root"]).rstrip("/")
    if data_root is not None and labels.startswith(root):
        return Path(str(data_root).rstrip("/") + labels[len(root):])
    return Path(labels)


@torch.no_grad()
def predict(model: BEVFusion, dataset: V2XDataset, batch_size: int, workers: int, device: torch.device,
            score_threshold: float | None = None, progress: Callable[..., None] | None = None,
            indices: list[int] | None = None) -> list[FramePrediction]:
    """Detections of every frame of dataset (or of `indices`), in dataset order.

    score_threshold: replaces the config's postprocess.score_threshold while predicting (None: keep it);
    progress: called with the number of frames after each batch.
    """
    head = model.heads["object"]
    settings = head.postprocess
    if score_threshold is not None:
        head.postprocess = dataclasses.replace(settings, score_threshold=float(score_threshold))
    was_training = model.training
    model.eval()
    subset = dataset if indices is None else torch.utils.data.Subset(dataset, indices)
    sampler = GlobalBatchSampler(len(subset), batch_size, shuffle=False, drop_last=False)
    predictions = []
    try:
        for batch in batches(make_loader(subset, sampler, workers, pin_memory=device.type == "cuda")):
            output = model(batch.to(device).inputs)
            undo = torch.linalg.inv(batch.inputs.lidar_aug_matrix.double()).numpy()
            for b, (meta, detections) in enumerate(zip(batch.metas, output.detections)):
                boxes = transform_boxes(detections.boxes[:, :7].double().cpu().numpy(), undo[b])
                predictions.append(FramePrediction(meta, boxes, detections.scores.double().cpu().numpy(),
                                                   detections.labels.cpu().numpy().astype(np.int64)))
            if progress is not None:
                progress(len(batch.metas))
    finally:
        head.postprocess = settings
        model.train(was_training)
    return predictions


def kitti_predictions(predictions: list[FramePrediction], class_names: list[str]) -> dict[str, KittiLabels]:
    """frame id -> the frame's detections as KITTI prediction labels (label_2 fields + score)."""
    return {p.meta.frame_id: kitti_from_lidar_detections(p.boxes, p.scores, p.labels, class_names,
                                                         p.meta.lidar2cam, p.meta.lidar2img, p.meta.image_size)
            for p in predictions}


def protocol_of(config: Mapping[str, Any], name: str | None = None):
    """The AP protocol: `name` (kitti | v2x) or, by default, the config's preset's."""
    key = name or config["preset"]
    if key not in PROTOCOLS:
        raise ConfigError(f"evaluation protocol {key!r}: choose one of {', '.join(PROTOCOLS)}")
    return PROTOCOLS[key]


def score(predictions: list[FramePrediction], config: Mapping[str, Any], labels: str | Path,
          protocol: str | None = None, dump_dir: str | Path | None = None,
          metrics: Sequence[str] = METRICS) -> KittiEvaluation:
    """AP of predictions against label_2 files in `labels` (one NNNNNN.txt per frame id).

    dump_dir: also write the predictions there as KITTI-format txt files (the devkit's input);
    metrics: of bbox, bev, 3d.
    """
    detections = kitti_predictions(predictions, list(config["class_names"]))
    if dump_dir is not None:
        write_predictions(dump_dir, detections)
    frame_ids = [p.meta.frame_id for p in predictions]
    return evaluate(read_ground_truth(labels, frame_ids), [detections[f] for f in frame_ids],
                    protocol=protocol_of(config, protocol), metrics=metrics)


def headline(evaluation: KittiEvaluation) -> dict[str, float]:
    """The few APs training prints: BEV / 3-D R40 at the moderate difficulty, strict overlaps."""
    return {f"{name} {metric.upper()} AP40 mod": evaluation.ap(name, metric, "moderate")
            for name, metric in HEADLINE if name in evaluation.protocol.classes}



def load_model(config: Mapping[str, Any], checkpoint: str | Path, device: torch.device) -> BEVFusion:
    """The config's model with a checkpoint's weights (every weight must fit), in eval mode on device."""
    model = build_model(config)
    load_weights(model, checkpoint)
    return model.to(device).eval()


@dataclass(frozen=True)
class CheckpointEvaluation:
    """evaluate_checkpoint's result: the AP tables, the predictions, the labels folder and wall time."""

    evaluation: KittiEvaluation
    predictions: list[FramePrediction]
    labels: Path
    seconds: float


def evaluate_checkpoint(config: Mapping[str, Any], checkpoint: str | Path, split: str = "val", device: str = "auto",
                        data_root: str | Path | None = None, labels: str | Path | None = None,
                        score_threshold: float | None = None, protocol: str | None = None,
                        batch_size: int = 1, dump_dir: str | Path | None = None,
                        progress: ProgressFactory | None = None) -> CheckpointEvaluation:
    """`v2xfusion eval`: AP of a checkpoint on a split of the config's data.

    labels: the label_2 folder (default: label_root(config, data_root)); score_threshold: default
    train.val_score_threshold when the config has a train section, else postprocess.score_threshold;
    protocol: kitti | v2x (default: the preset's); progress: progress_bar-like factory (description,
    total) -> context yielding advance(n).
    """
    started = time.perf_counter()
    dataset = build_dataset(config, split, False, data_root)
    labels = Path(labels) if labels is not None else label_root(config, data_root)
    if not labels.is_dir():
        raise DatasetError(f"{labels}: ground-truth label_2 folder not found (dataset_kitti_root; pass --labels)")
    if score_threshold is None and config.get("train") is not None:
        score_threshold = train_settings(config).val_score_threshold
    model = load_model(config, checkpoint, choose_device(device))
    with (progress or no_progress)(f"predicting {split}", len(dataset)) as advance:
        predictions = predict(model, dataset, batch_size, data_settings(config).workers,
                              next(model.parameters()).device, score_threshold, advance)
    evaluation = score(predictions, config, labels, protocol, dump_dir)
    return CheckpointEvaluation(evaluation, predictions, labels, time.perf_counter() - started)


@contextmanager
def no_progress(description: str, total: int) -> Iterator[Callable[..., None]]:
    """A ProgressFactory that shows nothing."""
    yield lambda n=1, info=None: None
