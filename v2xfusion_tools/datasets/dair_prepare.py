"""Prepare DAIR-V2X-I (guide §2.1): the V2X infos the training loads and the KITTI-format mirror.

From the native layout (dair_format.py) this writes what BEVHeight's preparation (docs/prepare_dataset.md:
scripts/data_converter/dair2kitti.py, then scripts/gen_info_dair.py) writes:

    <root>/dair_12hz_infos_{train,val}.pkl     the V2X list (v2x_infos.py) of the split's frames, from
                                               label/camera (BEVHeight's choice: the objects the image
                                               shows); num_lidar_pts counted in the frame's point cloud
    <kitti_root>/training/calib/NNNNNN.txt     P0..P3 = [cam_K | 0], R0_rect = I, Tr_velo_to_cam =
                                               virtuallidar_to_camera, Tr_imu_to_velo = the same (as
                                               DAIR's gen_calib2kitti writes them)
    <kitti_root>/training/label_2/NNNNNN.txt   label/camera as KITTI labels (see below)
    <kitti_root>/training/velodyne/NNNNNN.bin  float32 x, y, z, intensity / 255 (DAIR's pcd2bin)
    <kitti_root>/training/image_2              symlink to <root>/image (.jpg, as BEVHeight's copy)
    <kitti_root>/testing/                      empty: DAIR-V2X-I has no public test split
    <kitti_root>/ImageSets/{train,val,trainval,test}.txt   from the split file (test empty)

Every frame of data_info.json gets its mirror files; the infos hold the train / val frames. Two values
differ from BEVHeight's on purpose: num_lidar_pts is the count of points in the box (BEVHeight writes 3
for every object; a loader that drops boxes with num_lidar_pts + num_radar_pts <= 0, as V2XDataset does,
would now drop camera-only objects) and visibility_token is the occluded_state (BEVHeight: "0").
The split file is DAIR's single-infrastructure-split-data.json ({"train": [...], "val": [...]}), given
with --split-file or found as <root>/split*.json.

label_2 is KITTI's format with KITTI's meaning and its two decimals: (h, w, l), bottom-centre location
in the camera frame, rotation_y and alpha of that box (v2xfusion_perception.boxes), so our KITTI reader
and evaluator read it back as the DAIR box. DAIR's own label_json2kitti writes (h, l, w) and -yaw_lidar
instead: the same cuboid for an upright camera, its heading turned by 90° (AIR-THU/DAIR-V2X issue #115);
the 3-D IoU and so the AP of either file are equal, the orientation (AOS) is not. Types fold as
BEVHeight's rewrite_label (Van, Truck, Bus -> Car; Motorcyclist, Tricyclist, Barrowlist -> Cyclist;
classes.py), other types stay as DAIR spells them; objects of zero length are dropped (DAIR's
label_filter). truncated / occluded hold DAIR's truncated_state / occluded_state (0, 1, 2), as DAIR's
converter writes them.
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
from v2xfusion_tools.datasets.classes import DAIR_TO_NUSCENES, class_of
from v2xfusion_tools.datasets.kitti_infos import image_shape
from v2xfusion_tools.datasets.pcd import read_pcd
from v2xfusion_tools.datasets.v2x_infos import make_v2x_info, write_v2x_infos
from v2xfusion_tools.progress import ProgressFactory, stage

INFO_SPLITS = ("train", "val")
INFOS_NAME = "dair_12hz_infos_{split}.pkl"
# DAIR-V2X-I PCDs carry intensity 0-255; DAIR's pcd2bin divides by 255 for the KITTI-format .bin (0-1)
DAIR_INTENSITY_SCALE = 255.0



@dataclass
class DairPrepareSummary:
    """What prepare_dair wrote: infos per split (file, frames, objects), the mirror and the wall time."""

    root: Path
    kitti_root: Path
    mirrored_frames: int = 0
    mirrored_objects: int = 0
    files: dict[str, tuple[Path, int, int]] = field(default_factory=dict)
    seconds: float = 0.0

    def format(self) -> str:
        """Printable lines."""
        lines = [f"{split}: {frames} frames, {objects} objects -> {path}"
                 for split, (path, frames, objects) in self.files.items()]
        lines.append(f"KITTI-format mirror: {self.mirrored_frames} frames, {self.mirrored_objects} label_2 "
                     f"objects -> {self.kitti_root}")
        return "\n".join(lines + [f"DAIR-V2X-I prepared in {self.seconds:.1f} s"])


def default_kitti_root(root: str | Path) -> Path:
    """Where the mirror goes by default: a sibling '<root>-kitti' (data/dair-v2x-i -> data/dair-v2x-i-kitti)."""
    root = Path(root).resolve()
    return root.parent / f"{root.name}-kitti"


def prepare_dair(root: str | Path, kitti_root: str | Path | None = None, split_file: str | Path | None = None,
                 progress: ProgressFactory | None = None) -> DairPrepareSummary:
    """Write the V2X infos into `root` and the KITTI-format mirror into `kitti_root` (default: sibling)."""
    started = time.perf_counter()
    root = Path(root)
    if not (root / "data_info.json").is_file():
        raise DatasetError(f"{root}: not a DAIR-V2X-I folder (no data_info.json)")
    kitti_root = Path(kitti_root) if kitti_root is not None else default_kitti_root(root)
    if kitti_root.resolve() == root.resolve():
        raise DatasetError(f"{kitti_root}: the KITTI-format mirror must be a folder of its own, not the DAIR root")
    frames = {Path(entry["pointcloud_path"]).stem: entry
              for entry in dair_format.read_data_info(root / "data_info.json")}
    splits = _read_splits(root, split_file, frames)
    _make_mirror_folders(root, kitti_root)
    wanted = {frame_id: split for split in INFO_SPLITS for frame_id in splits[split]}
    infos: dict[str, list[dict]] = {split: [] for split in INFO_SPLITS}
    summary = DairPrepareSummary(root, kitti_root)
    with stage(progress, "dair-v2x-i", len(frames)) as advance:
        for frame_id in sorted(frames):
            info, written = prepare_frame(root, kitti_root, frame_id, frames[frame_id])
            summary.mirrored_objects += written
            if frame_id in wanted:
                infos[wanted[frame_id]].append(info)
            advance(1)
    summary.mirrored_frames = len(frames)
    image_sets = {"train": splits["train"], "val": splits["val"], "trainval": splits["train"] + splits["val"],
                  "test": []}
    for name, ids in image_sets.items():
        kitti_format.write_image_set(kitti_root / "ImageSets" / f"{name}.txt", ids)
    for split in INFO_SPLITS:
        order = {frame_id: i for i, frame_id in enumerate(splits[split])}
        entries = sorted(infos[split], key=lambda info: order[Path(info["lidar_infos"]["LIDAR_TOP"]["filename"]).stem])
        path = root / INFOS_NAME.format(split=split)
        write_v2x_infos(path, entries)
        summary.files[split] = (path, len(entries), sum(len(info["ann_infos"]) for info in entries))
    summary.seconds = time.perf_counter() - started
    return summary


def prepare_frame(root: Path, kitti_root: Path, frame_id: str, entry: dict) -> tuple[dict, int]:
    """Write one frame's mirror files; return its V2X infos entry and the number of label_2 objects."""
    points = read_pcd(root / entry["pointcloud_path"])
    intrinsic = dair_format.read_camera_intrinsic(root / entry["calib_camera_intrinsic_path"]).cam_K
    lidar2cam = dair_format.read_rigid(root / entry["calib_virtuallidar_to_camera_path"])
    labels = dair_format.read_labels(root / entry["label_camera_std_path"])
    height, width = image_shape(root / entry["image_path"])
    boxes = labels.lidar_boxes()

    training = kitti_root / "training"
    kitti_format.write_calib(training / "calib" / f"{frame_id}.txt", mirror_calib(intrinsic, lidar2cam))
    mirror_labels = kitti_labels(labels, lidar2cam)
    kitti_format.write_labels(training / "label_2" / f"{frame_id}.txt", mirror_labels)
    scaled = points.copy()
    scaled[:, 3] /= DAIR_INTENSITY_SCALE
    kitti_format.write_velodyne(training / "velodyne" / f"{frame_id}.bin", scaled)

    keep = np.array([t in DAIR_TO_NUSCENES for t in labels.types], dtype=bool)
    counts = box_ops.points_in_boxes(points, boxes[keep]).sum(axis=0)
    where = f"{root / 'data_info.json'}: frame {frame_id}"
    info = make_v2x_info(
        sample_token=entry["image_path"], lidar_filename=entry["pointcloud_path"], image_size=(width, height),
        timestamp=_microseconds(entry["pointcloud_timestamp"], f"{where} pointcloud_timestamp"),
        camera_timestamp=_microseconds(entry["image_timestamp"], f"{where} image_timestamp"),
        lidar2cam=lidar2cam, intrinsic=intrinsic, boxes=boxes[keep],
        categories=[DAIR_TO_NUSCENES[t] for t in labels.types if t in DAIR_TO_NUSCENES], num_lidar_pts=counts,
        visibility=[str(int(v)) for v in labels.occluded_state[keep]])
    return info, len(mirror_labels)


