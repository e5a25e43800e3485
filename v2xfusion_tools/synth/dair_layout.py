"""Write synthetic frames in DAIR-V2X-I's native layout (design.md §6).

    <root>/velodyne/NNNNNN.pcd                        binary PCD, x y z intensity (0-255, as DAIR)
    <root>/image/NNNNNN.jpg                           RGB at synthetic.image_native_size
    <root>/calib/camera_intrinsic/NNNNNN.json         cam_K, cam_D
    <root>/calib/virtuallidar_to_camera/NNNNNN.json   rotation, translation
    <root>/calib/virtuallidar_to_world/NNNNNN.json    rotation, translation, relative_error
    <root>/label/camera/NNNNNN.json                   objects seen in the image
    <root>/label/virtuallidar/NNNNNN.json             objects seen by the LiDAR
    <root>/data_info.json                             one entry per frame
    <root>/split_data.json                            {"train": [...], "val": [...], "test": []}

The split file has the schema of DAIR's data/split_datas/single-infrastructure-split-data.json.
Which objects are labelled: label/virtuallidar holds every object the LiDAR hit at least once;
label/camera every object with at least one visible pixel. Both use the virtual-LiDAR frame (box centre,
(h, w, l), yaw). An object the camera does not see carries a zero 2d_box and zero occluded /
truncated states in label/virtuallidar; alpha is always the KITTI-style observation angle in the
camera frame. PCD intensity is reflectance * 255 (DAIR's readers divide by 256, design.md §5
`intensity_scale`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from v2xfusion_perception import boxes as box_ops
from v2xfusion_tools.datasets import dair_format, pcd
from v2xfusion_tools.datasets.kitti_format import frame_id
from v2xfusion_tools.synth.frame import SyntheticFrame
from v2xfusion_tools.synth.rig import Rig

FOLDERS = ("velodyne", "image", "calib/camera_intrinsic", "calib/virtuallidar_to_camera",
           "calib/virtuallidar_to_world", "label/camera", "label/virtuallidar")
SPLIT_FILE = "split_data.json"
INTENSITY_SCALE = 255.0
JPEG_QUALITY = 92
TIMESTAMP_ORIGIN_US = 1_626_155_192_000_000    # a July 2021 morning, when DAIR-V2X-I was recorded
INTERSECTION = "synthetic_crossing"


def prepare(root: Path) -> None:
    """Create the folder tree."""
    for folder in FOLDERS:
        (root / folder).mkdir(parents=True, exist_ok=True)


def frame_labels(frame: SyntheticFrame, rig: Rig) -> tuple[dair_format.DairLabels, dair_format.DairLabels]:
    """(label/camera, label/virtuallidar) of a frame (rule in the module docstring)."""
    views, scene = frame.views, frame.scene
    seen = views.in_view & (views.visible_pixels > 0)
    centre, size_wlh, yaw = box_ops.wlh_from_lidar_boxes(scene.boxes)
    _, location, rotation_y = box_ops.kitti_from_lidar_boxes(scene.boxes, rig.lidar2cam)
    alpha = box_ops.kitti_alpha(location, rotation_y)

    def select(mask: np.ndarray) -> dair_format.DairLabels:
        return dair_format.DairLabels(
            types=tuple(scene.class_names[c] for c in scene.classes[mask]),
            occluded_state=np.where(seen, views.occlusion_level, 0)[mask],
            truncated_state=np.where(seen, views.truncated_state, 0)[mask],
            alpha=alpha[mask], box2d=np.where(seen[:, None], views.box2d, 0.0)[mask],
            centre=centre[mask], size_wlh=size_wlh[mask], rotation=yaw[mask])

    return select(seen), select(views.lidar_points > 0)


def write_frame(root: Path, frame: SyntheticFrame, rig: Rig, frame_rate: float) -> dict:
    """Write one frame's files; return its data_info.json entry."""
    name = frame_id(frame.index)
    points = frame.scan.points.copy()
    points[:, 3] *= INTENSITY_SCALE
    pcd.write_pcd(root / "velodyne" / f"{name}.pcd", points, encoding="binary")
    Image.fromarray(frame.picture.image).save(root / "image" / f"{name}.jpg", quality=JPEG_QUALITY)
    intrinsic = dair_format.CameraIntrinsic(cam_K=rig.intrinsic, cam_D=np.zeros(5))
    dair_format.write_camera_intrinsic(root / "calib" / "camera_intrinsic" / f"{name}.json", intrinsic)
    dair_format.write_rigid(root / "calib" / "virtuallidar_to_camera" / f"{name}.json", rig.lidar2cam)
    dair_format.write_rigid(root / "calib" / "virtuallidar_to_world" / f"{name}.json", rig.lidar2world,
                            extra={"relative_error": {"delta_x": 0.0, "delta_y": 0.0}})
    camera_labels, lidar_labels = frame_labels(frame, rig)
    dair_format.write_labels(root / "label" / "camera" / f"{name}.json", camera_labels)
    dair_format.write_labels(root / "label" / "virtuallidar" / f"{name}.json", lidar_labels)
    lidar_time = TIMESTAMP_ORIGIN_US + round(frame.index * 1e6 / frame_rate)
    return {
        "image_path": f"image/{name}.jpg",
        "image_timestamp": str(lidar_time + frame.camera_skew_us),
        "pointcloud_path": f"velodyne/{name}.pcd",
        "pointcloud_timestamp": str(lidar_time),
        "calib_camera_intrinsic_path": f"calib/camera_intrinsic/{name}.json",
        "calib_virtuallidar_to_camera_path": f"calib/virtuallidar_to_camera/{name}.json",
        "calib_virtuallidar_to_world_path": f"calib/virtuallidar_to_world/{name}.json",
        "label_camera_std_path": f"label/camera/{name}.json",
        "label_lidar_std_path": f"label/virtuallidar/{name}.json",
        "intersection_loc": INTERSECTION,
    }


def write_index(root: Path, entries: list[dict], train: list[int], val: list[int]) -> None:
    """data_info.json (frames in index order) and the split file."""
    dair_format.write_data_info(root / "data_info.json", entries)
    dair_format.write_split(root / SPLIT_FILE, {"train": [frame_id(i) for i in sorted(train)],
                                                "val": [frame_id(i) for i in sorted(val)], "test": []})
