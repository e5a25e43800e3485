"""The training loop learns: on two synthetic frames the loss falls by a fixed factor, and the fitted
network's heatmap peaks on the frames' objects."""
import numpy as np
import torch

from v2xfusion_tools.data import build_dataset, collate
from v2xfusion_tools.training.evaluate import load_model
from v2xfusion_tools.training.loop import train
from v2xfusion_tools.training.metrics_log import read_metrics

from data.synthetic_sets import tiny_config

STEPS = 25
# the loss of the last step against the 5th (past the first steps, where only the heatmap's initial
# bias is being corrected); measured: about 30
FACTOR = 10.0


def test_two_frames_overfit(kitti_root, tmp_path):
    config = tiny_config("kitti", "pointpillars_quick")
    config["train"].update({"epochs": STEPS, "batch_size": 2, "optimizer": {"lr": 2e-3, "weight_decay": 0.0},
                            "schedule": {"type": "constant", "warmup_fraction": 0.1}})
    result = train(config, tmp_path / "run", device="cpu", data_root=kitti_root)
    assert result.steps == STEPS
    losses = dict(read_metrics(tmp_path / "run" / "metrics.csv", "train")["loss"])
    assert losses[STEPS] < losses[5] / FACTOR, losses

    dataset = build_dataset(config, "train", training=False, data_root=kitti_root)
    model = load_model(config, result.checkpoint, torch.device("cpu"))
    batch = collate([dataset[0], dataset[1]])
    head = model.heads["object"]
    # batch statistics: 25 steps move BatchNorm's running averages (momentum 0.01 in the pillar net)
    # only a quarter of the way, so evaluation-mode outputs would say nothing about the fit
    model.train()
    with torch.no_grad():
        detections = head.predict(head(model.bev_features(batch.inputs)))
    found = total = 0
    for meta, frame in zip(batch.metas, detections):
        boxes, labels = dataset.ground_truth(meta.index)
        for box, label in zip(boxes, labels):
            total += 1
            near = np.linalg.norm(frame.boxes[:, :2].numpy() - box[:2], axis=1) < 1.0
            found += bool(np.any(near & (frame.labels.numpy() == label)))
    assert total >= 6 and found >= 0.8 * total, (found, total)
