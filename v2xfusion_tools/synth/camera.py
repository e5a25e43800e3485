"""Render the camera picture of a synthetic scene with the rig's own calibration (ray casting per pixel).

Every pixel (u, v) (pixel centres at integer coordinates, as `boxes.project_points` uses) is the ray
through `lidar2img`'s optical centre, so a LiDAR point and the pixel it projects to see the same
surface. The ground is textured with the same reflectance pattern the LiDAR sees; the sky is a
gradient; objects are shaded boxes (sun + ambient light, dark outlines on their edges, car windows, a
pedestrian's legs and head, a cyclist's bike) drawn with a depth buffer, with a soft contact shadow on
the ground beneath them; distant surfaces fade into haze; the sensor adds a little noise. Alongside the
picture it returns which object each pixel shows, for occlusion and truncation labels.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from v2xfusion_perception import boxes as box_ops
from v2xfusion_tools.synth import raycast
from v2xfusion_tools.synth.scene import Scene, ground_reflectance

SUN = np.array([0.35, 0.45, 0.82]) / np.linalg.norm([0.35, 0.45, 0.82])
AMBIENT = 0.45
HAZE_DISTANCE = 140.0            # metres at which 63 % of a surface's colour is haze
HAZE = np.array([0.78, 0.82, 0.86])
SKY_ZENITH = np.array([0.30, 0.50, 0.85])
ASPHALT_TINT = np.array([1.0, 0.98, 0.95])
OUTLINE = 0.035                  # metres of darkened border along every face edge
SHADOW_GROWTH = 0.35             # contact shadow reaches this far beyond the footprint (m)
SENSOR_NOISE = 2.0               # standard deviation in 8-bit grey levels
NEAR = 0.05                      # metres in front of the camera before a corner counts as visible


@dataclass(frozen=True)
class CameraPicture:
    """image: (H, W, 3) uint8 RGB; object: (H, W) int16 index of the scene object seen (-1 none);
    silhouette: (M,) int64 pixels each object would cover with nothing in front of it."""

    image: np.ndarray
    object: np.ndarray
    silhouette: np.ndarray


@dataclass(frozen=True)
class _View:
    """What does not change between frames of one rig: rays, the bare ground and the sky.

    centre: (3,) optical centre; directions: (H*W, 3) float32 unit rays; depth: (H*W,) float32 distance
    to the ground (inf: sky); ground: flat indices of ground pixels; ground_xy: (G, 2) float32 where
    they meet the ground; ground_position: (H*W,) int64 each pixel's row in the ground arrays (-1: sky);
    ground_haze: (G,) float32 haze fraction; background: (H*W, 3) float32 sky colour, ground pixels zero."""

    centre: np.ndarray
    directions: np.ndarray
    depth: np.ndarray
    ground: np.ndarray
    ground_xy: np.ndarray
    ground_position: np.ndarray
    ground_haze: np.ndarray
    background: np.ndarray


@lru_cache(maxsize=2)
def _view(lidar2img_bytes: bytes, width: int, height: int, ground_z: float) -> _View:
    lidar2img = np.frombuffer(lidar2img_bytes, dtype=np.float64).reshape(4, 4)
    m_inverse = np.linalg.inv(lidar2img[:3, :3])
    centre = -m_inverse @ lidar2img[:3, 3]
    v, u = np.mgrid[0:height, 0:width]
    pixels = np.stack([u.ravel(), v.ravel(), np.ones(u.size)], axis=1)
    directions = pixels @ m_inverse.T
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    depth = raycast.intersect_ground(centre, directions, ground_z)
    ground = np.flatnonzero(np.isfinite(depth))
    ground_xy = (centre[:2] + directions[ground, :2] * depth[ground, None]).astype(np.float32)
    background = np.zeros((u.size, 3), dtype=np.float32)
    sky = np.flatnonzero(~np.isfinite(depth))
    elevation = np.clip(directions[sky, 2], 0.0, 1.0) ** 0.6
    background[sky] = HAZE * (1.0 - elevation[:, None]) + SKY_ZENITH * elevation[:, None]
    position = np.full(u.size, -1, dtype=np.int64)
    position[ground] = np.arange(len(ground))
    haze = (1.0 - np.exp(-depth[ground] / HAZE_DISTANCE)).astype(np.float32)
    return _View(centre, directions.astype(np.float32), depth.astype(np.float32), ground, ground_xy, position,
                 haze, background)


@lru_cache(maxsize=2)
def _sensor_noise(size: int) -> np.ndarray:
    """Gaussian pixel noise (2 * size,) float32 in grey levels; a frame reads a window at a random
    start, which costs nothing per frame and still never repeats the same pattern in place."""
    return np.random.default_rng(0x5E45).standard_normal(2 * size, dtype=np.float32) * np.float32(SENSOR_NOISE)


@lru_cache(maxsize=2)
def _lit_ground(lidar2img_bytes: bytes, width: int, height: int, ground_z: float, texture_seed: int) -> np.ndarray:
    """Sunlit ground colour (G, 3) float32 of a view's ground pixels (cached: a static ground repeats)."""
    view = _view(lidar2img_bytes, width, height, ground_z)
    albedo = ground_reflectance(view.ground_xy[:, 0], view.ground_xy[:, 1], texture_seed)
    shade = albedo * np.float32((AMBIENT + (1.0 - AMBIENT) * SUN[2]) * 1.15)
    return shade[:, None] * ASPHALT_TINT.astype(np.float32)


