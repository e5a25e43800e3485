"""Generate a synthetic data set on disk: frames in parallel processes, then the split / index files.

The same (config, preset, seed, frame index) always gives byte-identical files, whatever the number of
workers: frames are independent (see frame.py) and the split is drawn from the seed alone.
"""
from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from v2xfusion_perception.errors import ConfigError, DatasetError, V2XError
from v2xfusion_tools.synth import dair_layout, kitti_layout
from v2xfusion_tools.synth.frame import rig_for, simulate_frame
from v2xfusion_tools.synth.scene import check_scene_config

LAYOUTS = ("kitti", "v2x")


@dataclass
class SynthSummary:
    """What generate() wrote: per-class label counts (KITTI label_2 / DAIR label/virtuallidar), objects
    placed, points per frame, the split sizes and the wall time."""

    preset: str
    out_dir: Path
    frames: int
    seconds: float
    class_counts: dict[str, int] = field(default_factory=dict)
    objects_placed: int = 0
    points_per_frame: float = 0.0
    train: int = 0
    val: int = 0

    def format(self) -> str:
        """A few printable lines."""
        counts = ", ".join(f"{name} {count}" for name, count in self.class_counts.items())
        return (f"{self.frames} {self.preset} frames in {self.out_dir} ({self.seconds:.1f} s, "
                f"{self.frames / max(self.seconds, 1e-9):.1f} frames/s)\n"
                f"labelled objects: {counts} (of {self.objects_placed} placed)\n"
                f"points per frame: {self.points_per_frame:.0f}; split: train {self.train}, val {self.val}")


@dataclass(frozen=True)
class _FrameJob:
    synthetic: dict
    class_names: list[str]
    preset: str
    seed: int
    index: int
    out_dir: str


@dataclass(frozen=True)
class _FrameResult:
    index: int
    class_counts: dict[str, int]
    objects_placed: int
    points: int
    data_info: dict | None


def generate(cfg: dict, preset: str, frames: int, out_dir: str | Path, seed: int,
             progress: Callable[[int], None] | None = None, workers: int = 2) -> SynthSummary:
    """Write `frames` synthetic frames of `preset` ('kitti' or 'v2x' layout) under `out_dir`.

    cfg: a loaded config (load_config) with `class_names` and `synthetic`; seed: the data set seed;
    progress: called with 1 after each frame is written; workers: processes (1 = in this process).
    Existing files of the same names are overwritten.
    """
    started = time.perf_counter()
    if preset not in LAYOUTS:
        raise ConfigError(f"synthetic data: unknown preset {preset!r}; choose one of {', '.join(LAYOUTS)}")
    if cfg.get("preset", preset) != preset:
        raise ConfigError(f"synthetic data: the config is for preset {cfg['preset']!r}, asked for {preset!r}")
    if "synthetic" not in cfg:
        raise ConfigError(f"preset {preset!r}: the config has no 'synthetic' section")
    if frames < 1 or workers < 1:
        raise V2XError(f"synthetic data: frames ({frames}) and workers ({workers}) must be >= 1")
    synthetic, class_names = cfg["synthetic"], list(cfg["class_names"])
    check_scene_config(synthetic["scene"], class_names)
    train, val = split_indices(frames, synthetic["split_fractions"], seed)
    rig_for(synthetic, preset, seed)   # validates the sensor keys before any process starts
    root = Path(out_dir)
    try:
        (kitti_layout if preset == "kitti" else dair_layout).prepare(root)
    except OSError as exc:
        raise DatasetError(f"{root}: cannot create the data set folders: {exc.strerror}") from None
    jobs = [_FrameJob(synthetic, class_names, preset, seed, i, str(root)) for i in range(frames)]
    results: list[_FrameResult] = []
    if workers == 1 or frames == 1:
        for job in jobs:
            results.append(_run_frame(job))
            if progress:
                progress(1)
    else:
        # spawn: the caller may hold threads (torch, OpenVINO) that a fork would copy half-locked
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=min(workers, frames), mp_context=context) as pool:
            futures = [pool.submit(_run_frame, job) for job in jobs]
            for future in as_completed(futures):
                results.append(future.result())
                if progress:
                    progress(1)
    results.sort(key=lambda r: r.index)
    if preset == "kitti":
        kitti_layout.write_image_sets(root, train, val)
    else:
        dair_layout.write_index(root, [r.data_info for r in results], train, val)
    counts = {name: sum(r.class_counts.get(name, 0) for r in results) for name in class_names}
    return SynthSummary(preset=preset, out_dir=root, frames=frames, seconds=time.perf_counter() - started,
                        class_counts=counts, objects_placed=sum(r.objects_placed for r in results),
                        points_per_frame=float(np.mean([r.points for r in results])), train=len(train),
                        val=len(val))


def split_indices(frames: int, fractions: list[float], seed: int) -> tuple[list[int], list[int]]:
    """Frame indices of train and val, drawn from the seed; both non-empty where there are enough frames."""
    train_fraction, val_fraction = (float(f) for f in fractions)
    if min(train_fraction, val_fraction) < 0 or abs(train_fraction + val_fraction - 1.0) > 1e-6:
        raise ConfigError(f"synthetic.split_fractions must be two fractions >= 0 that add up to 1, got {fractions}")
    n_train = int(np.floor(frames * train_fraction + 0.5))
    if train_fraction > 0:
        n_train = max(n_train, 1)
    if val_fraction > 0 and frames >= 2:
        n_train = min(n_train, frames - 1)
    order = np.random.default_rng(np.random.SeedSequence([seed, 0x5B17])).permutation(frames)
    return sorted(int(i) for i in order[:n_train]), sorted(int(i) for i in order[n_train:])


def _run_frame(job: _FrameJob) -> _FrameResult:
    rig = rig_for(job.synthetic, job.preset, job.seed)
    frame = simulate_frame(rig, job.synthetic["scene"], job.class_names, job.seed, job.index)
    root = Path(job.out_dir)
    if job.preset == "kitti":
        labels = kitti_layout.write_frame(root, frame, rig).types
        data_info = None
    else:
        data_info = dair_layout.write_frame(root, frame, rig, job.synthetic["frame_rate"])
        labels = dair_layout.frame_labels(frame, rig)[1].types
    counts = {name: labels.count(name) for name in job.class_names}
    return _FrameResult(job.index, counts, len(frame.scene.boxes), len(frame.scan.points), data_info)
