"""Every kernel gives the same bits on every run, whatever the number of threads (design.md §4)."""
from __future__ import annotations

import numpy as np
import pytest

import v2xfusion_kernels as vk
from v2xfusion_perception.config import load_config, preset_config_path

KITTI = load_config(preset_config_path("kitti"))["geometry"]
THREADS = (1, 2, 3, 4)


def cloud(rng, n=120_000):
    """A dense cloud with heavy voxel sharing (so atomics and ties really race) and some NaN rows."""
    lo = np.array(KITTI["pc_range"][:3], np.float32)
    hi = np.array(KITTI["pc_range"][3:], np.float32)
    xyz = rng.uniform(lo - 5, hi + 5, (n, 3)).astype(np.float32)
    xyz[: n // 2] = xyz[: n // 2] * np.float32(0.05) + np.float32([20, 0, -1])
    points = np.concatenate([xyz, rng.random((n, 1), dtype=np.float32)], axis=1)
    points[::997, 0] = np.nan
    return points


def _cases():
    rng = np.random.default_rng(0)
    points = cloud(rng)
    pillar = [KITTI["voxel_size"][0], KITTI["voxel_size"][1], 8.0]
    pc = KITTI["pc_range"]

    def hard():
        voxels, coors, num, stats = vk.voxelize_hard(points, pillar, pc, 32, 12000)
        return voxels, coors, num, np.array([stats.num_point_overflow, stats.num_voxel_overflow])

    def dynamic():
        return vk.voxelize_dynamic(points, [0.2, 0.2, 0.2], pc)[:3]

    voxels, coors, num, _ = vk.voxelize_hard(points, pillar, pc, 32, 12000)
    pillar_features = rng.standard_normal((len(coors), 64), dtype=np.float32)
    coors_dup = coors.copy()
    coors_dup[1::2] = coors_dup[0]  # many pillars claim one cell

    intrinsics = np.array([[721.5, 0, 640], [0, 721.5, 192], [0, 0, 1]], np.float32)
    cam_to_lidar = np.eye(4, dtype=np.float32)
    cam_to_lidar[:3, :3] = [[0, 0, 1], [-1, 0, 0], [0, -1, 0]]
    depths = (1.0 + 0.5 * np.arange(118)).astype(np.float32)
    bounds = (KITTI["xbound"], KITTI["ybound"], KITTI["zbound"])
    frustum = vk.frustum_points(cam_to_lidar, intrinsics, np.eye(4, dtype=np.float32), depths,
                                KITTI["image_size"], KITTI["feature_size"])
    indices, intervals = vk.bev_pool_geometry(frustum, *bounds)
    depth = rng.random(frustum.shape[:3], dtype=np.float32)
    context = rng.standard_normal((*frustum.shape[1:3], 80), dtype=np.float32)

    sites = np.unique(rng.integers(0, [1, 41, 200, 176], (20000, 4)), axis=0).astype(np.int32)
    sites = sites[rng.permutation(len(sites))]
    site_features = rng.standard_normal((len(sites), 16), dtype=np.float32)
    dense_features = np.ascontiguousarray(site_features[:, :4])
    weight = rng.standard_normal((32, 3, 3, 3, 16), dtype=np.float32)
    bias = rng.standard_normal(32, dtype=np.float32)

    heat = rng.normal(-2, 1.5, (3, 100, 100)).astype(np.float32)
    heat[:, 40:60, 40:60] = 3.0  # a plateau of ties
    maps = {
        "heatmap": heat,
        "reg": rng.random((2, 100, 100), dtype=np.float32),
        "height": rng.random((1, 100, 100), dtype=np.float32),
        "dim": rng.random((3, 100, 100), dtype=np.float32),
        "rot": rng.uniform(-1, 1, (2, 100, 100)).astype(np.float32),
    }
    boxes = np.column_stack([rng.uniform(-10, 10, (500, 2)), rng.random(500), rng.uniform(1, 4, (500, 3)),
                             rng.uniform(-3, 3, 500)]).astype(np.float32)
    scores = np.round(rng.random(500), 1).astype(np.float32)  # many equal scores
    labels = rng.integers(0, 3, 500).astype(np.int32)

    def conv(subm, stride):
        rb = vk.sparse_conv_rulebook(sites, (41, 200, 176), 3, stride, 1, subm=subm)
        return rb.out_coors, rb.neighbors, vk.sparse_conv(site_features, rb, weight, bias, relu=True)

    return {
        "voxelize_hard": hard,
        "voxelize_dynamic": dynamic,
        "pillar_scatter": lambda: vk.pillar_scatter(pillar_features, coors_dup, 800, 800),
        "bev_pool_geometry": lambda: vk.bev_pool_geometry(frustum, *bounds),
        "bev_pool": lambda: vk.bev_pool(depth, context, indices, intervals, *bounds),
        "subm_conv": lambda: conv(True, 1),
        "strided_conv": lambda: conv(False, 2),
        "sparse_to_dense": lambda: vk.sparse_to_dense(dense_features, sites, (41, 200, 176)),
        "centerhead_decode": lambda: vk.centerhead_decode(**maps, pc_range=pc, voxel_size=[0.1, 0.1, 0.2],
                                                          out_size_factor=8, post_center_range=pc,
                                                          score_threshold=0.1),
        "rotated_nms": lambda: vk.rotated_nms(boxes, scores, labels, 0.2, 1000, 83),
        "circle_nms": lambda: vk.circle_nms(boxes, scores, labels, [4.0, 0.85, 0.85], 1000, 83),
    }


CASES = _cases()


def _bits(result):
    arrays = result if isinstance(result, tuple) else (result,)
    return [np.ascontiguousarray(a).tobytes() for a in arrays]


@pytest.mark.parametrize("name", sorted(CASES))
def test_kernel_is_bit_identical_across_runs_and_thread_counts(name):
    run = CASES[name]
    try:
        vk.set_num_threads(1)
        first = _bits(run())
        for threads in THREADS:
            vk.set_num_threads(threads)
            assert vk.get_num_threads() == threads
            for _ in range(2):
                assert _bits(run()) == first, f"{name} differs with {threads} threads"
    finally:
        vk.set_num_threads(0)
