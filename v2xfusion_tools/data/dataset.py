"""The one data set class of training, evaluation and pictures: frames of a V2X infos list, read from disk.

Synthetic, KITTI-converted and DAIR-V2X-I sets alike are a V2X infos list (design.md §6) plus the files
it names under the data set root; nothing here knows which one it reads. A frame becomes a `Sample`:
the network-input image (resized / cropped to geometry.image_size), the points in range, the
calibration, the ground plane (from the infos' `denorm`), and the boxes of the config's classes, all
augmented in training. A missing or corrupt file is a DatasetError naming it; `__getitem__` hands it
back as a `FrameFailure` so that a loader worker can pass it to the training process intact.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from v2xfusion_perception.errors import DatasetError
from v2xfusion_tools.data import transforms
from v2xfusion_tools.data.settings import DataSettings
from v2xfusion_tools.datasets.kitti_format import read_velodyne
from v2xfusion_tools.datasets.pcd import read_pcd
from v2xfusion_tools.datasets.v2x_infos import V2XFrame, v2x_frame


@dataclass(frozen=True)
class FrameMeta:
    """What evaluation and pictures need besides the network inputs.

    frame_id: the image file's stem (the KITTI-format label_2 name); image_size: native (W, H);
    lidar2cam, lidar2img: (4, 4) float64 of the original (not augmented) frame.
    """

    index: int
    sample_token: str
    frame_id: str
    image_path: Path
    lidar_path: Path
    image_size: tuple[int, int]
    lidar2cam: np.ndarray
    lidar2img: np.ndarray


@dataclass(frozen=True)
class Sample:
    """One frame ready for collation.

    img: (3, H, W) float32 normalised network input; points: (N, 4) float32 x y z intensity (0-1) in
    the augmented LiDAR frame, inside pc_range; camera_intrinsics, lidar2camera, img_aug_matrix,
    lidar_aug_matrix: (4, 4) float32; ground_plane: (4,) float32 in the original LiDAR frame;
    gt_boxes: (M, 7) float32 internal boxes in the augmented frame; gt_labels: (M,) int64 indices
    into the config's class_names.
    """

    img: np.ndarray
    points: np.ndarray
    camera_intrinsics: np.ndarray
    lidar2camera: np.ndarray
    img_aug_matrix: np.ndarray
    lidar_aug_matrix: np.ndarray
    ground_plane: np.ndarray
    gt_boxes: np.ndarray
    gt_labels: np.ndarray
    meta: FrameMeta


@dataclass(frozen=True)
class FrameFailure:
    """A frame that could not be read: the DatasetError's message (names the file)."""

    index: int
    message: str


@dataclass(frozen=True)
class RawInputs:
    """A frame's files as read: image (H, W, 3) uint8 RGB at native size; points (N, 4) float32 in
    the original LiDAR frame, intensity divided by data.intensity_divisor, non-finite points dropped."""

    image: np.ndarray
    points: np.ndarray