def render(scene: Scene, lidar2img: np.ndarray, image_size: tuple[int, int], rng: np.random.Generator
           ) -> CameraPicture:
    """Render `scene` as seen through lidar2img (4, 4) at image_size (W, H)."""
    width, height = image_size
    lidar2img = np.ascontiguousarray(lidar2img, dtype=np.float64)
    view = _view(lidar2img.tobytes(), width, height, float(scene.ground_z))
    colour = view.background.copy()
    depth = view.depth.copy()
    shadow = _contact_shadow(scene, view, lidar2img, width, height)
    haze = view.ground_haze[:, None]
    lit = _lit_ground(lidar2img.tobytes(), width, height, float(scene.ground_z), scene.texture_seed)
    colour[view.ground] = (lit * shadow[:, None]) * (1.0 - haze) + HAZE.astype(np.float32) * haze
    object_index = np.full(width * height, -1, dtype=np.int16)
    silhouette = np.zeros(len(scene.boxes), dtype=np.int64)
    for index, box in enumerate(scene.boxes):
        rays = _box_region(box, lidar2img, width, height)
        if rays.size == 0:
            continue
        hits = raycast.intersect_box(view.centre, view.directions[rays], box)
        hit = np.isfinite(hits.t)
        silhouette[index] = int(hit.sum())
        front = hit & (hits.t < depth[rays])
        rays_front = rays[front]
        depth[rays_front] = hits.t[front]
        object_index[rays_front] = index
        fog = (1.0 - np.exp(-hits.t[front] / np.float32(HAZE_DISTANCE)))[:, None]
        surface = _shade_object(scene, index, hits.face[front], hits.local[front])
        colour[rays_front] = surface * (1.0 - fog) + HAZE.astype(np.float32) * fog
    noise = _sensor_noise(colour.size)
    start = int(rng.integers(0, colour.size))
    colour *= np.float32(255.0)
    colour += noise[start:start + colour.size].reshape(colour.shape)
    image = np.clip(np.rint(colour), 0, 255).astype(np.uint8).reshape(height, width, 3)
    return CameraPicture(image=image, object=object_index.reshape(height, width), silhouette=silhouette)


