"""Write synthetic frames in the raw KITTI 3D Object layout.

    <root>/training/calib/NNNNNN.txt      P0-P3, R0_rect, Tr_velo_to_cam, Tr_imu_to_velo
    <root>/training/image_2/NNNNNN.png    RGB at synthetic.image_native_size
    <root>/training/label_2/NNNNNN.txt    camera-rect labels, KITTI's 15 fields
    <root>/training/velodyne/NNNNNN.bin   float32 x, y, z, reflectance in [0, 1]
    <root>/testing/{calib,image_2,velodyne}/   empty: the synthetic set has no hidden test frames
    <root>/ImageSets/{train,val,trainval,test}.txt   (test.txt empty)

Which objects get a label line (KITTI annotates what the camera shows):
* a class line when some of the object is visible in image_2 (at least one pixel) and the LiDAR hit it
  at least once;
* a `DontCare` line (2-D box only) when it is visible in the image but has no LiDAR point, as KITTI
  marks objects it could not annotate in 3-D;
* nothing when no pixel of it is visible (outside the field of view, behind the camera, or hidden).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from v2xfusion_perception import boxes as box_ops
from v2xfusion_tools.datasets import kitti_format
from v2xfusion_tools.synth.frame import SyntheticFrame
from v2xfusion_tools.synth.rig import Rig

FOLDERS = ("calib", "image_2", "label_2", "velodyne")
TEST_FOLDERS = ("calib", "image_2", "velodyne")
PNG_COMPRESS_LEVEL = 1           # fast; PNG is lossless whatever the level


def prepare(root: Path) -> None:
    """Create the folder tree."""
    for folder in FOLDERS:
        (root / "training" / folder).mkdir(parents=True, exist_ok=True)
    for folder in TEST_FOLDERS:
        (root / "testing" / folder).mkdir(parents=True, exist_ok=True)
    (root / "ImageSets").mkdir(parents=True, exist_ok=True)


def frame_labels(frame: SyntheticFrame, rig: Rig) -> kitti_format.KittiLabels:
    """The label_2 content of a frame (rule in the module docstring)."""
    views, scene = frame.views, frame.scene
    seen = views.in_view & (views.visible_pixels > 0)
    labelled = seen & (views.lidar_points > 0)
    dont_care = seen & (views.lidar_points == 0)
    dims, location, rotation_y = box_ops.kitti_from_lidar_boxes(scene.boxes, rig.lidar2cam)
    alpha = box_ops.kitti_alpha(location, rotation_y)
    keep = labelled | dont_care
    types = tuple(scene.class_names[c] if labelled[i] else kitti_format.DONT_CARE
                  for i, c in enumerate(scene.classes) if keep[i])
    care = labelled[keep]
    return kitti_format.KittiLabels(
        types=types,
        truncated=_or_placeholder(care, views.truncation[keep], -1.0),
        occluded=_or_placeholder(care, views.occlusion_level[keep], -1).astype(np.int64),
        alpha=_or_placeholder(care, alpha[keep], -10.0),
        bbox=views.box2d[keep],
        dimensions=_or_placeholder(care, dims[keep], -1.0),
        location=_or_placeholder(care, location[keep], -1000.0),
        rotation_y=_or_placeholder(care, rotation_y[keep], -10.0),
    )


def _or_placeholder(care: np.ndarray, values: np.ndarray, placeholder: float) -> np.ndarray:
    """values on class rows, KITTI's DontCare placeholder (-1, -10, -1000) on the others."""
    return np.where(care.reshape((-1,) + (1,) * (values.ndim - 1)), values, placeholder)


def write_frame(root: Path, frame: SyntheticFrame, rig: Rig) -> kitti_format.KittiLabels:
    """Write one frame's four files; return the labels written."""
    name = kitti_format.frame_id(frame.index)
    training = root / "training"
    kitti_format.write_calib(training / "calib" / f"{name}.txt", rig.kitti_calib)
    Image.fromarray(frame.picture.image).save(training / "image_2" / f"{name}.png",
                                              compress_level=PNG_COMPRESS_LEVEL)
    labels = frame_labels(frame, rig)
    kitti_format.write_labels(training / "label_2" / f"{name}.txt", labels)
    kitti_format.write_velodyne(training / "velodyne" / f"{name}.bin", frame.scan.points)
    return labels


def write_image_sets(root: Path, train: list[int], val: list[int]) -> None:
    """ImageSets/{train,val,trainval,test}.txt (test empty)."""
    ids = {"train": sorted(train), "val": sorted(val), "trainval": sorted(train + val), "test": []}
    for split, indices in ids.items():
        kitti_format.write_image_set(root / "ImageSets" / f"{split}.txt",
                                     [kitti_format.frame_id(i) for i in indices])