class V2XDataset(Dataset):
    """Frames of a V2X infos list under `root`.

    infos: the list (v2x_infos.load_v2x_infos); source: the infos file (named in errors); class_names,
    geometry: the config's; training: augment (seeded by seed, the epoch and the frame index, so a
    frame's augmentation does not depend on worker or process count).
    """

    def __init__(self, infos: Sequence[dict], root: str | Path, source: str | Path, class_names: Sequence[str],
                 geometry: Mapping[str, Any], settings: DataSettings, training: bool, seed: int = 0) -> None:
        self.root = Path(root)
        self.source = Path(source)
        self.class_names = tuple(class_names)
        self.pc_range = tuple(float(v) for v in geometry["pc_range"])
        self.image_size = tuple(int(v) for v in geometry["image_size"])
        self.settings = settings
        self.training = training
        self.seed = int(seed)
        self.epoch = 0
        self.frames: list[V2XFrame] = [v2x_frame(info, settings.size_order, self.source) for info in infos]

    def __len__(self) -> int:
        return len(self.frames)

    def set_epoch(self, epoch: int) -> None:
        """Training augmentation of the coming epoch (call before creating the loader's iterator)."""
        self.epoch = int(epoch)

    def meta(self, index: int) -> FrameMeta:
        frame = self.frames[index]
        return FrameMeta(index=index, sample_token=frame.sample_token, frame_id=Path(frame.image_path).stem,
                         image_path=self.root / frame.image_path, lidar_path=self.root / frame.lidar_path,
                         image_size=frame.image_size, lidar2cam=frame.lidar2cam, lidar2img=frame.lidar2img)

    def ground_truth(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The frame's boxes (M, 7) float64 (original frame) and labels (M,) int64 of the config's
        classes, with at least data.min_lidar_points points."""
        frame = self.frames[index]
        labels = np.array([self.class_names.index(name) if name in self.class_names else -1
                           for name in frame.class_names], dtype=np.int64)
        keep = (labels >= 0) & (frame.num_lidar_pts >= self.settings.min_lidar_points)
        return frame.boxes[keep].reshape(-1, 7), labels[keep]

    def read(self, index: int) -> RawInputs:
        """The frame's image and points; a DatasetError names a missing or corrupt file."""
        meta = self.meta(index)
        points = read_points(meta.lidar_path)
        points = points[np.all(np.isfinite(points), axis=1)]
        points[:, 3] /= self.settings.intensity_divisor
        image = read_image(meta.image_path)
        expected = self.frames[index].image_size
        if expected[0] > 0 and image.shape[1::-1] != expected:
            raise DatasetError(f"{meta.image_path}: image is {image.shape[1]}x{image.shape[0]}, the infos "
                               f"({self.source}, {meta.sample_token}) say {expected[0]}x{expected[1]}")
        return RawInputs(image, points)

    def __getitem__(self, index: int) -> Sample | FrameFailure:
        try:
            return self._sample(index)
        except DatasetError as exc:
            return FrameFailure(index, str(exc))

    def _sample(self, index: int) -> Sample:
        meta = self.meta(index)
        raw = self.read(index)
        rng = np.random.default_rng([self.seed, self.epoch, index]) if self.training else None
        settings = self.settings
        native_size = (raw.image.shape[1], raw.image.shape[0])
        points = raw.points
        if settings.camera_fov_only:
            points = points[transforms.points_in_image(points, meta.lidar2img, native_size)]
        boxes, labels = self.ground_truth(index)
        aug = np.eye(4)
        if rng is not None:
            a = settings.augment
            aug = transforms.random_lidar_aug(rng, a.rotation, a.scale, a.translation_std, a.flip_y, a.flip_x)
            points = transforms.transform_points(points, aug)
            boxes = transforms.transform_boxes(boxes, aug)
        points = points[transforms.points_in_range(points, self.pc_range)]
        if settings.heading_mod_pi:
            boxes = transforms.fold_heading(boxes)
        inside = transforms.boxes_in_bev_range(boxes, self.pc_range)
        crop = transforms.image_crop(native_size, self.image_size, settings.image.resize_jitter, rng)
        picture = transforms.apply_image_crop(Image.fromarray(raw.image), crop, self.image_size)
        frame = self.frames[index]
        intrinsics = np.eye(4)
        intrinsics[:3, :3] = frame.intrinsic
        return Sample(
            img=transforms.normalise_image(picture, settings.image.mean, settings.image.std),
            points=np.ascontiguousarray(points, dtype=np.float32),
            camera_intrinsics=intrinsics.astype(np.float32),
            lidar2camera=frame.lidar2cam.astype(np.float32),
            img_aug_matrix=crop.matrix.astype(np.float32),
            lidar_aug_matrix=aug.astype(np.float32),
            ground_plane=transforms.ground_plane_from_denorm(frame.denorm, frame.lidar2cam).astype(np.float32),
            gt_boxes=boxes[inside].astype(np.float32).reshape(-1, 7),
            gt_labels=labels[inside],
            meta=meta)


def read_points(path: Path) -> np.ndarray:
    """A point cloud file by its suffix: KITTI `.bin` (float32 x y z r) or `.pcd`. Returns (N, 4) float32."""
    if path.suffix == ".bin":
        return read_velodyne(path)
    if path.suffix == ".pcd":
        return read_pcd(path)
    raise DatasetError(f"{path}: unknown point cloud format {path.suffix!r}; expected .bin (KITTI) or .pcd")


def read_image(path: Path) -> np.ndarray:
    """An image file as (H, W, 3) uint8 RGB; a missing, unreadable or truncated file is a DatasetError."""
    try:
        with Image.open(path) as image:
            image.load()
            return np.asarray(image.convert("RGB"))
    except FileNotFoundError:
        raise DatasetError(f"{path}: image file not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DatasetError(f"{path}: cannot read the image ({exc})") from None