def mirror_calib(intrinsic: np.ndarray, lidar2cam: np.ndarray) -> kitti_format.KittiCalib:
    """The KITTI calib DAIR's gen_calib2kitti writes: every P = [cam_K | 0], R0_rect = I, both Tr = [R | t]."""
    projection = np.hstack([np.asarray(intrinsic, dtype=np.float64), np.zeros((3, 1))])
    rigid = np.asarray(lidar2cam, dtype=np.float64)[:3, :4]
    return kitti_format.KittiCalib(P0=projection, P1=projection.copy(), P2=projection.copy(), P3=projection.copy(),
                                   R0_rect=np.eye(3), Tr_velo_to_cam=rigid, Tr_imu_to_velo=rigid.copy())


def kitti_labels(labels: dair_format.DairLabels, lidar2cam: np.ndarray) -> kitti_format.KittiLabels:
    """label/camera objects of positive length as KITTI label_2 objects (module docstring)."""
    keep = labels.size_wlh[:, 1] > 0
    boxes = labels.lidar_boxes()[keep]
    dimensions, location, rotation_y = box_ops.kitti_from_lidar_boxes(boxes, lidar2cam)
    types = tuple(class_of("dair", t) or t for t, k in zip(labels.types, keep) if k)
    return kitti_format.KittiLabels(
        types=types, truncated=labels.truncated_state[keep].astype(np.float64),
        occluded=labels.occluded_state[keep].astype(np.int64), alpha=box_ops.kitti_alpha(location, rotation_y),
        bbox=labels.box2d[keep], dimensions=dimensions, location=location, rotation_y=rotation_y)


