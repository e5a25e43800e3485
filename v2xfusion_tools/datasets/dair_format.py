"""Read and write DAIR-V2X-I's native files: data_info.json, calib JSONs, label JSONs, the split file.

The layout (design.md §6, as the DAIR-V2X tools read it), paths relative to the data set root:
* data_info.json: a list of frames, each with image_path (image/NNNNNN.jpg), pointcloud_path
  (velodyne/NNNNNN.pcd), calib_camera_intrinsic_path, calib_virtuallidar_to_camera_path,
  calib_virtuallidar_to_world_path, label_camera_std_path, label_lidar_std_path, image_timestamp,
  pointcloud_timestamp (microseconds, as strings), intersection_loc.
* calib/camera_intrinsic/NNNNNN.json: cam_K (9 numbers, row-major 3x3), cam_D (distortion).
* calib/virtuallidar_to_camera/NNNNNN.json and calib/virtuallidar_to_world/NNNNNN.json: rotation (3x3)
  and translation (3x1) of the rigid transform x_to = R x_from + t.
* label/camera/NNNNNN.json and label/virtuallidar/NNNNNN.json: a list of objects {type,
  occluded_state, truncated_state, alpha, 2d_box {xmin, ymin, xmax, ymax}, 3d_dimensions {h, w, l},
  3d_location {x, y, z} (box centre, virtual-LiDAR frame), rotation (yaw about z, rad)}. Both folders
  use the virtual-LiDAR frame; `camera` holds the objects seen in the image.
* the split file (DAIR's data/split_datas/*.json): {"train": [ids], "val": [ids], "test": [ids]}.
DAIR files may spell numbers as JSON strings ("1.52"); the readers accept both.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from v2xfusion_perception import boxes as box_ops
from v2xfusion_perception.errors import DatasetError

DATA_INFO_KEYS = (
    "image_path", "pointcloud_path", "calib_camera_intrinsic_path", "calib_virtuallidar_to_camera_path",
    "calib_virtuallidar_to_world_path", "label_camera_std_path", "label_lidar_std_path", "image_timestamp",
    "pointcloud_timestamp", "intersection_loc",
)
SPLIT_NAMES = ("train", "val", "test")


def read_json(path: str | Path) -> Any:
    """Load one JSON file; a missing or malformed file is a DatasetError naming it."""
    path = Path(path)
    try:
        with path.open() as handle:
            return json.load(handle)
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read JSON file: {exc.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: malformed JSON: {exc}") from None


def write_json(path: str | Path, value: Any) -> None:
    """Write compact JSON (as DAIR ships it); the same value always gives the same bytes."""
    Path(path).write_text(json.dumps(value))


def read_data_info(path: str | Path) -> list[dict]:
    """Read data_info.json: a list of frame dicts, each with every key of DATA_INFO_KEYS (as strings)."""
    frames = read_json(path)
    if not isinstance(frames, list):
        raise DatasetError(f"{path}: data_info must be a list of frames, got {type(frames).__name__}")
    for i, frame in enumerate(frames):
        if not isinstance(frame, dict):
            raise DatasetError(f"{path}: frame {i} must be an object, got {type(frame).__name__}")
        missing = [key for key in DATA_INFO_KEYS if key not in frame]
        if missing:
            raise DatasetError(f"{path}: frame {i} lacks {', '.join(missing)}")
        for key in DATA_INFO_KEYS:
            if not isinstance(frame[key], (str, int)):
                raise DatasetError(f"{path}: frame {i} field {key!r} must be a string, got {frame[key]!r}")
    return frames


def write_data_info(path: str | Path, frames: list[dict]) -> None:
    """Write data_info.json."""
    write_json(path, frames)


@dataclass(frozen=True)
class CameraIntrinsic:
    """cam_K (3, 3) float64 pinhole matrix and cam_D (k,) float64 distortion coefficients."""

    cam_K: np.ndarray
    cam_D: np.ndarray


def read_camera_intrinsic(path: str | Path) -> CameraIntrinsic:
    """Read calib/camera_intrinsic/NNNNNN.json."""
    data = _object(read_json(path), path)
    cam_k = _numbers(_field(data, "cam_K", path), path, "cam_K", 9).reshape(3, 3)
    cam_d = _numbers(_field(data, "cam_D", path), path, "cam_D", None)
    return CameraIntrinsic(cam_K=cam_k, cam_D=cam_d)


def write_camera_intrinsic(path: str | Path, intrinsic: CameraIntrinsic) -> None:
    """Write calib/camera_intrinsic/NNNNNN.json (cam_K flattened row-major)."""
    write_json(path, {"cam_D": [float(v) for v in np.ravel(intrinsic.cam_D)],
                      "cam_K": [float(v) for v in np.ravel(intrinsic.cam_K)]})


def read_rigid(path: str | Path) -> np.ndarray:
    """Read a {rotation 3x3, translation 3x1} calib JSON as a (4, 4) float64 transform."""
    data = _object(read_json(path), path)
    matrix = np.eye(4)
    matrix[:3, :3] = _numbers(_field(data, "rotation", path), path, "rotation", 9).reshape(3, 3)
    matrix[:3, 3] = _numbers(_field(data, "translation", path), path, "translation", 3)
    return matrix


def write_rigid(path: str | Path, matrix: np.ndarray, extra: dict | None = None) -> None:
    """Write a (4, 4) rigid transform as {rotation: 3x3 rows, translation: [[x], [y], [z]]} (+ extra keys)."""
    matrix = np.asarray(matrix, dtype=np.float64)
    value = {"rotation": [[float(v) for v in row] for row in matrix[:3, :3]],
             "translation": [[float(v)] for v in matrix[:3, 3]]}
    value.update(extra or {})
    write_json(path, value)


@dataclass(frozen=True)
class DairLabels:
    """The objects of one DAIR label file, column-wise (N objects).

    types: N DAIR type names; occluded_state, truncated_state (N,) int64 (0, 1, 2); alpha (N,) float64;
    box2d (N, 4) xmin, ymin, xmax, ymax; centre (N, 3) box centre (virtual-LiDAR frame); size_wlh (N, 3)
    in the (w, l, h) order of v2xfusion_perception.boxes; rotation (N,) yaw about z.
    """

    types: tuple[str, ...]
    occluded_state: np.ndarray
    truncated_state: np.ndarray
    alpha: np.ndarray
    box2d: np.ndarray
    centre: np.ndarray
    size_wlh: np.ndarray
    rotation: np.ndarray

    def __len__(self) -> int:
        return len(self.types)

    def lidar_boxes(self) -> np.ndarray:
        """(N, 7) internal boxes (x, y, z, dx, dy, dz, yaw)."""
        return box_ops.lidar_boxes_from_wlh(self.centre, self.size_wlh, self.rotation)


def read_labels(path: str | Path) -> DairLabels:
    """Read label/{camera,virtuallidar}/NNNNNN.json."""
    objects = read_json(path)
    if not isinstance(objects, list):
        raise DatasetError(f"{path}: a label file must be a list of objects, got {type(objects).__name__}")
    types, occluded, truncated, alpha, box2d, centre, size, rotation = [], [], [], [], [], [], [], []
    for i, obj in enumerate(objects):
        where = f"{path}: object {i}"
        obj = _object(obj, where)
        name = _field(obj, "type", where)
        if not isinstance(name, str) or not name:
            raise DatasetError(f"{where}: field 'type' must be a non-empty string, got {name!r}")
        types.append(name)
        occluded.append(_number(_field(obj, "occluded_state", where), where, "occluded_state"))
        truncated.append(_number(_field(obj, "truncated_state", where), where, "truncated_state"))
        alpha.append(_number(_field(obj, "alpha", where), where, "alpha"))
        box = _object(_field(obj, "2d_box", where), f"{where} field '2d_box'")
        box2d.append([_number(_field(box, k, where, "2d_box."), where, f"2d_box.{k}")
                      for k in ("xmin", "ymin", "xmax", "ymax")])
        dims = _object(_field(obj, "3d_dimensions", where), f"{where} field '3d_dimensions'")
        size.append([_number(_field(dims, k, where, "3d_dimensions."), where, f"3d_dimensions.{k}")
                     for k in ("w", "l", "h")])
        loc = _object(_field(obj, "3d_location", where), f"{where} field '3d_location'")
        centre.append([_number(_field(loc, k, where, "3d_location."), where, f"3d_location.{k}")
                       for k in ("x", "y", "z")])
        rotation.append(_number(_field(obj, "rotation", where), where, "rotation"))
    return DairLabels(
        types=tuple(types), occluded_state=np.asarray(occluded, dtype=np.int64).reshape(-1),
        truncated_state=np.asarray(truncated, dtype=np.int64).reshape(-1),
        alpha=np.asarray(alpha, dtype=np.float64).reshape(-1), box2d=np.asarray(box2d, np.float64).reshape(-1, 4),
        centre=np.asarray(centre, np.float64).reshape(-1, 3), size_wlh=np.asarray(size, np.float64).reshape(-1, 3),
        rotation=np.asarray(rotation, np.float64).reshape(-1))


def write_labels(path: str | Path, labels: DairLabels) -> None:
    """Write a DAIR label file (numbers as JSON numbers, full precision)."""
    objects = []
    for i, name in enumerate(labels.types):
        w, l, h = (float(v) for v in labels.size_wlh[i])
        x, y, z = (float(v) for v in labels.centre[i])
        xmin, ymin, xmax, ymax = (float(v) for v in labels.box2d[i])
        objects.append({
            "type": name,
            "occluded_state": int(labels.occluded_state[i]),
            "truncated_state": int(labels.truncated_state[i]),
            "alpha": float(labels.alpha[i]),
            "2d_box": {"xmin": xmin, "ymin": ymin, "xmax": xmax, "ymax": ymax},
            "3d_dimensions": {"h": h, "w": w, "l": l},
            "3d_location": {"x": x, "y": y, "z": z},
            "rotation": float(labels.rotation[i]),
        })
    write_json(path, objects)


def read_split(path: str | Path) -> dict[str, list[str]]:
    """Read a split file {"train": [...], "val": [...], "test": [...]} (missing names read as empty)."""
    data = _object(read_json(path), path)
    splits = {}
    for name in SPLIT_NAMES:
        ids = data.get(name, [])
        if not isinstance(ids, list) or not all(isinstance(i, str) and i.isdigit() for i in ids):
            raise DatasetError(f"{path}: split {name!r} must be a list of frame id strings like \"000012\"")
        splits[name] = ids
    return splits


def write_split(path: str | Path, splits: dict[str, list[str]]) -> None:
    """Write the split file with the keys of SPLIT_NAMES, in that order."""
    write_json(path, {name: list(splits.get(name, [])) for name in SPLIT_NAMES})


def _object(value: Any, where: str | Path) -> dict:
    if not isinstance(value, dict):
        raise DatasetError(f"{where}: expected a JSON object, got {type(value).__name__}")
    return value


def _field(data: dict, key: str, where: str | Path, prefix: str = "") -> Any:
    if key not in data:
        raise DatasetError(f"{where}: field {prefix + key!r} missing")
    return data[key]


def _number(value: Any, where: str | Path, name: str) -> float:
    if isinstance(value, bool):
        raise DatasetError(f"{where}: field {name!r} must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise DatasetError(f"{where}: field {name!r} must be a number, got {value!r}") from None
    if not np.isfinite(number):
        raise DatasetError(f"{where}: field {name!r} is {value!r}")
    return number


def _numbers(value: Any, where: str | Path, name: str, count: int | None) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise DatasetError(f"{where}: field {name!r} must be numbers, got {value!r}") from None
    if count is not None and array.size != count:
        raise DatasetError(f"{where}: field {name!r} must hold {count} numbers, got {array.size}")
    if not np.all(np.isfinite(array)):
        raise DatasetError(f"{where}: field {name!r} holds inf or nan")
    return array
