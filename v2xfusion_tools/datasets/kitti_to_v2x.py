"""Build the V2X-format mirror of a KITTI folder (guide §2.2.2): symlinks, calib JSONs, V2X infos.

From a KITTI raw folder that holds mmdet3d v1.x infos (`v2xfusion data kitti-infos`), write under DST:

    image/, velodyne/                     -> SRC/training/image_2, SRC/training/velodyne (symlinks)
    training/{image_2,velodyne,label_2,calib[,velodyne_reduced]}, testing/{image_2,velodyne,calib}
                                          -> the same folders of SRC (symlinks, where SRC has them)
    calib/virtuallidar_to_camera/NNNNNN.json   {rotation 3x3, translation 3x1} of lidar2cam =
                                          R0_rect @ Tr_velo_to_cam, for every training/calib file
    kitti_infos_{train,val,trainval,test}.pkl  the V2X list (v2x_infos.py) of every frame of every
                                          split SRC has infos for

Each instance's camera-rect box (bottom centre, l h w, rotation_y) becomes a LiDAR-frame box through
the frame's lidar2cam (v2xfusion_perception.boxes): geometric centre, (w, l, h), yaw_lidar. Categories go
through classes.py (Car, Pedestrian, Cyclist -> vehicle.car, human.pedestrian.adult, vehicle.bicycle);
DontCare and the KITTI classes outside ours are left out, as the raw reader leaves them out.
num_lidar_pts is mmdet3d's count (points in the camera frustum inside the box), kept as it is.
Test frames (no labels) point into testing/ (their ids repeat training ids); their calibration lives in
their infos and in testing/calib. Frames have no clock in KITTI 3D Object: timestamp = 1000000 +
sample_idx, as the guide's converter writes it.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from v2xfusion_perception import boxes as box_ops
from v2xfusion_perception.errors import DatasetError
from v2xfusion_tools.datasets import dair_format, kitti_format
from v2xfusion_tools.datasets.classes import nuscenes_category
from v2xfusion_tools.datasets.kitti_infos import INFO_SPLITS
from v2xfusion_tools.datasets.safe_pickle import load_pickle
from v2xfusion_tools.datasets.v2x_infos import make_v2x_info, write_v2x_infos
from v2xfusion_tools.progress import ProgressFactory, stage

TRAINING_LINKS = ("image_2", "velodyne", "label_2", "calib", "velodyne_reduced")
TESTING_LINKS = ("image_2", "velodyne", "calib", "velodyne_reduced")
TIMESTAMP_ORIGIN = 1_000_000



@dataclass
class KittiToV2XSummary:
    """What convert_kitti_to_v2x wrote: symlinks, calib JSONs, per split (file, frames, objects), time."""

    dst_root: Path
    links: list[Path] = field(default_factory=list)
    calib_files: int = 0
    files: dict[str, tuple[Path, int, int]] = field(default_factory=dict)
    seconds: float = 0.0

    def format(self) -> str:
        """Printable lines."""
        head = f"{len(self.links)} symlinks, {self.calib_files} calib/virtuallidar_to_camera JSONs in {self.dst_root}"
        lines = [head]
        lines += [f"{split}: {frames} frames, {objects} objects -> {path}"
                  for split, (path, frames, objects) in self.files.items()]
        return "\n".join(lines + [f"V2X mirror written in {self.seconds:.1f} s"])


def convert_kitti_to_v2x(src_root: str | Path, dst_root: str | Path,
                         progress: ProgressFactory | None = None) -> KittiToV2XSummary:
    """Write the V2X-format mirror of the KITTI folder `src_root` (with mmdet3d infos) under `dst_root`."""
    started = time.perf_counter()
    src, dst = Path(src_root), Path(dst_root)
    if not (src / "training" / "calib").is_dir():
        raise DatasetError(f"{src}: not a KITTI raw folder (no training/calib)")
    if dst.resolve() == src.resolve():
        raise DatasetError(f"{dst}: --dst-root must differ from --src-root: the V2X infos carry the same "
                           f"file names as the mmdet3d infos they are made from")
    sources = {split: src / f"kitti_infos_{split}.pkl" for split in INFO_SPLITS}
    sources = {split: path for split, path in sources.items() if path.is_file()}
    if not sources:
        raise DatasetError(f"{src}: no kitti_infos_*.pkl; run `v2xfusion data kitti-infos --root {src}` first")
    summary = KittiToV2XSummary(dst)
    try:
        dst.mkdir(parents=True, exist_ok=True)
        summary.links = make_links(src.resolve(), dst)
    except OSError as exc:
        raise DatasetError(f"{dst}: cannot create the mirror's folders and links: {exc.strerror}") from None
    calib_paths = sorted((src / "training" / "calib").glob("*.txt"))
    data = {split: kitti_data_list(path) for split, path in sources.items()}
    total = len(calib_paths) + sum(len(data_list) for data_list, _ in data.values())
    with stage(progress, "kitti -> v2x", total) as advance:
        json_dir = dst / "calib" / "virtuallidar_to_camera"
        json_dir.mkdir(parents=True, exist_ok=True)
        for path in calib_paths:
            dair_format.write_rigid(json_dir / f"{path.stem}.json", kitti_format.read_calib(path).lidar2cam)
            advance(1)
        summary.calib_files = len(calib_paths)
        for split, (data_list, categories) in data.items():
            infos = []
            for entry in data_list:
                infos.append(v2x_info_from_kitti(entry, categories, split == "test", sources[split]))
                advance(1)
            out = dst / f"kitti_infos_{split}.pkl"
            write_v2x_infos(out, infos)
            summary.files[split] = (out, len(infos), sum(len(info["ann_infos"]) for info in infos))
    summary.seconds = time.perf_counter() - started
    return summary


def make_links(src: Path, dst: Path) -> list[Path]:
    """The mirror's folder symlinks (absolute targets); returns the links made or kept."""
    wanted = [(src / "training" / "image_2", dst / "image"), (src / "training" / "velodyne", dst / "velodyne")]
    wanted += [(src / "training" / name, dst / "training" / name) for name in TRAINING_LINKS]
    wanted += [(src / "testing" / name, dst / "testing" / name) for name in TESTING_LINKS]
    links = []
    for target, link in wanted:
        if not target.is_dir():
            continue
        if link.is_symlink():
            if link.resolve() == target.resolve():
                links.append(link)
                continue
            link.unlink()
        elif link.exists():
            raise DatasetError(f"{link}: exists and is not a symlink; remove it or choose another --dst-root")
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, link, target_is_directory=True)
        links.append(link)
    return links


