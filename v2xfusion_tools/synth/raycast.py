"""Analytic ray intersections shared by the LiDAR and the camera: rays against one box and the ground.

A box is intersected in its own frame (x along the heading, z up) with the slab method: each ray's
entry distance is the largest of its three per-axis entry distances, its exit the smallest exit, and it
hits when it enters before it leaves, in front of the origin. The entry axis gives the face (and so the
normal) that was hit.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Faces in the box's frame: the outward normal of face k is FACE_NORMALS[k].
FACE_NORMALS = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], dtype=np.float64)
_NEAR = 1e-4


@dataclass(frozen=True)
class BoxHits:
    """Where rays meet one box. t: (N,) distance in units of the ray direction, inf where missed;
    face: (N,) int8 index into FACE_NORMALS (-1 where missed); local: (N, 3) hit point in the box frame
    measured from its centre (meaningless where missed)."""

    t: np.ndarray
    face: np.ndarray
    local: np.ndarray


def intersect_box(origin: np.ndarray, directions: np.ndarray, box: np.ndarray) -> BoxHits:
    """Rays origin + t * directions against one internal box (7,). directions: (N, 3) float32/64."""
    dtype = directions.dtype
    cos, sin = np.cos(box[6]), np.sin(box[6])
    offset = np.asarray(origin, dtype=np.float64) - box[:3]
    local_origin = np.array([offset[0] * cos + offset[1] * sin, -offset[0] * sin + offset[1] * cos, offset[2]],
                            dtype=dtype)
    local_dir = np.empty_like(directions)
    local_dir[:, 0] = directions[:, 0] * dtype.type(cos) + directions[:, 1] * dtype.type(sin)
    local_dir[:, 1] = -directions[:, 0] * dtype.type(sin) + directions[:, 1] * dtype.type(cos)
    local_dir[:, 2] = directions[:, 2]
    half = (np.asarray(box[3:6], dtype=np.float64) / 2.0).astype(dtype)
    with np.errstate(divide="ignore", invalid="ignore"):
        inverse = dtype.type(1.0) / local_dir
        t_low = (-half - local_origin) * inverse
        t_high = (half - local_origin) * inverse
    # a ray parallel to a slab either lies inside it for all t or never: nan from 0 * inf means outside
    outside = (local_dir == 0) & (np.abs(local_origin) > half)
    t_enter_axes = np.where(outside, np.inf, np.fmin(t_low, t_high))
    t_exit_axes = np.where(outside, -np.inf, np.fmax(t_low, t_high))
    axis = np.argmax(t_enter_axes, axis=1)
    t_enter = np.take_along_axis(t_enter_axes, axis[:, None], axis=1)[:, 0]
    t_exit = t_exit_axes.min(axis=1)
    hit = (t_enter <= t_exit) & (t_enter > _NEAR)
    t = np.where(hit, t_enter, np.inf)
    sign_positive = np.take_along_axis(local_dir, axis[:, None], axis=1)[:, 0] < 0
    face = np.where(hit, 2 * axis + np.where(sign_positive, 0, 1), -1).astype(np.int8)
    local = local_origin + np.where(hit, t, 0)[:, None] * local_dir
    return BoxHits(t=t, face=face, local=local)


def face_normals_world(face: np.ndarray, yaw: float) -> np.ndarray:
    """Outward normals (N, 3) float64 in the LiDAR frame for face indices (N,) of a box with `yaw`."""
    local = FACE_NORMALS[np.clip(face, 0, 5)]
    cos, sin = np.cos(yaw), np.sin(yaw)
    return np.stack([local[:, 0] * cos - local[:, 1] * sin, local[:, 0] * sin + local[:, 1] * cos,
                     local[:, 2]], axis=1)


def intersect_ground(origin: np.ndarray, directions: np.ndarray, ground_z: float) -> np.ndarray:
    """Distance t along each ray (N, 3) to the plane z = ground_z; inf for rays that never reach it."""
    dz = directions[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (ground_z - origin[2]) / dz
    return np.where((dz < 0) & (t > 0), t, np.inf)
