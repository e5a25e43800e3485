"""torchrun: two CPU processes (gloo, DDP) train exactly as one process that accumulates their two batches.

Each process normalises its loss by its own objects and its BatchNorm sees its own frame, so the
single-process reference is the one with the same per-frame arithmetic: batch 1, two micro-batches
per step (train.accumulate 2). Equal losses at step 2 need the first step's gradients all-reduced.
"""
import os
import subprocess
import sys

import pytest
import torch
import yaml

from v2xfusion_tools.training.loop import train
from v2xfusion_tools.training.metrics_log import read_metrics

from data.synthetic_sets import tiny_config


def _config(accumulate: int) -> dict:
    config = tiny_config("kitti", "pointpillars_quick")
    config["train"].update({"epochs": 2, "batch_size": 1, "accumulate": accumulate, "optimizer": {"lr": 2e-3},
                            "schedule": {"type": "constant", "warmup_fraction": 0.0}})
    config["data"]["augment"] = {"rotation": [-0.3, 0.3], "flip_y": 0.5}
    return config


def test_two_gloo_processes_match_one_process_accumulating_two_batches(kitti_root, tmp_path):
    single = tmp_path / "single"
    train(_config(accumulate=2), single, device="cpu", data_root=kitti_root)

    config_path = tmp_path / "ddp.yaml"
    config_path.write_text(yaml.safe_dump(_config(accumulate=1), sort_keys=False))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "v2xfusion_tools.cli", "train", str(config_path), "--run-dir", str(tmp_path / "ddp"),
               "--device", "cpu", "--data-root", str(kitti_root)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 epochs, 2 steps" in result.stdout and "on 2 x cpu" in result.stderr

    expected = read_metrics(single / "metrics.csv", "train")
    actual = read_metrics(tmp_path / "ddp" / "metrics.csv", "train")
    for name in ("loss", "heatmap/task0", "bbox/task0", "grad_norm"):
        assert [s for s, _ in actual[name]] == [1, 2]
        assert [v for _, v in actual[name]] == pytest.approx([v for _, v in expected[name]], rel=1e-5), name
    weights_single = torch.load(single / "latest.pth", weights_only=True)["state_dict"]
    weights_ddp = torch.load(tmp_path / "ddp" / "latest.pth", weights_only=True)["state_dict"]
    # BatchNorm running statistics differ by design: DDP keeps rank 0's, accumulation updates them twice
    learned = [name for name in weights_single
               if not name.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    assert len(learned) > 100
    for name in learned:
        assert torch.allclose(weights_single[name].double(), weights_ddp[name].double(), rtol=1e-4, atol=1e-6), name