def kitti_data_list(path: Path) -> tuple[list[dict], dict[int, str]]:
    """An mmdet3d KITTI infos file's data_list and its label index -> class name table (labels >= 0)."""
    content = load_pickle(path)
    if isinstance(content, list):
        raise DatasetError(f"{path}: already a V2X infos list; kitti-to-v2x reads mmdet3d's {{metainfo, "
                           f"data_list}} files (run `v2xfusion data kitti-infos` on the raw folder)")
    if not isinstance(content, dict) or "data_list" not in content or "metainfo" not in content:
        raise DatasetError(f"{path}: not an mmdet3d v1.x infos file (expected a dict with metainfo and data_list)")
    categories = content["metainfo"].get("categories", {})
    return list(content["data_list"]), {int(i): str(name) for name, i in categories.items() if int(i) >= 0}


def v2x_info_from_kitti(entry: dict, categories: dict[int, str], testing: bool, source: Path) -> dict:
    """One mmdet3d KITTI data_list entry as a V2X infos entry."""
    try:
        sample_idx = int(entry["sample_idx"])
        camera = entry["images"]["CAM2"]
        lidar_name = entry["lidar_points"]["lidar_path"]
        lidar2cam = np.asarray(camera["lidar2cam"], dtype=np.float64).reshape(4, 4)
        intrinsic = np.asarray(camera["cam2img"], dtype=np.float64).reshape(-1, 4)[:3, :3]
        image_size = (int(camera["width"]), int(camera["height"]))
        image_name = camera["img_path"]
        instances = entry.get("instances", [])
        kept = []
        for inst in instances:
            label = int(inst["bbox_label_3d"])
            category = nuscenes_category("kitti", categories[label]) if label in categories else None
            if category is not None:
                kept.append((category, np.asarray(inst["bbox_3d"], dtype=np.float64).reshape(7),
                             int(inst.get("num_lidar_pts", 0)), str(inst.get("occluded", 0))))
    except (KeyError, TypeError, ValueError) as exc:
        raise DatasetError(f"{source}: frame {entry.get('sample_idx', '?') if isinstance(entry, dict) else '?'}: "
                           f"malformed mmdet3d KITTI entry ({type(exc).__name__}: {exc})") from None
    if kept:
        bbox_3d = np.stack([k[1] for k in kept])
        # bbox_3d: bottom centre x y z, size l h w, rotation_y  ->  KITTI label order h w l
        boxes = box_ops.lidar_boxes_from_kitti(bbox_3d[:, [4, 5, 3]], bbox_3d[:, :3], bbox_3d[:, 6], lidar2cam)
    else:
        boxes = np.zeros((0, 7))
    folder = ("testing/image_2", "testing/velodyne") if testing else ("image", "velodyne")
    stamp = TIMESTAMP_ORIGIN + sample_idx
    return make_v2x_info(
        sample_token=f"{folder[0]}/{image_name}", lidar_filename=f"{folder[1]}/{lidar_name}", image_size=image_size,
        timestamp=stamp, camera_timestamp=stamp, lidar2cam=lidar2cam, intrinsic=intrinsic, boxes=boxes,
        categories=[k[0] for k in kept], num_lidar_pts=np.array([k[2] for k in kept], dtype=np.int64),
        visibility=[k[3] for k in kept])

