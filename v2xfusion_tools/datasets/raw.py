"""One reader over the two raw layouts we accept: KITTI 3D Object and DAIR-V2X-I native.

`open_raw_dataset(root)` recognises the layout from its files (KITTI: training/calib; DAIR:
data_info.json) and returns a `RawDataset` whose `read(frame_id)` gives a `RawFrame` in our
conventions: points in the LiDAR frame, boxes as internal (x, y, z, dx, dy, dz, yaw) LiDAR boxes,
class names mapped through `classes.py` (ignored types dropped, counted in `ignored`). Synthetic sets
are written in these same layouts, so nothing here knows about them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from v2xfusion_perception.errors import DatasetError
from v2xfusion_tools.datasets import dair_format, kitti_format
from v2xfusion_tools.datasets.classes import class_of
from v2xfusion_tools.datasets.pcd import read_pcd

LAYOUTS = ("kitti", "dair")
# DAIR-V2X-I PCDs carry intensity in 0-255; KITTI velodyne files carry reflectance in 0-1. RawFrame
# points always hold 0-1 (the scale the models are trained on).
DAIR_INTENSITY_SCALE = 255.0


@dataclass(frozen=True)
class RawFrame:
    """One frame read from disk, in our conventions.

    points: (N, 4) float32 x, y, z, intensity in 0-1 (LiDAR frame); image_path: the camera image;
    lidar2cam: (4, 4) float64 LiDAR -> camera; intrinsics: (3, 3) float64 pinhole matrix;
    lidar2img: (4, 4) float64 LiDAR -> pixels (homogeneous); boxes: (M, 7) float64 internal boxes;
    labels: M class names (ours); ignored: label types present but not mapped to a class.
    """

    frame_id: str
    points: np.ndarray
    image_path: Path
    lidar2cam: np.ndarray
    intrinsics: np.ndarray
    lidar2img: np.ndarray
    boxes: np.ndarray
    labels: tuple[str, ...]
    ignored: tuple[str, ...] = ()


@dataclass
class RawDataset:
    """A raw data set on disk: its layout, root, and frame ids per split (file order)."""

    layout: str
    root: Path
    splits: dict[str, list[str]] = field(default_factory=dict)
    _dair_frames: dict[str, dict] = field(default_factory=dict, repr=False)

    @property
    def frame_ids(self) -> list[str]:
        """Every frame id of the set, sorted."""
        if self.layout == "dair":
            return sorted(self._dair_frames)
        return sorted(p.stem for p in (self.root / "training" / "calib").glob("*.txt"))

    def files(self, frame_id: str) -> dict[str, Path]:
        """The files a frame consists of, by role."""
        if self.layout == "kitti":
            base = self.root / "training"
            # KITTI ships PNG; KITTI-format mirrors of DAIR-V2X-I keep DAIR's JPEG images
            image = base / "image_2" / f"{frame_id}.png"
            if not image.exists() and (base / "image_2" / f"{frame_id}.jpg").exists():
                image = image.with_suffix(".jpg")
            return {"calib": base / "calib" / f"{frame_id}.txt", "image": image,
                    "label": base / "label_2" / f"{frame_id}.txt", "lidar": base / "velodyne" / f"{frame_id}.bin"}
        info = self._dair_frames.get(frame_id)
        if info is None:
            raise DatasetError(f"{self.root / 'data_info.json'}: no frame {frame_id!r}")
        return {"image": self.root / info["image_path"], "lidar": self.root / info["pointcloud_path"],
                "intrinsic": self.root / info["calib_camera_intrinsic_path"],
                "extrinsic": self.root / info["calib_virtuallidar_to_camera_path"],
                "label": self.root / info["label_lidar_std_path"]}

    def missing_files(self) -> list[Path]:
        """Files that some frame needs and that do not exist."""
        return [path for frame_id in self.frame_ids for path in self.files(frame_id).values() if not path.exists()]

    def read(self, frame_id: str) -> RawFrame:
        """Read one frame; a missing or malformed file is a DatasetError naming it."""
        files = self.files(frame_id)
        if self.layout == "kitti":
            calib = kitti_format.read_calib(files["calib"])
            points = kitti_format.read_velodyne(files["lidar"])
            labels = kitti_format.read_labels(files["label"])
            keep = np.array([t != kitti_format.DONT_CARE for t in labels.types], dtype=bool)
            labels = labels.select(keep)
            boxes = labels.lidar_boxes(calib.lidar2cam)
            types = labels.types
            lidar2cam, lidar2img = calib.lidar2cam, calib.lidar2img
            intrinsics = calib.P2[:3, :3].copy()
        else:
            points = read_pcd(files["lidar"])
            points[:, 3] /= DAIR_INTENSITY_SCALE
            intrinsics = dair_format.read_camera_intrinsic(files["intrinsic"]).cam_K
            lidar2cam = dair_format.read_rigid(files["extrinsic"])
            dair_labels = dair_format.read_labels(files["label"])
            boxes, types = dair_labels.lidar_boxes(), dair_labels.types
            lidar2img = kitti_format.pad4(np.hstack([intrinsics, np.zeros((3, 1))])) @ lidar2cam
        mapped = [class_of(self.layout, t) for t in types]
        mask = np.array([m is not None for m in mapped], dtype=bool)
        return RawFrame(
            frame_id=frame_id, points=points, image_path=files["image"], lidar2cam=lidar2cam,
            intrinsics=intrinsics, lidar2img=lidar2img, boxes=boxes[mask].reshape(-1, 7),
            labels=tuple(m for m in mapped if m is not None),
            ignored=tuple(t for t, m in zip(types, mapped) if m is None))


def open_raw_dataset(root: str | Path) -> RawDataset:
    """Recognise the layout under `root` and list its frames and splits."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: data set root not found (expected a folder)")
    if (root / "training" / "calib").is_dir():
        splits = {}
        for split in kitti_format.SPLITS:
            path = root / "ImageSets" / f"{split}.txt"
            if path.exists():
                splits[split] = kitti_format.read_image_set(path)
        return RawDataset("kitti", root, splits)
    if (root / "data_info.json").is_file():
        frames = dair_format.read_data_info(root / "data_info.json")
        by_id = {Path(f["pointcloud_path"]).stem: f for f in frames}
        split_files = sorted(root.glob("split*.json"))
        splits = dair_format.read_split(split_files[0]) if split_files else {}
        return RawDataset("dair", root, {k: v for k, v in splits.items() if v}, by_id)
    raise DatasetError(f"{root}: not a data set root: found neither training/calib (KITTI 3D Object layout) "
                       f"nor data_info.json (DAIR-V2X-I layout)")
