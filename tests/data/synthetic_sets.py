"""Small synthetic sets through the real data-preparation commands, and tiny configs that read them.

The scenes are placed inside a small BEV range and scanned by a thinner LiDAR, so the sets build in
seconds and tiny models (a 40 x 40 BEV grid, 128 x 64 images) see every object.
"""
from __future__ import annotations

import copy
from pathlib import Path

from v2xfusion_perception.config import CONFIG_ROOT, load_config, preset_config_path
from v2xfusion_tools.datasets.dair_prepare import prepare_dair
from v2xfusion_tools.datasets.kitti_infos import create_kitti_infos
from v2xfusion_tools.datasets.kitti_to_v2x import convert_kitti_to_v2x
from v2xfusion_tools.synth import generate

BEV_CELLS = 40
SEED = 5


def tiny_geometry(geometry: dict) -> dict:
    """The preset's geometry on a 128 x 64 image and a 40 x 40 BEV grid from x = 0 (voxel sizes, bins,
    depth mode and out_size_factor kept: the layers depend on them)."""
    geo = dict(geometry)
    stride = geo["camera_downsample"]
    geo["image_size"], geo["feature_size"] = [8 * stride, 4 * stride], [8, 4]
    cell = geo["voxel_size"][0] * geo["out_size_factor"]
    extent = BEV_CELLS * cell
    geo["pc_range"] = [0.0, -extent / 2, -5.0, extent, extent / 2, 3.0]
    geo["post_center_range"] = list(geo["pc_range"])
    geo["bev_size"] = [BEV_CELLS, BEV_CELLS]
    geo["xbound"], geo["ybound"] = [0.0, extent, cell], [-extent / 2, extent / 2, cell]
    geo["max_voxels"] = 3000
    return geo


def tiny_config(preset: str, model: str = "pointpillars") -> dict:
    """configs/<preset>/<model>.yaml on the tiny geometry, no augmentation, loading in this process,
    a short schedule validating never (tests switch on what they check)."""
    config = load_config(CONFIG_ROOT / preset / f"{model}.yaml")
    config["geometry"] = tiny_geometry(config["geometry"])
    config["data"]["workers"] = 0
    config["data"]["augment"] = {}
    config["data"]["image"] = {}
    config["train"].update({"epochs": 1, "batch_size": 2, "val_interval": 0, "threads": 1, "log_interval": 1})
    return config


def synthetic_config(preset: str) -> dict:
    """The preset's synthetic section with the objects inside the tiny BEV range and fewer LiDAR rays."""
    config = copy.deepcopy(load_config(preset_config_path(preset)))
    geo = tiny_geometry(config["geometry"])
    extent = geo["pc_range"][3]
    scene = config["synthetic"]["scene"]
    scene["x_range"] = [6.0, extent - 4.0]
    scene["y_range"] = [-extent / 2 + 4.0, extent / 2 - 4.0]
    scene["objects_per_frame"] = [5, 8]
    lidar = config["synthetic"]["lidar"]
    lidar["azimuth_steps"] = lidar["azimuth_steps"] // 3
    return config


def make_kitti_set(root: Path, frames: int) -> Path:
    """Raw KITTI layout -> mmdet3d infos -> V2X-format mirror; returns the mirror (the dataset_root)."""
    raw, mirror = root / "raw", root / "kitti-v2x"
    generate(synthetic_config("kitti"), "kitti", frames, raw, seed=SEED, workers=1)
    create_kitti_infos(raw)
    convert_kitti_to_v2x(raw, mirror)
    return mirror


def make_v2x_set(root: Path, frames: int) -> Path:
    """DAIR-V2X-I native layout -> infos beside it + KITTI-format mirror <root>/dair-v2x-i-kitti;
    returns the native folder (the dataset_root)."""
    native = root / "dair-v2x-i"
    generate(synthetic_config("v2x"), "v2x", frames, native, seed=SEED, workers=1)
    prepare_dair(native, root / "dair-v2x-i-kitti")
    return native
