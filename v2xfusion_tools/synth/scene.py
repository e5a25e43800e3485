"""Procedural scenes: objects as boxes on a flat, textured ground, drawn from one frame's random stream.

Objects are placed uniformly in cfg["synthetic"]["scene"] x_range / y_range (and, for a LiDAR that
does not turn all the way round, inside its horizontal field of view), with a random yaw, sizes jittered
around the KITTI class means, standing on the ground and never overlapping in bird's-eye view (their
bounding circles keep a gap). The ground's reflectance pattern (asphalt grain, patches, dashed lane
lines) is one function of the ground position, so the camera picture and the LiDAR intensity agree.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from v2xfusion_perception.errors import ConfigError

# Mean (length, width, height) in metres: KITTI's class means (car 3.9 x 1.6 x 1.56, pedestrian
# 0.8 x 0.6 x 1.73, cyclist 1.76 x 0.6 x 1.73), and the relative standard deviation of each.
CLASS_SIZES = {"Car": (3.9, 1.6, 1.56), "Pedestrian": (0.8, 0.6, 1.73), "Cyclist": (1.76, 0.6, 1.73)}
SIZE_JITTER = {"Car": (0.08, 0.05, 0.06), "Pedestrian": (0.10, 0.10, 0.06), "Cyclist": (0.06, 0.10, 0.05)}
# LiDAR reflectivity of each class's surface (mean, spread) and the darker glass / frame parts.
CLASS_REFLECTIVITY = {"Car": (0.55, 0.15), "Pedestrian": (0.25, 0.08), "Cyclist": (0.35, 0.08)}
CLASS_PALETTES = {
    "Car": ((0.72, 0.08, 0.07), (0.10, 0.22, 0.62), (0.88, 0.88, 0.86), (0.62, 0.63, 0.66),
            (0.13, 0.13, 0.14), (0.16, 0.42, 0.24), (0.92, 0.70, 0.10)),
    "Pedestrian": ((0.90, 0.25, 0.20), (0.20, 0.55, 0.90), (0.95, 0.80, 0.20), (0.30, 0.75, 0.35),
                   (0.85, 0.45, 0.75), (0.95, 0.95, 0.95)),
    "Cyclist": ((0.95, 0.50, 0.05), (0.15, 0.70, 0.70), (0.75, 0.20, 0.55), (0.35, 0.80, 0.20)),
}
BEV_GAP = 0.3              # metres between two objects' bounding circles
PLACEMENT_TRIES = 60       # draws per object before the scene settles for fewer objects
FOV_MARGIN_DEG = 3.0       # keep object centres this far inside a partial LiDAR field of view
LANE_WIDTH = 3.5           # lane lines every 3.5 m across y, dashed 3 m on / 3 m off along x
LANE_LINE_WIDTH = 0.15
LATTICE = 512              # texture period in lattice cells (256 m of grain, 3 km of patches)


@dataclass(frozen=True)
class Scene:
    """One frame's objects. boxes: (M, 7) internal LiDAR boxes; classes: (M,) int64 index into
    class_names; colours: (M, 3) float64 albedo in [0, 1]; reflectivity: (M,) LiDAR reflectivity;
    texture_seed: selects the ground pattern."""

    boxes: np.ndarray
    classes: np.ndarray
    colours: np.ndarray
    reflectivity: np.ndarray
    class_names: tuple[str, ...]
    ground_z: float
    texture_seed: int

    def without_objects(self) -> Scene:
        """The same ground with no objects (for checks of what the objects change)."""
        return Scene(self.boxes[:0], self.classes[:0], self.colours[:0], self.reflectivity[:0],
                     self.class_names, self.ground_z, self.texture_seed)


def check_scene_config(scene_cfg: dict, class_names: list[str]) -> None:
    """Validate cfg["synthetic"]["scene"] against the class list; ConfigError names the key."""
    unknown = [name for name in class_names if name not in CLASS_SIZES]
    if unknown:
        raise ConfigError(f"class_names: synthetic scenes know {', '.join(CLASS_SIZES)}; no shape for "
                          f"{', '.join(unknown)}")
    if len(scene_cfg["class_weights"]) != len(class_names):
        raise ConfigError(f"synthetic.scene.class_weights needs one weight per class ({len(class_names)}), "
                          f"got {len(scene_cfg['class_weights'])}")
    if min(scene_cfg["class_weights"]) < 0 or sum(scene_cfg["class_weights"]) <= 0:
        raise ConfigError("synthetic.scene.class_weights must be >= 0 with a positive sum")
    low, high = scene_cfg["objects_per_frame"]
    if not 0 <= low <= high:
        raise ConfigError(f"synthetic.scene.objects_per_frame must be [min, max] with 0 <= min <= max, "
                          f"got {scene_cfg['objects_per_frame']}")
    for key in ("x_range", "y_range"):
        if not scene_cfg[key][0] < scene_cfg[key][1]:
            raise ConfigError(f"synthetic.scene.{key} must be [low, high] with low < high")


def sample_scene(rng: np.random.Generator, scene_cfg: dict, class_names: list[str], ground_z: float,
                 lidar_fov_deg: float, texture_seed: int | None = None) -> Scene:
    """Draw one scene from `rng` (the only source of randomness, so a frame is reproducible).

    texture_seed: the ground pattern; None draws one from `rng` (a new road every frame)."""
    low, high = scene_cfg["objects_per_frame"]
    wanted = int(rng.integers(low, high + 1))
    weights = np.asarray(scene_cfg["class_weights"], dtype=np.float64)
    (x_low, x_high), (y_low, y_high) = scene_cfg["x_range"], scene_cfg["y_range"]
    half_fov = np.deg2rad(lidar_fov_deg / 2.0 - FOV_MARGIN_DEG) if lidar_fov_deg < 360.0 else np.inf
    boxes, classes, colours, reflectivity = [], [], [], []
    radii: list[float] = []
    for _ in range(wanted):
        cls = int(rng.choice(len(class_names), p=weights / weights.sum()))
        name = class_names[cls]
        size = np.asarray(CLASS_SIZES[name]) * (1.0 + np.asarray(SIZE_JITTER[name]) * rng.standard_normal(3))
        size = np.maximum(size, 0.5 * np.asarray(CLASS_SIZES[name]))
        radius = float(np.hypot(size[0], size[1]) / 2.0)
        yaw = float(rng.uniform(-np.pi, np.pi))
        for _ in range(PLACEMENT_TRIES):
            x, y = float(rng.uniform(x_low, x_high)), float(rng.uniform(y_low, y_high))
            if abs(np.arctan2(y, x)) > half_fov:
                continue
            if all(np.hypot(x - b[0], y - b[1]) >= radius + r + BEV_GAP for b, r in zip(boxes, radii)):
                break
        else:
            continue
        palette = CLASS_PALETTES[name]
        colour = np.clip(np.asarray(palette[int(rng.integers(len(palette)))]) + rng.normal(0.0, 0.03, 3), 0, 1)
        mean, spread = CLASS_REFLECTIVITY[name]
        boxes.append([x, y, ground_z + size[2] / 2.0, size[0], size[1], size[2], yaw])
        classes.append(cls)
        colours.append(colour)
        reflectivity.append(float(np.clip(rng.normal(mean, spread / 2.0), 0.05, 0.95)))
        radii.append(radius)
    if texture_seed is None:
        texture_seed = int(rng.integers(0, 2**31 - 1))
    return Scene(np.asarray(boxes, dtype=np.float64).reshape(-1, 7), np.asarray(classes, dtype=np.int64),
                 np.asarray(colours, dtype=np.float64).reshape(-1, 3), np.asarray(reflectivity, np.float64),
                 tuple(class_names), float(ground_z), texture_seed)


def ground_reflectance(x: np.ndarray, y: np.ndarray, texture_seed: int) -> np.ndarray:
    """Reflectance in [0, 1] of the ground at LiDAR-frame (x, y): asphalt grain (0.5 m), patches
    (6 m), bright dashed lane lines. x, y: (N,) float; returns (N,) float32."""
    x = np.asarray(x, dtype=np.float32)
    y = np.asarray(y, dtype=np.float32)
    grain_lattice, patch_lattice = _lattices(texture_seed)
    grain = _value_noise(x * np.float32(2.0), y * np.float32(2.0), grain_lattice)
    patches = _value_noise(x / np.float32(6.0), y / np.float32(6.0), patch_lattice)
    asphalt = np.float32(0.22) + np.float32(0.10) * grain + np.float32(0.12) * patches
    across = y / np.float32(LANE_WIDTH)
    lane = np.abs(across - np.round(across)) * np.float32(LANE_WIDTH) < np.float32(LANE_LINE_WIDTH / 2.0)
    dashed = lane & (np.mod(x, np.float32(6.0)) < np.float32(3.0))
    return np.where(dashed, np.float32(0.85), asphalt)


@lru_cache(maxsize=2)
def _lattices(texture_seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two periodic lattices of random values in [0, 1) (grain and patches) for one texture seed."""
    rng = np.random.default_rng(texture_seed)
    return (rng.random((LATTICE, LATTICE), dtype=np.float32), rng.random((LATTICE, LATTICE), dtype=np.float32))


def _value_noise(u: np.ndarray, v: np.ndarray, lattice: np.ndarray) -> np.ndarray:
    """Smooth noise in [0, 1): bilinear interpolation (smoothstep weights) of a periodic lattice."""
    fu_floor, fv_floor = np.floor(u), np.floor(v)
    fu, fv = u - fu_floor, v - fv_floor
    fu, fv = fu * fu * (3 - 2 * fu), fv * fv * (3 - 2 * fv)
    mask = LATTICE - 1
    iu, iv = fu_floor.astype(np.int64) & mask, fv_floor.astype(np.int64) & mask
    iu1, iv1 = (iu + 1) & mask, (iv + 1) & mask
    c00, c10, c01, c11 = lattice[iv, iu], lattice[iv, iu1], lattice[iv1, iu], lattice[iv1, iu1]
    return (c00 * (1 - fu) + c10 * fu) * (1 - fv) + (c01 * (1 - fu) + c11 * fu) * fv
