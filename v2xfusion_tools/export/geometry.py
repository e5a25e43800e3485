"""BEVPool-v2 geometry precompute (guide §5.2.3): indices / intervals files from one calibration.

The camera frustum comes from the model's view transform (metric depth or height bins, exactly as in
training), its BEV cells and sorted runs from the kernels' `bev_pool_geometry` (the runtime's code).
Files (the guide's, bev_latest compatible): `indices.bin` (P,) int32 and `intervals.bin` (K + 1, 3)
int32, raw little-endian, the last interval being the sentinel rank -1; `geometry.pth` the same
tensors for PyTorch; `calibration.json` the calibration they were computed from.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

import v2xfusion_kernels
from v2xfusion_perception.errors import V2XError
from v2xfusion_tools.export.calibration import (CalibrationError, CameraCalibration, image_aug_matrix,
                                                write_calibration_file)
from v2xfusion_tools.models.camera.vtransform import LSSTransform

INDICES_FILE = "indices.bin"
INTERVALS_FILE = "intervals.bin"
TORCH_FILE = "geometry.pth"
CALIBRATION_FILE = "calibration.json"


@dataclass(frozen=True)
class BevPoolGeometryArrays:
    """indices: (P,) int32, P = D * fH * fW; intervals: (K + 1, 3) int32 rows (start, end, bev_rank)."""

    indices: np.ndarray
    intervals: np.ndarray


def frustum_points(vtransform: LSSTransform, calibration: CameraCalibration) -> torch.Tensor:
    """LiDAR-frame frustum points (D, fH, fW, 3) float32 of the calibration, through the model's own
    frustum code (the data pipeline's evaluation resize / crop of the native image)."""
    if vtransform.depth_mode == "height" and calibration.ground_plane is None:
        raise CalibrationError("ground_plane: the preset's height bins need the ground plane (a, b, c, d) in the "
                               "LiDAR frame: give it in the calibration file or with --ground-plane")
    aug = image_aug_matrix(calibration.image_size, vtransform.image_size)
    intrinsics = torch.eye(4)
    intrinsics[:3, :3] = torch.from_numpy(calibration.intrinsics).float()
    camera2lidar = torch.from_numpy(np.linalg.inv(calibration.lidar2camera)).float()
    plane = None if calibration.ground_plane is None else \
        torch.from_numpy(calibration.ground_plane).float().unsqueeze(0)
    with torch.no_grad():
        points = vtransform.geometry(camera2lidar.unsqueeze(0), intrinsics.unsqueeze(0),
                                     torch.from_numpy(aug).unsqueeze(0), torch.eye(4).unsqueeze(0), plane)
    return points[0]


def precompute_geometry(vtransform: LSSTransform, calibration: CameraCalibration) -> BevPoolGeometryArrays:
    """indices / intervals of the calibration's frustum over the view transform's BEV grid."""
    points = frustum_points(vtransform, calibration).contiguous().numpy()
    grid = vtransform.grid
    indices, intervals = v2xfusion_kernels.bev_pool_geometry(points, list(grid.xbound), list(grid.ybound),
                                                             list(grid.zbound))
    if intervals.shape[0] < 2:
        raise CalibrationError("calibration: no frustum point of this camera falls inside the BEV grid "
                               "(wrong lidar2camera, image size or ground plane?)")
    return BevPoolGeometryArrays(indices, intervals)


def write_geometry(folder: Path, geometry: BevPoolGeometryArrays, calibration: CameraCalibration) -> list[str]:
    """Write the four geometry files into folder; returns their names."""
    folder.mkdir(parents=True, exist_ok=True)
    geometry.indices.astype("<i4").tofile(folder / INDICES_FILE)
    geometry.intervals.astype("<i4").tofile(folder / INTERVALS_FILE)
    torch.save({"indices": torch.from_numpy(geometry.indices), "intervals": torch.from_numpy(geometry.intervals)},
               folder / TORCH_FILE)
    write_calibration_file(folder / CALIBRATION_FILE, calibration)
    return [INDICES_FILE, INTERVALS_FILE, TORCH_FILE, CALIBRATION_FILE]


def read_geometry(folder: Path, num_points: int | None = None) -> BevPoolGeometryArrays:
    """indices.bin / intervals.bin of folder; num_points (D * fH * fW) checks the indices' length."""
    files = [folder / INDICES_FILE, folder / INTERVALS_FILE]
    for path in files:
        if not path.is_file():
            raise V2XError(f"{path}: geometry file not found (run `v2xfusion export --geometry-only` first)")
    indices = np.fromfile(files[0], dtype="<i4").astype(np.int32)
    raw = np.fromfile(files[1], dtype="<i4").astype(np.int32)
    if raw.size % 3 or raw.size == 0:
        raise V2XError(f"{files[1]}: {raw.size} int32 values, not rows of (start, end, rank)")
    intervals = raw.reshape(-1, 3)
    if num_points is not None and indices.size != num_points:
        raise V2XError(f"{files[0]}: {indices.size} indices, the model's frustum has D * fH * fW = {num_points}")
    if intervals[-1, 2] != -1:
        raise V2XError(f"{files[1]}: the last interval must be the sentinel (rank -1)")
    return BevPoolGeometryArrays(indices, intervals)
