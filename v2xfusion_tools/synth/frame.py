"""Simulate one synthetic frame: scene, LiDAR scan, camera picture and per-object views, from (seed, index).

A frame depends only on the config, the data set seed and its own index: its random streams are
spawned from SeedSequence([seed, index]), so frames can be generated in any order, in any process,
and come out the same. For the kitti preset the boxes are first snapped to what a KITTI label file
can hold (two decimals for h, w, l, x, y, z, rotation_y in camera-rect), so the label text is exactly
the scene that was scanned and rendered. The ground pattern is new in every kitti frame (a car drives
on) and the same in every v2x frame of a data set (a roadside pole watches one crossing).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from v2xfusion_perception import boxes as box_ops
from v2xfusion_tools.synth import camera, lidar
from v2xfusion_tools.synth.annotate import ObjectViews, annotate
from v2xfusion_tools.synth.rig import LidarSpec, Rig, build_rig
from v2xfusion_tools.synth.scene import Scene, sample_scene

KITTI_DECIMALS = 2
CAMERA_LIDAR_SKEW_US = 15000     # the camera fires within +-15 ms of the LiDAR sweep's timestamp


@dataclass(frozen=True)
class SyntheticFrame:
    """One simulated frame: its index, the scene, the LiDAR scan, the camera picture, the per-object
    views and the camera's offset from the LiDAR timestamp (microseconds)."""

    index: int
    scene: Scene
    scan: lidar.LidarScan
    picture: camera.CameraPicture
    views: ObjectViews
    camera_skew_us: int


def rig_for(synthetic: dict, preset: str, seed: int) -> Rig:
    """The rig of a config section, cached per process (frames of one data set share it)."""
    return _cached_rig(json.dumps(synthetic, sort_keys=True), preset, seed)


@lru_cache(maxsize=4)
def _cached_rig(synthetic_json: str, preset: str, seed: int) -> Rig:
    return build_rig(json.loads(synthetic_json), preset, seed)


@lru_cache(maxsize=4)
def _lidar_rays(spec: LidarSpec) -> np.ndarray:
    return spec.ray_directions()


def simulate_frame(rig: Rig, scene_cfg: dict, class_names: list[str], seed: int, index: int) -> SyntheticFrame:
    """Simulate frame `index` of the data set drawn with `seed`."""
    scene_rng, lidar_rng, camera_rng, time_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence([seed, index]).spawn(4))
    static_ground = seed & 0x7FFFFFFF if rig.preset == "v2x" else None
    scene = sample_scene(scene_rng, scene_cfg, class_names, rig.ground_z, rig.lidar.horizontal_fov_deg,
                         static_ground)
    if rig.preset == "kitti":
        scene = snap_to_kitti_precision(scene, rig.lidar2cam)
    scan = lidar.scan(rig.lidar, scene, lidar_rng, _lidar_rays(rig.lidar))
    picture = camera.render(scene, rig.lidar2img, rig.image_size, camera_rng)
    views = annotate(scene.boxes, picture, rig.lidar2cam, rig.lidar2img, scan.points_per_object)
    skew = int(time_rng.integers(-CAMERA_LIDAR_SKEW_US, CAMERA_LIDAR_SKEW_US + 1))
    return SyntheticFrame(index, scene, scan, picture, views, skew)


def snap_to_kitti_precision(scene: Scene, lidar2cam: np.ndarray) -> Scene:
    """The scene with each box moved to the nearest box a KITTI label line can express."""
    dims, location, rotation_y = box_ops.kitti_from_lidar_boxes(scene.boxes, lidar2cam)
    snapped = box_ops.lidar_boxes_from_kitti(np.round(dims, KITTI_DECIMALS), np.round(location, KITTI_DECIMALS),
                                             np.round(rotation_y, KITTI_DECIMALS), lidar2cam)
    return Scene(snapped, scene.classes, scene.colours, scene.reflectivity, scene.class_names, scene.ground_z,
                 scene.texture_seed)
