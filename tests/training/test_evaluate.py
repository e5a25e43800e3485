"""Evaluation wiring: LiDAR-frame detections -> KITTI labels through the infos' calibration -> AP, for
the KITTI protocol and the DAIR-V2X-I one (height bins, PCD points, the mirror's labels)."""
import dataclasses

import numpy as np
import pytest
import torch

from v2xfusion_tools.data import build_dataset
from v2xfusion_tools.datasets import kitti_format
from v2xfusion_tools.evaluation.kitti_ap import PROTOCOLS, evaluate
from v2xfusion_tools.models import build_model
from v2xfusion_tools.training.checkpoints import save_checkpoint
from v2xfusion_tools.training.evaluate import FramePrediction, evaluate_checkpoint, label_root, score

from data.synthetic_sets import tiny_config


def _ground_truth_predictions(root, config) -> list[FramePrediction]:
    dataset = build_dataset(config, "val", training=False, data_root=root)
    predictions = []
    for index in range(len(dataset)):
        boxes, labels = dataset.ground_truth(index)
        predictions.append(FramePrediction(dataset.meta(index), boxes, np.linspace(0.9, 0.5, len(boxes)), labels))
    return predictions


@pytest.mark.parametrize("preset", ["kitti", "v2x"])
def test_ground_truth_as_detections_scores_as_the_label_files_themselves(preset, kitti_root, v2x_root):
    """Boxes from the infos, mapped back through the calibration, score as the label_2 files scored
    against themselves (the DAIR mirror's types folded onto our classes first, as its protocol does)."""
    config = tiny_config(preset)
    config["data"]["min_lidar_points"] = 0
    root = kitti_root if preset == "kitti" else v2x_root
    predictions = _ground_truth_predictions(root, config)
    ours = score(predictions, config, label_root(config, root), metrics=("bev", "3d"))
    protocol = PROTOCOLS[preset]
    labels = [kitti_format.read_labels(label_root(config, root) / f"{p.meta.frame_id}.txt") for p in predictions]
    as_detections = []
    for frame, prediction in zip(labels, predictions):
        types = tuple(protocol.gt_types.get(t, t) for t in frame.types)
        keep = np.array([t in config["class_names"] for t in types], dtype=bool)
        selected = dataclasses.replace(frame, types=types).select(keep)
        assert len(selected) == len(prediction.boxes)
        as_detections.append(dataclasses.replace(selected, score=prediction.scores))
    reference = evaluate(labels, as_detections, protocol=protocol, metrics=("bev", "3d"))
    assert ours.num_gt.sum() > 0
    assert np.allclose(ours.ap_table("R40"), reference.ap_table("R40"))
    assert np.allclose(ours.ap_table("R11"), reference.ap_table("R11"))


def test_v2x_checkpoint_is_scored_with_the_dair_protocol_on_the_mirror_labels(v2x_root, tmp_path):
    config = tiny_config("v2x")
    torch.manual_seed(0)
    checkpoint = save_checkpoint(tmp_path, build_model(config), config, epoch=1, step=0)
    result = evaluate_checkpoint(config, checkpoint, "val", device="cpu", data_root=v2x_root)
    assert result.evaluation.protocol.name == "DAIR-V2X-I"
    assert result.labels == v2x_root.parent / "dair-v2x-i-kitti" / "training" / "label_2"
    dataset = build_dataset(config, "val", training=False, data_root=v2x_root)
    assert [p.meta.frame_id for p in result.predictions] == [dataset.meta(i).frame_id for i in range(len(dataset))]
    assert result.evaluation.num_gt.sum() > 0
