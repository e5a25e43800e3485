"""Checking the frame handed to a pipeline (image, points, calibration) where it enters the runtime.

A malformed input is a FrameError whose message names the input and what is wrong with it, so a
caller (the node, the runner) reports one clear line instead of a failure deep inside numpy or
OpenVINO. What passes comes back in the layout the pipeline computes with.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from v2xfusion_perception.errors import V2XError
from v2xfusion_perception.frame import Calibration


class FrameError(V2XError):
    """An image, point cloud or calibration handed to a pipeline is malformed; the message names it."""


def check_calibration(calibration: Calibration) -> None:
    """intrinsics (3, 3) finite with positive focal lengths; lidar2cam (4, 4) finite, last row 0 0 0 1;
    image_size two positive integers."""
    if not isinstance(calibration, Calibration):
        raise FrameError(f"calibration: expected a v2xfusion_perception.frame.Calibration, got "
                         f"{type(calibration).__name__}")
    intrinsics = np.asarray(calibration.intrinsics)
    if intrinsics.shape != (3, 3) or not np.isfinite(intrinsics).all() or intrinsics[0, 0] <= 0 \
            or intrinsics[1, 1] <= 0:
        raise FrameError(f"calibration.intrinsics: expected a finite (3, 3) pinhole matrix with positive focal "
                         f"lengths, got shape {intrinsics.shape}")
    lidar2cam = np.asarray(calibration.lidar2cam)
    if lidar2cam.shape != (4, 4) or not np.isfinite(lidar2cam).all() \
            or not np.allclose(lidar2cam[3], (0.0, 0.0, 0.0, 1.0)):
        raise FrameError(f"calibration.lidar2cam: expected a finite (4, 4) transform with last row 0 0 0 1, "
                         f"got shape {lidar2cam.shape}")
    size = calibration.image_size
    if len(size) != 2 or any(not float(v).is_integer() or v <= 0 for v in size):
        raise FrameError(f"calibration.image_size: expected (width, height) in pixels, got {size!r}")


def check_image(image: np.ndarray, image_size: Sequence[int]) -> np.ndarray:
    """image: (H, W, 3) uint8 RGB of the calibration's (W, H). Returns it C-contiguous."""
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, "shape", None)
        raise FrameError(f"image: expected an (H, W, 3) RGB array, got {type(image).__name__} of shape {shape}")
    if image.dtype != np.uint8:
        raise FrameError(f"image: expected dtype uint8 (0-255 RGB), got {image.dtype}")
    width, height = (int(v) for v in image_size)
    if (image.shape[1], image.shape[0]) != (width, height):
        raise FrameError(f"image: {image.shape[1]}x{image.shape[0]} pixels, but calibration.image_size says "
                         f"{width}x{height} (the calibration must describe the image as given)")
    return np.ascontiguousarray(image)


def check_points(points: np.ndarray, intensity_max: float) -> np.ndarray:
    """points: (N, 4) x, y, z, intensity in 0..intensity_max, any float dtype. Returns (N, 4) float32
    C-contiguous. Non-finite points pass (the voxelizer drops and counts them)."""
    if not isinstance(points, np.ndarray) or points.ndim != 2 or points.shape[1] != 4:
        shape = getattr(points, "shape", None)
        raise FrameError(f"points: expected an (N, 4) array of x, y, z, intensity, got {type(points).__name__} "
                         f"of shape {shape}")
    if not np.issubdtype(points.dtype, np.floating):
        raise FrameError(f"points: expected a float dtype (float32), got {points.dtype}")
    points = np.ascontiguousarray(points, dtype=np.float32)
    if len(points):
        highest = float(np.max(points[:, 3]))
        if highest > intensity_max * (1.0 + 1e-6):
            raise FrameError(f"points: intensity up to {highest:g}, but the model takes 0-{intensity_max:g}: scale "
                             f"the cloud's intensity (e.g. divide 0-255 intensities by 255; the node's "
                             f"intensity_scale parameter)")
    return points