def _contact_shadow(scene: Scene, view: _View, lidar2img: np.ndarray, width: int, height: int) -> np.ndarray:
    """Darkening factor (G,) float32 of the ground pixels: soft shadow around each object's footprint."""
    factor = np.ones(len(view.ground), dtype=np.float32)
    for box in scene.boxes:
        grown = box.copy()
        grown[3:5] += 2.0 * SHADOW_GROWTH
        grown[2], grown[5] = scene.ground_z, 0.0
        region = _box_region(grown, lidar2img, width, height)
        near = view.ground_position[region]
        near = near[near >= 0]
        if near.size == 0:
            continue
        offset = view.ground_xy[near] - box[:2].astype(np.float32)
        cos, sin = np.float32(np.cos(box[6])), np.float32(np.sin(box[6]))
        along = np.abs(offset[:, 0] * cos + offset[:, 1] * sin) - np.float32(box[3] / 2.0)
        across = np.abs(-offset[:, 0] * sin + offset[:, 1] * cos) - np.float32(box[4] / 2.0)
        outside = np.hypot(np.maximum(along, 0), np.maximum(across, 0))
        darkness = np.float32(0.55) * np.clip(1.0 - outside / np.float32(SHADOW_GROWTH), 0.0, 1.0)
        factor[near] *= 1.0 - darkness
    return factor


def _box_region(box: np.ndarray, lidar2img: np.ndarray, width: int, height: int) -> np.ndarray:
    """Flat pixel indices of the image rectangle the box can cover (all pixels if it reaches behind)."""
    uv, depth = box_ops.project_box_corners(box, lidar2img)
    uv, depth = uv[0], depth[0]
    if np.all(depth <= NEAR):
        return np.zeros(0, dtype=np.int64)
    if np.any(depth <= NEAR):
        u0, v0, u1, v1 = 0, 0, width - 1, height - 1
    else:
        u0, v0 = np.floor(uv.min(axis=0)).astype(int) - 1
        u1, v1 = np.ceil(uv.max(axis=0)).astype(int) + 1
        u0, v0, u1, v1 = max(u0, 0), max(v0, 0), min(u1, width - 1), min(v1, height - 1)
    if u0 > u1 or v0 > v1:
        return np.zeros(0, dtype=np.int64)
    rows = np.arange(v0, v1 + 1)[:, None] * width
    return (rows + np.arange(u0, u1 + 1)[None, :]).ravel()


def _shade_object(scene: Scene, index: int, face: np.ndarray, local: np.ndarray) -> np.ndarray:
    """Colour (N, 3) float32 of hit points on object `index` given face ids and box-frame hit points."""
    box = scene.boxes[index]
    half = box[3:6] / 2.0
    name = scene.class_names[scene.classes[index]]
    base = np.broadcast_to(scene.colours[index], (len(face), 3)).copy()
    height = (local[:, 2] + half[2]) / box[5]           # 0 at the bottom, 1 at the top
    side = face < 4
    if name == "Car":
        base[side & (height > 0.6)] = (0.10, 0.13, 0.17)        # windows
        base[side & (height < 0.22)] = (0.06, 0.06, 0.06)        # wheels and sills
    elif name == "Pedestrian":
        base[height < 0.47] = (0.16, 0.18, 0.28)                 # trousers
        base[height > 0.86] = (0.80, 0.62, 0.50)                 # head
    else:
        base[height < 0.45] = base[height < 0.45] * 0.3 + 0.05   # bicycle
        base[height > 0.86] = (0.85, 0.85, 0.85)                 # helmet
    normals = raycast.face_normals_world(face, box[6])
    light = AMBIENT + (1.0 - AMBIENT) * np.clip(normals @ SUN, 0.0, 1.0)
    # distance to the nearest edge of the face that was hit, measured in the face's own two axes
    axis = face // 2
    margins = half[None, :] - np.abs(local)
    margins[np.arange(len(face)), axis] = np.inf
    outline = np.where(margins.min(axis=1) < OUTLINE, 0.45, 1.0)
    return (base * (light * outline)[:, None]).astype(np.float32)
