"""One camera's calibration as the exported models see it, from a data set frame or from a file.

A `CameraCalibration` holds the pinhole intrinsics, the LiDAR -> camera transform, the native image
size and, for height bins (v2x preset), the ground plane: what BEVPool-v2's geometry (guide §5.2.3)
is computed from. A data set frame's calibration is the one the training data pipeline gives it
(v2xfusion_tools.data: infos calibration, ground plane from `denorm`), so the geometry matches what
the model was trained on; the native image reaches the network input through that pipeline's
evaluation resize / crop (`image_aug_matrix`).

Calibration files: JSON or YAML with `intrinsics` (3x3), `lidar2camera` (4x4), `image_size` [W, H]
(native) and optional `ground_plane` [a, b, c, d] (LiDAR frame, the data pipeline's convention); or a
KITTI calib .txt (P2's 3x3 and R0_rect @ Tr_velo_to_cam, as the KITTI infos; image size given apart).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import yaml

from v2xfusion_perception.errors import DatasetError, V2XError
from v2xfusion_tools.data.dataset import FrameFailure, Sample
from v2xfusion_tools.data.transforms import image_crop
from v2xfusion_tools.datasets import kitti_format


class CalibrationError(V2XError):
    """A calibration file or value is missing, malformed or inconsistent."""


@dataclass(frozen=True)
class CameraCalibration:
    """intrinsics: (3, 3) float64; lidar2camera: (4, 4) float64; image_size: native (W, H);
    ground_plane: (4,) float64 (a, b, c, d) in the LiDAR frame, or None."""

    intrinsics: np.ndarray
    lidar2camera: np.ndarray
    image_size: tuple[int, int]
    ground_plane: np.ndarray | None = None


def image_aug_matrix(native_size: Sequence[int], network_size: Sequence[int]) -> np.ndarray:
    """img_aug_matrix (4, 4) float32 of the data pipeline's evaluation resize / crop: native (W, H)
    image -> network input (W, H)."""
    return image_crop(native_size, network_size).matrix.astype(np.float32)


def calibration_from_sample(sample: Sample) -> CameraCalibration:
    """The calibration of a data pipeline sample (v2xfusion_tools.data.V2XDataset, evaluation mode)."""
    return CameraCalibration(np.asarray(sample.camera_intrinsics[:3, :3], dtype=np.float64),
                             np.asarray(sample.lidar2camera, dtype=np.float64), tuple(sample.meta.image_size),
                             np.asarray(sample.ground_plane, dtype=np.float64))


def calibration_from_dataset(config: Mapping[str, Any], split: str, sample_idx: int = 0,
                             data_root: str | Path | None = None) -> CameraCalibration:
    """The calibration of frame `sample_idx` of a split of the config's data set, as the guide's
    `precompute_geometry --from-dataset --split val --sample-idx 0`."""
    from v2xfusion_tools.data.loader import build_dataset

    dataset = build_dataset(config, split, training=False, data_root=data_root)
    if not 0 <= sample_idx < len(dataset):
        raise DatasetError(f"{dataset.source}: sample index {sample_idx} outside the {len(dataset)} frames of "
                           f"split {split!r}")
    sample = dataset[sample_idx]
    if isinstance(sample, FrameFailure):
        raise DatasetError(sample.message)
    return calibration_from_sample(sample)


def read_calibration_file(path: str | Path, image_size: Sequence[int] | None = None,
                          ground_plane: Sequence[float] | None = None) -> CameraCalibration:
    """A calibration file (module docstring). image_size / ground_plane override or complete the file's."""
    path = Path(path)
    if not path.is_file():
        raise CalibrationError(f"{path}: calibration file not found")
    values: dict = {}
    if path.suffix == ".txt":
        calib = kitti_format.read_calib(path)
        intrinsics = np.asarray(calib.P2[:3, :3], dtype=np.float64)
        lidar2camera = np.asarray(calib.lidar2cam, dtype=np.float64)
    else:
        try:
            values = yaml.safe_load(path.read_text()) if path.suffix in (".yaml", ".yml") \
                else json.loads(path.read_text())
        except (yaml.YAMLError, json.JSONDecodeError) as exc:
            raise CalibrationError(f"{path}: not valid {path.suffix[1:].upper()} ({exc})") from None
        if not isinstance(values, dict):
            raise CalibrationError(f"{path}: expected a mapping with intrinsics, lidar2camera, image_size")
        intrinsics = _matrix(values, "intrinsics", (3, 3), path)
        lidar2camera = _matrix(values, "lidar2camera", (4, 4), path)
    if image_size is None:
        if "image_size" not in values:
            raise CalibrationError(f"{path}: no image_size [W, H] in the file: pass the native image size")
        image_size = values["image_size"]
    if not isinstance(image_size, (list, tuple)) or len(image_size) != 2 or min(int(v) for v in image_size) <= 0:
        raise CalibrationError(f"{path}: image_size must be [W, H] > 0, got {image_size!r}")
    if ground_plane is None and values.get("ground_plane") is not None:
        ground_plane = _matrix(values, "ground_plane", (4,), path)
    plane = None if ground_plane is None else np.asarray(ground_plane, dtype=np.float64).reshape(4)
    return CameraCalibration(intrinsics, lidar2camera, (int(image_size[0]), int(image_size[1])), plane)


def write_calibration_file(path: str | Path, calibration: CameraCalibration) -> None:
    """The JSON form read_calibration_file reads (what the export records beside its geometry)."""
    values = {"intrinsics": calibration.intrinsics.tolist(), "lidar2camera": calibration.lidar2camera.tolist(),
              "image_size": list(calibration.image_size),
              "ground_plane": None if calibration.ground_plane is None else calibration.ground_plane.tolist()}
    Path(path).write_text(json.dumps(values, indent=2) + "\n")


def _matrix(values: dict, key: str, shape: tuple[int, ...], path: Path) -> np.ndarray:
    if key not in values:
        raise CalibrationError(f"{path}: missing key '{key}'")
    try:
        matrix = np.asarray(values[key], dtype=np.float64)
    except (TypeError, ValueError):
        raise CalibrationError(f"{path}: '{key}' must be numbers of shape {shape}") from None
    if matrix.shape != shape or not np.isfinite(matrix).all():
        raise CalibrationError(f"{path}: '{key}' must be finite numbers of shape {shape}, got {matrix.shape}")
    return matrix
