"""The V2X infos schema (design.md §6): build a frame's entry, write and read the list, and a typed view.

This is the flat list-of-dict format that BEVHeight's scripts/gen_info_dair.py writes for DAIR-V2X-I
(`dair_12hz_infos_{train,val}.pkl`), that the guide's KITTI converter writes (guide §2.2.2) and that
CUDA-V2XFusion's V2XDataset reads. One entry per frame:

    sample_token, scene_token   "image/NNNNNN.jpg" (the image path relative to the data set root)
    timestamp                   int, microseconds
    cam_infos.CAM_FRONT         sample_token, timestamp, is_key_frame, height, width, filename,
                                ego_pose {translation, rotation (w, x, y, z), token, timestamp},
                                calibrated_sensor {token, sensor_token, translation (3,),
                                rotation_matrix (3, 3) camera -> LiDAR, camera_intrinsic (3, 3)},
                                denorm (4,): the LiDAR frame's z = 0 plane in camera coordinates
    lidar_infos.LIDAR_TOP       sample_token, ego_pose, timestamp, filename ("velodyne/NNNNNN.pcd"),
                                calibrated_sensor (the camera's again, as BEVHeight and the guide write it)
    sweeps                      []
    ann_infos                   [{category_name (nuScenes-style), translation (3,) box centre in the
                                LiDAR frame, size (3,) = (w, l, h), yaw_lidar, rotation (pyquaternion
                                Quaternion about +z by yaw_lidar), prev, next, sample_token, instance_token,
                                token, visibility_token, num_lidar_pts, num_radar_pts, velocity (3,)}]

Size order: V2XDataset builds a nuScenes Box from translation / size / rotation, and a Box reads size
as (w, l, h), so our writers store (w, l, h) (v2xfusion_perception.boxes). BEVHeight's own DAIR script
stores (l, w, h) in `size`; `v2x_frame(..., size_order="lwh")` reads such a file.
The LiDAR frame is the ego frame (ego_pose identity), as in both references. `denorm` follows BEVHeight's
get_denorm: the plane through LiDAR points (0, 0, 0), (0, 1, 0), (1, 1, 0) in camera coordinates,
negated.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from v2xfusion_perception import boxes as box_ops
from v2xfusion_perception.errors import DatasetError
from v2xfusion_tools.datasets.classes import NUSCENES_TO_CLASS
from v2xfusion_tools.datasets.safe_pickle import load_pickle, write_pickle

CAMERA = "CAM_FRONT"
LIDAR = "LIDAR_TOP"
SIZE_ORDERS = ("wlh", "lwh")
INFO_KEYS = ("sample_token", "timestamp", "scene_token", "cam_infos", "lidar_infos", "sweeps", "ann_infos")
ANN_KEYS = ("category_name", "translation", "size", "rotation")
# a writer whose rotation quaternion and yaw_lidar disagree by more than this is refused: one of them is
# wrong and we cannot tell which
YAW_AGREEMENT = 1e-4


def ground_denorm(lidar2cam: np.ndarray) -> np.ndarray:
    """BEVHeight's `denorm`: the LiDAR z = 0 plane (a, b, c, d) in camera coordinates, sign as BEVHeight.

    lidar2cam: (4, 4). Returns (4,) float64 with a x + b y + c z + d = 0 on the plane (camera frame).
    """
    lidar2cam = np.asarray(lidar2cam, dtype=np.float64)
    p1, p2, p3 = box_ops.transform_points(np.array([[0.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 1.0, 0.0]]),
                                          lidar2cam)
    normal = np.cross(p2 - p1, p3 - p1)
    return -np.append(normal, -normal @ p1)


def make_v2x_info(sample_token: str, lidar_filename: str, image_size: tuple[int, int], timestamp: int,
                  camera_timestamp: int, lidar2cam: np.ndarray, intrinsic: np.ndarray, boxes: np.ndarray,
                  categories: list[str], num_lidar_pts: np.ndarray, visibility: list[str]) -> dict:
    """One frame's infos entry.

    sample_token: the image path relative to the root ("image/000012.jpg"), also the scene token and the
    camera filename; lidar_filename: the point cloud relative to the root; image_size: (W, H);
    timestamp / camera_timestamp: microseconds of the LiDAR sweep and of the image; lidar2cam: (4, 4);
    intrinsic: (3, 3); boxes: (M, 7) internal LiDAR boxes; categories: M nuScenes-style names;
    num_lidar_pts: (M,) int; visibility: M visibility tokens (strings).
    """
    from pyquaternion import Quaternion

    lidar2cam = np.asarray(lidar2cam, dtype=np.float64)
    cam2lidar = np.linalg.inv(lidar2cam)
    calibrated_sensor = {
        "token": sample_token, "sensor_token": sample_token,
        "translation": cam2lidar[:3, 3].copy(), "rotation_matrix": cam2lidar[:3, :3].copy(),
        "camera_intrinsic": np.asarray(intrinsic, dtype=np.float64).reshape(3, 3).copy(),
    }

    def ego_pose(stamp: int) -> dict:
        return {"translation": [0.0, 0.0, 0.0], "rotation": [1.0, 0.0, 0.0, 0.0], "token": sample_token,
                "timestamp": int(stamp)}

    width, height = (int(v) for v in image_size)
    camera = {
        "sample_token": sample_token, "timestamp": int(camera_timestamp), "is_key_frame": True,
        "height": height, "width": width, "filename": sample_token, "ego_pose": ego_pose(camera_timestamp),
        "calibrated_sensor": calibrated_sensor, "denorm": ground_denorm(lidar2cam),
    }
    lidar = {
        "sample_token": sample_token, "ego_pose": ego_pose(timestamp), "timestamp": int(timestamp),
        "filename": lidar_filename, "calibrated_sensor": dict(calibrated_sensor),
    }
    centre, size_wlh, yaw = box_ops.wlh_from_lidar_boxes(boxes)
    anns = []
    for i, category in enumerate(categories):
        anns.append({
            "category_name": category, "translation": centre[i], "rotation": Quaternion(axis=[0.0, 0.0, 1.0],
                                                                                      angle=float(yaw[i])),
            "yaw_lidar": float(yaw[i]), "size": size_wlh[i], "prev": "", "next": "", "sample_token": sample_token,
            "instance_token": sample_token, "token": sample_token, "visibility_token": str(visibility[i]),
            "num_lidar_pts": int(num_lidar_pts[i]), "num_radar_pts": 0, "velocity": np.zeros(3),
        })
    return {"sample_token": sample_token, "timestamp": int(timestamp), "scene_token": sample_token,
            "cam_infos": {CAMERA: camera}, "lidar_infos": {LIDAR: lidar}, "sweeps": [], "ann_infos": anns}


def write_v2x_infos(path: str | Path, infos: list[dict]) -> None:
    """Write a V2X infos list (pickle protocol 2, as mmcv.dump)."""
    write_pickle(path, infos)


def load_v2x_infos(path: str | Path) -> list[dict]:
    """Read a V2X infos file (ours, BEVHeight's, the guide's) through the restricted unpickler.

    Checks the structure the readers rely on: a list of frame dicts with cam_infos.CAM_FRONT (filename,
    calibrated_sensor), lidar_infos.LIDAR_TOP (filename) and ann_infos (each with category_name,
    translation, size, rotation). A violation is a DatasetError naming the file, frame and key.
    """
    path = Path(path)
    return check_v2x_infos(load_pickle(path), path)


def check_v2x_infos(infos: Any, path: str | Path) -> list[dict]:
    """The structure checks of load_v2x_infos on an already loaded object; returns it as the list."""
    if isinstance(infos, dict) and "data_list" in infos:
        raise DatasetError(f"{path}: this is an mmdet3d {{metainfo, data_list}} infos file, not the V2X list; "
                           f"convert it with `v2xfusion data kitti-to-v2x`")
    if not isinstance(infos, list):
        raise DatasetError(f"{path}: V2X infos must be a list of frame dicts, got {type(infos).__name__}")
    for index, info in enumerate(infos):
        where = f"{path}: frame {index}"
        _require(info, ("sample_token", "cam_infos", "lidar_infos", "ann_infos"), where)
        camera = _require(_require(info["cam_infos"], (CAMERA,), f"{where} cam_infos")[CAMERA],
                          ("filename", "calibrated_sensor"), f"{where} cam_infos.{CAMERA}")
        _require(camera["calibrated_sensor"], ("translation", "camera_intrinsic"),
                 f"{where} cam_infos.{CAMERA}.calibrated_sensor")
        _require(_require(info["lidar_infos"], (LIDAR,), f"{where} lidar_infos")[LIDAR], ("filename",),
                 f"{where} lidar_infos.{LIDAR}")
        if not isinstance(info["ann_infos"], list):
            raise DatasetError(f"{where}: ann_infos must be a list, got {type(info['ann_infos']).__name__}")
        for number, ann in enumerate(info["ann_infos"]):
            _require(ann, ANN_KEYS, f"{where} ann_infos[{number}]")
    return infos


@dataclass(frozen=True)
class V2XFrame:
    """One infos entry in our conventions (float64 matrices, internal boxes).

    image_path / lidar_path: relative to the data set root; image_size: (W, H); intrinsic: (3, 3);
    lidar2cam, lidar2img: (4, 4); denorm: (4,); boxes: (M, 7) internal (x, y, z, dx, dy, dz, yaw);
    categories: M nuScenes-style names; class_names: M of ours (None where the category is not one of
    our classes); num_lidar_pts: (M,) int64; velocity: (M, 2) float64.
    """

    sample_token: str
    timestamp: int
    image_path: str
    lidar_path: str
    image_size: tuple[int, int]
    intrinsic: np.ndarray
    lidar2cam: np.ndarray
    lidar2img: np.ndarray
    denorm: np.ndarray
    boxes: np.ndarray
    categories: tuple[str, ...]
    class_names: tuple[str | None, ...]
    num_lidar_pts: np.ndarray
    velocity: np.ndarray


def v2x_frame(info: dict, size_order: str = "wlh", source: str | Path = "infos") -> V2XFrame:
    """Typed view of one entry of load_v2x_infos. size_order: how `size` is stored, 'wlh' (ours, the
    guide's, nuScenes) or 'lwh' (BEVHeight's DAIR script); source names the file in errors."""
    if size_order not in SIZE_ORDERS:
        raise DatasetError(f"size_order {size_order!r} unknown; choose one of {', '.join(SIZE_ORDERS)}")
    where = f"{source}: {info.get('sample_token', '?')}"
    camera = info["cam_infos"][CAMERA]
    sensor = camera["calibrated_sensor"]
    cam2lidar = np.eye(4)
    cam2lidar[:3, :3] = _camera_rotation(sensor, where)
    cam2lidar[:3, 3] = _array(sensor["translation"], (3,), f"{where} calibrated_sensor.translation")
    lidar2cam = np.linalg.inv(cam2lidar)
    intrinsic = _array(sensor["camera_intrinsic"], (3, 3), f"{where} calibrated_sensor.camera_intrinsic")
    denorm = (_array(camera["denorm"], (4,), f"{where} denorm") if "denorm" in camera
              else ground_denorm(lidar2cam))
    anns = info["ann_infos"]
    count = len(anns)
    centre, size, yaw = np.zeros((count, 3)), np.zeros((count, 3)), np.zeros(count)
    points, velocity = np.zeros(count, dtype=np.int64), np.zeros((count, 2))
    for i, ann in enumerate(anns):
        at = f"{where} ann_infos[{i}]"
        centre[i] = _array(ann["translation"], (3,), f"{at}.translation")
        size[i] = _array(ann["size"], (3,), f"{at}.size")
        yaw[i] = _quaternion_yaw(ann["rotation"], f"{at}.rotation")
        if "yaw_lidar" in ann:
            gap = float(box_ops.wrap_yaw(yaw[i] - float(ann["yaw_lidar"])))
            if abs(gap) > YAW_AGREEMENT:
                raise DatasetError(f"{at}: rotation (yaw {yaw[i]:.6f}) and yaw_lidar ({float(ann['yaw_lidar']):.6f}) "
                                   f"disagree")
        points[i] = int(ann.get("num_lidar_pts", 0))
        if "velocity" in ann:
            velocity[i] = _array(ann["velocity"], None, f"{at}.velocity")[:2]
    size_wlh = size if size_order == "wlh" else size[:, [1, 0, 2]]
    categories = tuple(str(ann["category_name"]) for ann in anns)
    intrinsic4 = np.eye(4)
    intrinsic4[:3, :3] = intrinsic
    return V2XFrame(
        sample_token=str(info["sample_token"]), timestamp=int(info.get("timestamp", 0)),
        image_path=str(camera["filename"]), lidar_path=str(info["lidar_infos"][LIDAR]["filename"]),
        image_size=(int(camera.get("width", 0)), int(camera.get("height", 0))), intrinsic=intrinsic,
        lidar2cam=lidar2cam, lidar2img=intrinsic4 @ lidar2cam, denorm=denorm,
        boxes=box_ops.lidar_boxes_from_wlh(centre, size_wlh, yaw), categories=categories,
        class_names=tuple(NUSCENES_TO_CLASS.get(c) for c in categories), num_lidar_pts=points, velocity=velocity)


def _require(value: Any, keys: tuple[str, ...], where: str) -> dict:
    if not isinstance(value, dict):
        raise DatasetError(f"{where}: expected a dict, got {type(value).__name__}")
    missing = [key for key in keys if key not in value]
    if missing:
        raise DatasetError(f"{where}: missing {', '.join(missing)}")
    return value


def _array(value: Any, shape: tuple[int, ...] | None, where: str) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise DatasetError(f"{where}: expected numbers, got {value!r}") from None
    if shape is not None:
        if array.size != int(np.prod(shape)):
            raise DatasetError(f"{where}: expected shape {shape}, got {array.shape}")
        array = array.reshape(shape)
    if not np.all(np.isfinite(array)):
        raise DatasetError(f"{where}: holds inf or nan")
    return array


def _camera_rotation(sensor: dict, where: str) -> np.ndarray:
    """camera -> LiDAR rotation: `rotation_matrix`, or a (w, x, y, z) `rotation` as nuScenes stores it."""
    if "rotation_matrix" in sensor:
        return _array(sensor["rotation_matrix"], (3, 3), f"{where} calibrated_sensor.rotation_matrix")
    if "rotation" in sensor:
        q = _array(sensor["rotation"], (4,), f"{where} calibrated_sensor.rotation")
        w, x, y, z = q / np.linalg.norm(q)
        return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                         [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                         [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])
    raise DatasetError(f"{where} calibrated_sensor: missing rotation_matrix (or rotation)")


def _quaternion_yaw(rotation: Any, where: str) -> float:
    """Yaw of a rotation quaternion as pyquaternion's yaw_pitch_roll[0] (what V2XDataset uses)."""
    q = _array(getattr(rotation, "elements", rotation), (4,), where)
    norm = np.linalg.norm(q)
    if norm == 0.0:
        raise DatasetError(f"{where}: zero quaternion")
    w, x, y, z = q / norm
    return float(np.arctan2(2.0 * (w * z - x * y), 1.0 - 2.0 * (y * y + z * z)))
