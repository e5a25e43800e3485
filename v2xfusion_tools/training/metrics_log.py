"""The run's metrics log: run_dir/metrics.csv, one scalar per row (TensorBoard's scalar layout).

Columns: step (optimizer steps done), epoch, phase (train / val), name (e.g. loss, heatmap/task0, lr,
KITTI/Car_BEV_AP40_moderate_strict), value. Long rows keep the columns fixed whatever is logged;
`read_metrics` pivots them back. A resumed run appends to the same file.
"""
from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path
from typing import Mapping

COLUMNS = ("step", "epoch", "phase", "name", "value")
FILE_NAME = "metrics.csv"


class MetricsLog:
    """Appends rows to run_dir/metrics.csv (header written once)."""

    def __init__(self, run_dir: str | Path) -> None:
        self.path = Path(run_dir) / FILE_NAME
        if not self.path.is_file():
            with self.path.open("w", newline="") as handle:
                csv.writer(handle).writerow(COLUMNS)

    def write(self, step: int, epoch: int, phase: str, values: Mapping[str, float]) -> None:
        with self.path.open("a", newline="") as handle:
            writer = csv.writer(handle)
            for name, value in values.items():
                writer.writerow((int(step), int(epoch), phase, name, repr(float(value))))


def read_metrics(path: str | Path, phase: str) -> dict[str, list[tuple[int, float]]]:
    """name -> [(step, value), ...] of one phase, in file order."""
    series: dict[str, list[tuple[int, float]]] = defaultdict(list)
    with Path(path).open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row["phase"] == phase:
                series[row["name"]].append((int(row["step"]), float(row["value"])))
    return dict(series)
