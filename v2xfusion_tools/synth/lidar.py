"""Ray-cast multi-beam LiDAR scan of a synthetic scene: ground and boxes, occlusion, noise, intensity.

Each beam x azimuth ray from the origin returns its nearest surface (ground plane or box face) within
max_range, so near objects shadow far ones. The range gets Gaussian noise (range_noise, metres, along
the ray) and a `dropout` fraction of returns is lost. Intensity in [0, 1] is surface reflectance times
(0.35 + 0.65 |cos incidence|) plus a little noise: asphalt is dark, lane paint bright, a car's body
brighter than its glass (the top 40 % of its sides), pedestrians and cyclists in between.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from v2xfusion_tools.synth import raycast
from v2xfusion_tools.synth.rig import LidarSpec
from v2xfusion_tools.synth.scene import Scene, ground_reflectance

GLASS_REFLECTIVITY = 0.08
GLASS_FROM = 0.2            # car side faces above this fraction of the half height (local z) are glass
INTENSITY_NOISE = 0.02


@dataclass(frozen=True)
class LidarScan:
    """points: (N, 4) float32 x, y, z, intensity in [0, 1]; object: (N,) int64 index of the scene
    object each point hit, -1 for the ground; points_per_object: (M,) int64."""

    points: np.ndarray
    object: np.ndarray
    points_per_object: np.ndarray


def scan(lidar: LidarSpec, scene: Scene, rng: np.random.Generator, directions: np.ndarray | None = None
         ) -> LidarScan:
    """Cast every ray of `lidar` into `scene`. `directions` (R, 3) may pass cached lidar.ray_directions()."""
    if directions is None:
        directions = lidar.ray_directions()
    origin = np.zeros(3)
    t = raycast.intersect_ground(origin, directions, scene.ground_z)
    hit_object = np.full(len(directions), -1, dtype=np.int64)
    cos_incidence = np.abs(directions[:, 2])
    reflectance = np.zeros(len(directions))
    for index, box in enumerate(scene.boxes):
        candidates = _rays_near_box(directions, box)
        hits = raycast.intersect_box(origin, directions[candidates], box)
        closer = hits.t < t[candidates]
        rays = candidates[closer]
        t[rays] = hits.t[closer]
        hit_object[rays] = index
        normals = raycast.face_normals_world(hits.face[closer], box[6])
        cos_incidence[rays] = np.abs(np.einsum("ij,ij->i", normals, directions[rays]))
        glass = (scene.class_names[scene.classes[index]] == "Car") & (hits.face[closer] < 4) & \
            (hits.local[closer][:, 2] > GLASS_FROM * box[5] / 2.0)
        reflectance[rays] = np.where(glass, GLASS_REFLECTIVITY, scene.reflectivity[index])
    keep = np.isfinite(t) & (t <= lidar.max_range) & (rng.random(len(directions)) >= lidar.dropout)
    t_kept = t[keep] + rng.normal(0.0, lidar.range_noise, int(keep.sum()))
    xyz = directions[keep] * t_kept[:, None]
    ground = hit_object[keep] < 0
    exact = directions[keep] * t[keep][:, None]
    reflectance_kept = reflectance[keep]
    reflectance_kept[ground] = ground_reflectance(exact[ground, 0], exact[ground, 1], scene.texture_seed)
    intensity = reflectance_kept * (0.35 + 0.65 * cos_incidence[keep])
    intensity = np.clip(intensity + rng.normal(0.0, INTENSITY_NOISE, len(intensity)), 0.0, 1.0)
    points = np.concatenate([xyz, intensity[:, None]], axis=1).astype(np.float32)
    objects = hit_object[keep]
    counts = np.bincount(objects[objects >= 0], minlength=len(scene.boxes)).astype(np.int64)
    return LidarScan(points=points, object=objects, points_per_object=counts)


def _rays_near_box(directions: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Indices of the rays that can meet the box: those within its bounding sphere's angular radius."""
    centre = box[:3]
    distance = float(np.linalg.norm(centre))
    radius = float(np.linalg.norm(box[3:6])) / 2.0
    if distance <= radius:
        return np.arange(len(directions))
    cos_limit = np.sqrt(1.0 - (radius / distance) ** 2)
    axis = centre / distance
    cosine = directions[:, 0] * axis[0] + directions[:, 1] * axis[1] + directions[:, 2] * axis[2]
    return np.flatnonzero(cosine >= cos_limit - 1e-9)