def _read_splits(root: Path, split_file: str | Path | None, frames: dict[str, dict]) -> dict[str, list[str]]:
    if split_file is None:
        found = sorted(root.glob("split*.json"))
        if not found:
            raise DatasetError(f"{root}: no split file; pass --split-file (DAIR's "
                               f"data/split_datas/single-infrastructure-split-data.json)")
        split_file = found[0]
    splits = dair_format.read_split(split_file)
    for split in INFO_SPLITS:
        unknown = [frame_id for frame_id in splits[split] if frame_id not in frames]
        if unknown:
            raise DatasetError(f"{split_file}: {split} frame {unknown[0]} is not in data_info.json "
                               f"({len(unknown)} such frames)")
    return splits


def _make_mirror_folders(root: Path, kitti_root: Path) -> None:
    training = kitti_root / "training"
    try:
        for folder in ("calib", "label_2", "velodyne"):
            (training / folder).mkdir(parents=True, exist_ok=True)
        (kitti_root / "testing").mkdir(parents=True, exist_ok=True)
        (kitti_root / "ImageSets").mkdir(parents=True, exist_ok=True)
        link, target = training / "image_2", (root / "image").resolve()
        if link.is_symlink() and link.resolve() != target:
            link.unlink()
        if not link.is_symlink():
            if link.exists():
                raise DatasetError(f"{link}: exists and is not a symlink to {target}; remove it or choose "
                                   f"another --kitti-root")
            os.symlink(target, link, target_is_directory=True)
    except OSError as exc:
        raise DatasetError(f"{kitti_root}: cannot create the KITTI-format mirror: {exc.strerror}") from None


def _microseconds(value: str | int, where: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise DatasetError(f"{where}: expected a timestamp in microseconds, got {value!r}") from None

