"""Calibration and validation frames of a split, read lazily through the training data pipeline.

Quantization needs a few hundred frames of network inputs; held in memory at full resolution they
would take gigabytes, so `DatasetFrames` reads frame i (evaluation mode: no augmentation, the
evaluation resize / crop) only when asked, as a one-frame FusionBatch.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from v2xfusion_perception.errors import DatasetError
from v2xfusion_tools.data.collate import BatchFailure, collate
from v2xfusion_tools.data.dataset import FrameMeta, V2XDataset
from v2xfusion_tools.models import FusionBatch


class DatasetFrames:
    """A sequence of one-frame FusionBatches: frames `indices` of `dataset`."""

    def __init__(self, dataset: V2XDataset, indices: range) -> None:
        self.dataset, self.indices = dataset, indices

    def __len__(self) -> int:
        return len(self.indices)

    def meta(self, position: int) -> FrameMeta:
        return self.dataset.meta(self.indices[position])

    def __getitem__(self, position: int) -> FusionBatch:
        batch = collate([self.dataset[self.indices[position]]])
        if isinstance(batch, BatchFailure):
            raise DatasetError(batch.message)
        return batch.inputs


def split_frames(config: Mapping[str, Any], split: str, n_calib: int, n_val: int,
                 data_root: str | Path | None = None) -> tuple[DatasetFrames, DatasetFrames]:
    """The first n_calib frames of the split for calibration, the next n_val for validation (disjoint).
    Raises DatasetError when the split has fewer than n_calib + n_val frames."""
    from v2xfusion_tools.data.loader import build_dataset

    dataset = build_dataset(config, split, training=False, data_root=data_root)
    if len(dataset) < n_calib + n_val:
        raise DatasetError(f"{dataset.source}: split {split!r} has {len(dataset)} frames, fewer than --n-calib "
                           f"{n_calib} + --n-val {n_val}")
    return DatasetFrames(dataset, range(0, n_calib)), DatasetFrames(dataset, range(n_calib, n_calib + n_val))
