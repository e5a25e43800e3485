"""Data loading: the data set of a config split, the batch sampler that splits global batches over
processes, and the DataLoader with worker processes.

`GlobalBatchSampler` cuts every global batch the same way whatever the number of processes: a run on
two processes (torchrun) and a run on one process that accumulates two micro-batches per step see the
same frames in the same steps, so their losses agree (tests/training/test_distributed.py).
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from v2xfusion_perception.errors import ConfigError, DatasetError
from v2xfusion_tools.data.collate import BatchFailure, FrameBatch, collate
from v2xfusion_tools.data.dataset import V2XDataset
from v2xfusion_tools.data.settings import data_settings
from v2xfusion_tools.datasets.v2x_infos import load_v2x_infos


def infos_path(config: Mapping[str, Any], split: str, data_root: str | Path | None = None) -> Path:
    """The infos file of `split` (data.infos; relative paths under data_root or the config's dataset_root)."""
    settings = data_settings(config)
    if split not in settings.infos:
        raise ConfigError(f"data.infos: no split {split!r}; the config names {', '.join(settings.infos)}")
    path = Path(settings.infos[split])
    return path if path.is_absolute() else Path(data_root or config["dataset_root"]) / path


def build_dataset(config: Mapping[str, Any], split: str, training: bool,
                  data_root: str | Path | None = None) -> V2XDataset:
    """The V2XDataset of one split of a loaded config; data_root overrides the config's dataset_root."""
    settings = data_settings(config)
    root = Path(data_root or config["dataset_root"])
    path = infos_path(config, split, root)
    if not path.is_file():
        raise DatasetError(f"{path}: infos file of split {split!r} not found (data.infos.{split} under "
                           f"dataset_root {root})")
    return V2XDataset(load_v2x_infos(path), root, path, config["class_names"], config["geometry"], settings,
                      training=training, seed=int(config.get("seed", 0)))


class GlobalBatchSampler(Sampler[list[int]]):
    """The micro-batches of one process.

    Each epoch orders the frames (a permutation seeded by seed and epoch when shuffling, else in
    order); global batch k is frames [k G, (k + 1) G), G = batch_size * accumulate * world_size, cut
    into accumulate * world_size micro-batches of batch_size; process `rank` takes micro-batches
    a * world_size + rank for a = 0 .. accumulate - 1, in that order. drop_last: an incomplete last
    global batch is dropped (training); else (evaluation, one process) the tail forms smaller batches.
    """

    def __init__(self, size: int, batch_size: int, accumulate: int = 1, world_size: int = 1, rank: int = 0,
                 shuffle: bool = False, seed: int = 0, drop_last: bool = True) -> None:
        if batch_size < 1 or accumulate < 1 or not 0 <= rank < world_size:
            raise ValueError(f"batch_size {batch_size}, accumulate {accumulate}, rank {rank} / {world_size}")
        if not drop_last and (world_size > 1 or accumulate > 1):
            raise ValueError("drop_last=False is for one process without accumulation")
        self.size, self.batch_size, self.accumulate = size, batch_size, accumulate
        self.world_size, self.rank = world_size, rank
        self.shuffle, self.seed, self.drop_last = shuffle, seed, drop_last
        self.epoch = 0

    @property
    def global_batch(self) -> int:
        return self.batch_size * self.accumulate * self.world_size

    @property
    def steps_per_epoch(self) -> int:
        """Optimizer steps per epoch (global batches)."""
        if self.drop_last:
            return self.size // self.global_batch
        return -(-self.size // self.global_batch)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        if self.drop_last:
            return self.steps_per_epoch * self.accumulate
        return self.steps_per_epoch

    def __iter__(self) -> Iterator[list[int]]:
        order = (np.random.default_rng([self.seed, self.epoch]).permutation(self.size) if self.shuffle
                 else np.arange(self.size))
        for step in range(self.steps_per_epoch):
            chunk = order[step * self.global_batch:(step + 1) * self.global_batch]
            for a in range(self.accumulate):
                part = a * self.world_size + self.rank
                micro = chunk[part * self.batch_size:(part + 1) * self.batch_size]
                if len(micro):
                    yield [int(i) for i in micro]


def _one_thread(_: int) -> None:
    # loader workers decode and augment with numpy; torch's intra-op pool would only fight the trainer
    torch.set_num_threads(1)


def make_loader(dataset: V2XDataset, sampler: GlobalBatchSampler, workers: int, pin_memory: bool = False
                ) -> DataLoader:
    """A DataLoader over dataset with `workers` processes (0: in this process) and our collation."""
    return DataLoader(dataset, batch_sampler=sampler, num_workers=workers, collate_fn=collate,
                      pin_memory=pin_memory, worker_init_fn=_one_thread if workers else None)


def batches(loader: DataLoader) -> Iterator[FrameBatch]:
    """The loader's batches; a frame that could not be read raises its DatasetError here, in this process."""
    for batch in loader:
        if isinstance(batch, BatchFailure):
            raise DatasetError(batch.message)
        yield batch
