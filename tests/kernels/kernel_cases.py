"""One call of every kernel on inputs that stress it (shared atomics, ties, NaN rows), for the
determinism tests and the host-vs-sycl parity tests."""
from __future__ import annotations

import functools
from typing import Callable

import numpy as np

import v2xfusion_kernels as vk
from v2xfusion_perception.config import load_config, preset_config_path

KITTI = load_config(preset_config_path("kitti"))["geometry"]
# The sycl backend's device in the tests: the OpenCL CPU runtime of the intel-opencl-rt wheel,
# present wherever the SYCL wheels are.
SYCL_DEVICE = "opencl:cpu"

CASE_NAMES = (
    "voxelize_hard",
    "voxelize_dynamic",
    "pillar_scatter",
    "frustum_points",
    "bev_pool_geometry",
    "bev_pool",
    "subm_conv",
    "strided_conv",
    "sparse_to_dense",
    "centerhead_decode",
    "rotated_nms",
    "circle_nms",
    "bev_iou",
)


def cloud(rng, n=120_000):
    """A dense cloud with heavy voxel sharing (so atomics and ties really race) and some NaN rows."""
    lo = np.array(KITTI["pc_range"][:3], np.float32)
    hi = np.array(KITTI["pc_range"][3:], np.float32)
    xyz = rng.uniform(lo - 5, hi + 5, (n, 3)).astype(np.float32)
    xyz[: n // 2] = xyz[: n // 2] * np.float32(0.05) + np.float32([20, 0, -1])
    points = np.concatenate([xyz, rng.random((n, 1), dtype=np.float32)], axis=1)
    points[::997, 0] = np.nan
    return points


@functools.cache
def inputs() -> dict:
    """The inputs of every case (made once; frustum, geometry and pillars by the host kernels)."""
    rng = np.random.default_rng(0)
    points = cloud(rng)
    pillar = [KITTI["voxel_size"][0], KITTI["voxel_size"][1], 8.0]
    pc = KITTI["pc_range"]
    _, coors, _, _ = vk.voxelize_hard(points, pillar, pc, 32, 12000)
    coors_dup = coors.copy()
    coors_dup[1::2] = coors_dup[0]  # many pillars claim one cell

    camera = {
        "cam_to_lidar": np.eye(4, dtype=np.float32),
        "intrinsics": np.array([[721.5, 0, 640], [0, 721.5, 192], [0, 0, 1]], np.float32),
        "img_aug": np.eye(4, dtype=np.float32),
        "depths": (1.0 + 0.5 * np.arange(118)).astype(np.float32),
        "image_size": KITTI["image_size"],
        "feature_size": KITTI["feature_size"],
    }
    camera["cam_to_lidar"][:3, :3] = [[0, 0, 1], [-1, 0, 0], [0, -1, 0]]
    bounds = (KITTI["xbound"], KITTI["ybound"], KITTI["zbound"])
    frustum = vk.frustum_points(**camera)
    indices, intervals = vk.bev_pool_geometry(frustum, *bounds)

    sites = np.unique(rng.integers(0, [1, 41, 200, 176], (20000, 4)), axis=0).astype(np.int32)
    sites = sites[rng.permutation(len(sites))]
    site_features = rng.standard_normal((len(sites), 16), dtype=np.float32)

    heat = rng.normal(-2, 1.5, (3, 100, 100)).astype(np.float32)
    heat[:, 40:60, 40:60] = 3.0  # a plateau of ties
    boxes = np.column_stack([rng.uniform(-10, 10, (500, 2)), rng.random(500), rng.uniform(1, 4, (500, 3)),
                             rng.uniform(-3, 3, 500)]).astype(np.float32)
    return {
        "points": points,
        "pillar": pillar,
        "pc": pc,
        "pillar_features": rng.standard_normal((len(coors), 64), dtype=np.float32),
        "coors_dup": coors_dup,
        "camera": camera,
        "bounds": bounds,
        "frustum": frustum,
        "indices": indices,
        "intervals": intervals,
        "depth": rng.random(frustum.shape[:3], dtype=np.float32),
        "context": rng.standard_normal((*frustum.shape[1:3], 80), dtype=np.float32),
        "sites": sites,
        "site_features": site_features,
        "dense_features": np.ascontiguousarray(site_features[:, :4]),
        "weight": rng.standard_normal((32, 3, 3, 3, 16), dtype=np.float32),
        "bias": rng.standard_normal(32, dtype=np.float32),
        "maps": {
            "heatmap": heat,
            "reg": rng.random((2, 100, 100), dtype=np.float32),
            "height": rng.random((1, 100, 100), dtype=np.float32),
            "dim": rng.random((3, 100, 100), dtype=np.float32),
            "rot": rng.uniform(-1, 1, (2, 100, 100)).astype(np.float32),
        },
        "boxes": boxes,
        "boxes_b": boxes[::-1].copy(),
        "scores": np.round(rng.random(500), 1).astype(np.float32),  # many equal scores
        "labels": rng.integers(0, 3, 500).astype(np.int32),
    }


def kernel_cases(k) -> dict[str, Callable[[], tuple]]:
    """Name -> a call of that kernel on backend k returning its outputs as a tuple of arrays."""
    x = inputs()
    pc, bounds = x["pc"], x["bounds"]

    def hard():
        voxels, coors, num, stats = k.voxelize_hard(x["points"], x["pillar"], pc, 32, 12000)
        counts = [stats.num_nonfinite, stats.num_out_of_range, stats.num_point_overflow, stats.num_voxel_overflow]
        return voxels, coors, num, np.array(counts)

    def conv(subm, stride):
        rb = k.sparse_conv_rulebook(x["sites"], (41, 200, 176), 3, stride, 1, subm=subm)
        out = k.sparse_conv(x["site_features"], rb, x["weight"], x["bias"], relu=True)
        return rb.out_coors, rb.neighbors, out

    cases = {
        "voxelize_hard": hard,
        "voxelize_dynamic": lambda: k.voxelize_dynamic(x["points"], [0.2, 0.2, 0.2], pc)[:3],
        "pillar_scatter": lambda: (k.pillar_scatter(x["pillar_features"], x["coors_dup"], 800, 800),),
        "frustum_points": lambda: (k.frustum_points(**x["camera"]),),
        "bev_pool_geometry": lambda: k.bev_pool_geometry(x["frustum"], *bounds),
        "bev_pool": lambda: (k.bev_pool(x["depth"], x["context"], x["indices"], x["intervals"], *bounds),),
        "subm_conv": lambda: conv(True, 1),
        "strided_conv": lambda: conv(False, 2),
        "sparse_to_dense": lambda: (k.sparse_to_dense(x["dense_features"], x["sites"], (41, 200, 176)),),
        "centerhead_decode": lambda: k.centerhead_decode(**x["maps"], pc_range=pc, voxel_size=[0.1, 0.1, 0.2],
                                                         out_size_factor=8, post_center_range=pc,
                                                         score_threshold=0.1),
        "rotated_nms": lambda: (k.rotated_nms(x["boxes"], x["scores"], x["labels"], 0.2, 1000, 83),),
        "circle_nms": lambda: (k.circle_nms(x["boxes"], x["scores"], x["labels"], [4.0, 0.85, 0.85], 1000, 83),),
        "bev_iou": lambda: (k.bev_iou(x["boxes"], x["boxes_b"]),),
    }
    assert tuple(cases) == CASE_NAMES
    return cases


def bits(outputs: tuple) -> list[bytes]:
    return [np.ascontiguousarray(a).tobytes() for a in outputs]
