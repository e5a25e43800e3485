"""Sanity check of a raw data set: frames per split, missing files, box / point statistics, pictures.

Reads every frame through the same readers training uses (raw.py), so a set that passes here loads.
A prepared folder (one holding *_infos_*.pkl: mmdet3d KITTI infos or V2X infos) is summarised from its
infos files as well (check_infos): frames and objects per file, and the files they name that are missing.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from v2xfusion_perception.errors import DatasetError
from v2xfusion_tools.datasets.classes import NUSCENES_TO_CLASS
from v2xfusion_tools.datasets.raw import RawDataset, open_raw_dataset
from v2xfusion_tools.datasets.safe_pickle import load_pickle
from v2xfusion_tools.datasets.v2x_infos import CAMERA, LIDAR, check_v2x_infos
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


@dataclass
class InfosReport:
    """One infos file of a prepared folder: its kind ('mmdet3d kitti' or 'v2x'), frames, objects per
    class name, and the image / point cloud files its frames name that do not exist."""

    path: Path
    kind: str
    frames: int
    objects: Counter = field(default_factory=Counter)
    missing: list[Path] = field(default_factory=list)

    def format(self) -> str:
        """One line, plus one for missing files."""
        objects = ", ".join(f"{name} {count}" for name, count in sorted(self.objects.items())) or "no objects"
        line = f"{self.path.name}: {self.kind} infos, {self.frames} frames ({objects})"
        if self.missing:
            shown = ", ".join(str(p) for p in self.missing[:3])
            line += f"\nMISSING {len(self.missing)} files named by {self.path.name}: {shown}"
        return line


def check_infos(root: str | Path) -> list[InfosReport]:
    """Summarise every *_infos_*.pkl directly under `root` (read through the restricted unpickler; mmdet3d's
    kitti_dbinfos_train.pkl, the ground-truth database, is not an infos file and is left alone).

    V2X files name their files relative to `root`; mmdet3d KITTI files name them under training/ (testing/
    for the test split) of `root`. Objects are counted by our class (V2X) or KITTI class (mmdet3d).
    """
    root = Path(root)
    reports = []
    for path in sorted(root.glob("*_infos_*.pkl")):
        content = load_pickle(path)
        if isinstance(content, dict) and "data_list" in content:
            reports.append(_mmdet3d_report(root, path, content))
        elif isinstance(content, list):
            infos = check_v2x_infos(content, path)
            report = InfosReport(path, "v2x", len(infos))
            for info in infos:
                report.objects.update(NUSCENES_TO_CLASS.get(a["category_name"], a["category_name"])
                                      for a in info["ann_infos"])
                for name in (info["cam_infos"][CAMERA]["filename"], info["lidar_infos"][LIDAR]["filename"]):
                    if not (root / name).exists():
                        report.missing.append(root / name)
            reports.append(report)
        else:
            raise DatasetError(f"{path}: neither an mmdet3d {{metainfo, data_list}} file nor a V2X infos list")
    return reports


def _mmdet3d_report(root: Path, path: Path, content: dict) -> InfosReport:
    names = {int(i): name for name, i in content.get("metainfo", {}).get("categories", {}).items() if int(i) >= 0}
    folder = root / ("testing" if path.stem.endswith("_test") else "training")
    report = InfosReport(path, "mmdet3d kitti", len(content["data_list"]))
    for entry in content["data_list"]:
        try:
            report.objects.update(names.get(int(inst["bbox_label_3d"]), "?") for inst in entry.get("instances", [])
                                  if int(inst["bbox_label_3d"]) >= 0)
            files = (folder / "image_2" / entry["images"]["CAM2"]["img_path"],
                     folder / "velodyne" / entry["lidar_points"]["lidar_path"])
        except (KeyError, TypeError, ValueError) as exc:
            raise DatasetError(f"{path}: malformed mmdet3d KITTI entry ({type(exc).__name__}: {exc})") from None
        report.missing.extend(p for p in files if not p.exists())
    return report
