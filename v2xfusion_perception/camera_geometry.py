"""BEVPool-v2 geometry of a camera calibration: the LSS frustum in the LiDAR frame and its sorted BEV runs.

The camera stage predicts, for every feature pixel, a distribution over D bins; the bins' points in
the LiDAR frame depend only on the calibration and the image resize / crop, so their BEVPool-v2
geometry (guide §5.2.3: `indices`, `intervals` with the sentinel rank -1) is computed once per
calibration and cached. Bins are the manifest's `depth_bin_values`: metric depths along the optical
axis (`depth_mode: depth`, KITTI; the kernels' `frustum_points`) or heights above the ground plane
(`depth_mode: height`, v2x, BEVHeight: where each pixel's ray meets the plane `n . X + d = h`,
computed here as v2xfusion_tools/models/camera/frustum.py does). numpy and the kernels only.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from v2xfusion_perception.frame import Calibration
from v2xfusion_perception.manifest import ManifestError

# where points that do not exist (a ray that never meets its height plane) go: far outside any grid,
# as the training frustum puts them
INVALID_COORDINATE = -1.0e6
# calibrations whose geometry is kept (a robot has one camera; a data set a few rigs)
CACHE_SIZE = 8


@dataclass(frozen=True)
class BevPoolGeometry:
    """indices: (P,) int32, P = D * fH * fW; intervals: (K + 1, 3) int32 rows (start, end, bev_rank),
    the last the sentinel (P_inside, P, -1)."""

    indices: np.ndarray
    intervals: np.ndarray


def feature_pixels(image_size: Sequence[int], feature_size: Sequence[int]) -> np.ndarray:
    """Network-input pixel (u, v) of each feature cell, spread as BEVFusion does. Returns (fH, fW, 2) float32."""
    width, height = image_size
    feat_w, feat_h = feature_size
    us = np.linspace(0.0, width - 1, feat_w).astype(np.float32)
    vs = np.linspace(0.0, height - 1, feat_h).astype(np.float32)
    grid_v, grid_u = np.meshgrid(vs, us, indexing="ij")
    return np.stack([grid_u, grid_v], axis=-1)


def frustum_points_height(pixels: np.ndarray, heights: np.ndarray, camera2lidar: np.ndarray, intrinsics: np.ndarray,
                          img_aug_matrix: np.ndarray, ground_plane: np.ndarray) -> np.ndarray:
    """LiDAR-frame point where each feature pixel's ray meets each height plane (BEVHeight's bins).

    pixels: (fH, fW, 2) network-input pixels; heights: (D,) metres; camera2lidar: (4, 4);
    intrinsics: (3, 3); img_aug_matrix: (4, 4) native -> network pixels; ground_plane: (4,) (a, b, c, d)
    in the LiDAR frame, a point's height being `a x + b y + c z + d` ((a, b, c) a unit normal whose sign
    says which way is higher). A ray meeting its plane behind the camera, or parallel to it, gives
    INVALID_COORDINATE. Returns (D, fH, fW, 3) float32.
    """
    pixels = np.asarray(pixels, dtype=np.float32)
    f32 = np.float32
    aug = np.asarray(img_aug_matrix, dtype=f32)
    uv1 = np.concatenate([pixels, np.ones(pixels.shape[:2] + (1,), f32)], axis=-1) - aug[:3, 3]
    uv1 = uv1 @ np.linalg.inv(aug[:3, :3]).astype(f32).T
    rays = uv1 @ np.linalg.inv(np.asarray(intrinsics, f32)).astype(f32).T
    camera2lidar = np.asarray(camera2lidar, dtype=f32)
    rays = rays @ camera2lidar[:3, :3].T
    origin = camera2lidar[:3, 3]
    plane = np.asarray(ground_plane, dtype=f32)
    normal, offset = plane[:3], plane[3]
    # X = origin + t ray on the plane n . X + d = h  =>  t = (h - d - n . origin) / n . ray
    n_dot_ray = (rays @ normal)[None]
    numerator = (np.asarray(heights, f32) - offset - f32(normal @ origin))[:, None, None]
    parallel = np.abs(n_dot_ray) <= 1e-6
    t = numerator / np.where(parallel, f32(1.0), n_dot_ray)
    valid = ~parallel & (t > 0)
    points = origin + t[..., None] * rays[None]
    return np.where(valid[..., None], points, f32(INVALID_COORDINATE)).astype(np.float32)


def lidar_z0_ground_plane() -> np.ndarray:
    """The LiDAR frame's z = 0 plane, heights growing with +z: (0, 0, -1, 0) in the sign convention of
    frustum_points_height (a point above it has a negative signed distance). It is the plane our infos
    writer's `denorm` describes (v2xfusion_tools/datasets/v2x_infos.ground_denorm), i.e. the ground the
    height-bin models are trained with when a data set records no other."""
    return np.array([0.0, 0.0, -1.0, 0.0])


class CameraGeometry:
    """Calibration -> BevPoolGeometry, cached for the last CACHE_SIZE calibrations.

    geometry: the manifest's geometry section (depth_mode, depth_bin_values, image_size, feature_size,
    x/y/zbound); kernels: the kernels backend (frustum_points, bev_pool_geometry); ground_plane: (4,)
    for height bins (LiDAR frame).
    """

    def __init__(self, geometry: Mapping[str, Any], kernels: Any, ground_plane: np.ndarray | None) -> None:
        self.mode = geometry["depth_mode"]
        if self.mode not in ("depth", "height"):
            raise ManifestError(f"geometry.depth_mode: expected depth or height, got {self.mode!r}")
        self.bins = np.asarray(geometry["depth_bin_values"], dtype=np.float32)
        self.image_size = tuple(int(v) for v in geometry["image_size"])
        self.feature_size = tuple(int(v) for v in geometry["feature_size"])
        self.bounds = [list(map(float, geometry[key])) for key in ("xbound", "ybound", "zbound")]
        self.ground_plane = None if ground_plane is None else np.asarray(ground_plane, np.float64).reshape(4)
        if self.mode == "height" and self.ground_plane is None:
            raise ManifestError("ground_plane: the height bins of this model need the ground plane (a, b, c, d) in "
                                "the LiDAR frame")
        self._kernels = kernels
        self._pixels = feature_pixels(self.image_size, self.feature_size)
        self._cache: OrderedDict[bytes, BevPoolGeometry] = OrderedDict()
        self.computed = 0

    @property
    def num_points(self) -> int:
        """P = D * fH * fW frustum points."""
        return len(self.bins) * self.feature_size[0] * self.feature_size[1]

    def frustum(self, calibration: Calibration, img_aug_matrix: np.ndarray) -> np.ndarray:
        """LiDAR-frame frustum points (D, fH, fW, 3) float32 of a calibration."""
        camera2lidar = np.linalg.inv(np.asarray(calibration.lidar2cam, dtype=np.float64))
        if self.mode == "depth":
            return self._kernels.frustum_points(
                np.ascontiguousarray(camera2lidar, dtype=np.float32),
                np.ascontiguousarray(calibration.intrinsics, dtype=np.float32),
                np.ascontiguousarray(img_aug_matrix, dtype=np.float32), self.bins,
                list(self.image_size), list(self.feature_size))
        return frustum_points_height(self._pixels, self.bins, camera2lidar, calibration.intrinsics,
                                     img_aug_matrix, self.ground_plane)

    def seed(self, calibration: Calibration, geometry: BevPoolGeometry) -> None:
        """Put a known geometry of a calibration in the cache (the export's precomputed files)."""
        self._cache[calibration.key()] = geometry

    def __call__(self, calibration: Calibration, img_aug_matrix: np.ndarray) -> BevPoolGeometry:
        """The geometry of a calibration, computed on first sight, then from the cache."""
        key = calibration.key()
        found = self._cache.get(key)
        if found is not None:
            self._cache.move_to_end(key)
            return found
        points = self.frustum(calibration, img_aug_matrix)
        indices, intervals = self._kernels.bev_pool_geometry(points, *self.bounds)
        geometry = BevPoolGeometry(indices, intervals)
        self.computed += 1
        self._cache[key] = geometry
        if len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return geometry
