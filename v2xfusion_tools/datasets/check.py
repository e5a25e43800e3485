"""Sanity check of a raw data set: frames per split, missing files, box / point statistics, pictures.

Reads every frame through the same readers training uses (raw.py), so a set that passes here loads.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from v2xfusion_tools.datasets.raw import RawDataset, open_raw_dataset
from v2xfusion_tools.vis import DatasetStatistics, dataset_statistics, render_frame

PRESET_OF_LAYOUT = {"kitti": "kitti", "dair": "v2x"}


@dataclass
class CheckReport:
    """What check_dataset found and wrote."""

    dataset: RawDataset
    statistics: DatasetStatistics
    missing: list[Path] = field(default_factory=list)
    ignored_types: Counter = field(default_factory=Counter)
    pictures: list[Path] = field(default_factory=list)

    def format(self) -> str:
        """Printable lines: layout, splits, missing files, statistics, pictures."""
        ds = self.dataset
        splits = ", ".join(f"{name} {len(ids)}" for name, ids in ds.splits.items()) or "no split files"
        lines = [f"{ds.root}: {ds.layout} layout, {len(ds.frame_ids)} frames ({splits})"]
        if self.missing:
            shown = ", ".join(str(p) for p in self.missing[:5])
            more = f" and {len(self.missing) - 5} more" if len(self.missing) > 5 else ""
            lines.append(f"MISSING {len(self.missing)} files: {shown}{more}")
        else:
            lines.append("every frame has its calibration, image, point cloud and label files")
        if self.ignored_types:
            lines.append("label types outside our classes (ignored): "
                         + ", ".join(f"{t} {n}" for t, n in sorted(self.ignored_types.items())))
        lines.append(self.statistics.format())
        lines.extend(f"picture: {p}" for p in self.pictures)
        return "\n".join(lines)


def check_dataset(root: str | Path, cfg: dict, pictures_dir: str | Path | None = None,
                  picture_frames: int = 1, progress: Callable[[int], None] | None = None) -> CheckReport:
    """Read every frame of the raw set at `root`, gather statistics, draw the first `picture_frames`.

    cfg: the preset config (class names, geometry.pc_range for the BEV picture).
    """
    from PIL import Image

    dataset = open_raw_dataset(root)
    class_names = list(cfg["class_names"])
    index = {name: i for i, name in enumerate(class_names)}
    missing = dataset.missing_files()
    missing_set = set(missing)
    ignored: Counter = Counter()
    pictures: list[Path] = []
    readable = [f for f in dataset.frame_ids if not any(p in missing_set for p in dataset.files(f).values())]

    def frames():
        for number, frame_id in enumerate(readable):
            frame = dataset.read(frame_id)
            ignored.update(frame.ignored)
            labels = np.array([index.get(name, -1) for name in frame.labels], dtype=np.int64)
            if pictures_dir is not None and number < picture_frames:
                image = np.asarray(Image.open(frame.image_path).convert("RGB"))
                drawn = render_frame(image, frame.points, frame.boxes, labels, frame.lidar2img,
                                     cfg["geometry"]["pc_range"], class_names)
                pictures.extend(drawn.save(pictures_dir, frame_id))
            if progress:
                progress(1)
            yield frame.points, frame.boxes, labels

    statistics = dataset_statistics(frames(), class_names)
    return CheckReport(dataset, statistics, missing, ignored, pictures)
