"""Folders of KITTI-format txt files for the evaluator: label_2 ground truth and predictions (+ score).

A prediction folder holds one NNNNNN.txt per frame, label_2's 15 fields plus a score on every line
(the KITTI submission format, what `--dump-pred` writes); a frame without detections is an empty file.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from v2xfusion_perception.errors import DatasetError
from v2xfusion_tools.datasets import kitti_format
from v2xfusion_tools.evaluation.kitti_ap import KITTI, METRICS, KittiEvaluation, Protocol, evaluate


def frame_ids_in(folder: str | Path) -> list[str]:
    """The frame ids of a folder's NNNNNN.txt files, sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"{folder}: not a folder of KITTI-format txt files")
    return sorted(path.stem for path in folder.glob("*.txt"))


def read_ground_truth(folder: str | Path, frame_ids: Sequence[str]) -> list[kitti_format.KittiLabels]:
    """label_2 files of the given frames, in that order."""
    folder = Path(folder)
    return [kitti_format.read_labels(_existing(folder / f"{frame_id}.txt", "ground-truth label"))
            for frame_id in frame_ids]


def read_predictions(folder: str | Path, frame_ids: Sequence[str]) -> list[kitti_format.KittiLabels]:
    """Prediction files of the given frames, in that order; every line must carry a score."""
    folder = Path(folder)
    frames = []
    for frame_id in frame_ids:
        path = _existing(folder / f"{frame_id}.txt", "prediction")
        labels = kitti_format.read_labels(path)
        if len(labels) == 0:
            labels = replace(labels, score=np.zeros(0))
        elif labels.score is None:
            raise DatasetError(f"{path}: prediction lines have 15 fields; a prediction needs a 16th, the score")
        frames.append(labels)
    return frames


def write_predictions(folder: str | Path, predictions: Mapping[str, kitti_format.KittiLabels]) -> None:
    """Write one prediction file per frame id (an empty file where a frame has no detections)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for frame_id, labels in predictions.items():
        if len(labels) and labels.score is None:
            raise ValueError(f"predictions of frame {frame_id} carry no scores")
        if not len(labels):
            labels = replace(labels, score=np.zeros(0))
        kitti_format.write_labels(folder / f"{frame_id}.txt", labels)


def evaluate_folders(ground_truth_folder: str | Path, prediction_folder: str | Path,
                     frame_ids: Sequence[str] | None = None, protocol: Protocol = KITTI,
                     metrics: Sequence[str] = METRICS) -> KittiEvaluation:
    """Score a prediction folder against a label_2 folder.

    frame_ids: the frames to score (e.g. ImageSets/val.txt); each needs a label and a prediction file.
    None scores the frames the prediction folder has files for, as the devkit's offline evaluator and
    BEVHeight's kitti_evaluation do.
    """
    if frame_ids is None:
        frame_ids = frame_ids_in(prediction_folder)
        if not frame_ids:
            raise DatasetError(f"{prediction_folder}: holds no prediction txt files")
    return evaluate(read_ground_truth(ground_truth_folder, frame_ids),
                    read_predictions(prediction_folder, frame_ids), protocol=protocol, metrics=metrics)


def _existing(path: Path, what: str) -> Path:
    if not path.is_file():
        raise DatasetError(f"{path}: {what} file is missing")
    return path
