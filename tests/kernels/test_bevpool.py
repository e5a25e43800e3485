"""BEVPool-v2 and its geometry precompute against numpy / PyTorch references."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from v2xfusion_perception.config import load_config, preset_config_path

KITTI = load_config(preset_config_path("kitti"))["geometry"]
BOUNDS = (KITTI["xbound"], KITTI["ybound"], KITTI["zbound"])


def kitti_camera(aug: bool):
    """A KITTI-like front camera of the preset's network input, and an image resize + crop."""
    w, h = KITTI["image_size"]
    intrinsics = np.array([[721.5, 0, w / 2], [0, 721.5, h / 2], [0, 0, 1]], np.float32)
    cam_to_lidar = np.eye(4, dtype=np.float32)
    cam_to_lidar[:3, :3] = [[0, 0, 1], [-1, 0, 0], [0, -1, 0]]  # camera z forward, y down
    cam_to_lidar[:3, 3] = [0.27, 0.0, -0.08]
    img_aug = np.eye(4, dtype=np.float32)
    if aug:
        img_aug[:3, :3] = np.diag([0.9, 0.9, 1.0])
        img_aug[:2, 3] = [-12.0, 7.5]
    return cam_to_lidar, intrinsics, img_aug


def depth_bins():
    """The preset's metric depth bins: dbound = (start, end, count)."""
    start, end, count = KITTI["dbound"]
    return (start + (end - start) / count * np.arange(int(count))).astype(np.float32)


def reference_frustum(cam_to_lidar, intrinsics, img_aug, depths, image_size, feature_size):
    """BEVFusion's create_frustum + get_geometry in float64."""
    (w, h), (fw, fh) = image_size, feature_size
    xs = np.linspace(0, w - 1, fw)
    ys = np.linspace(0, h - 1, fh)
    d, v, u = np.meshgrid(depths.astype(np.float64), ys, xs, indexing="ij")
    pts = np.stack([u, v, d], axis=-1) - img_aug[:3, 3].astype(np.float64)
    pts = pts @ np.linalg.inv(img_aug[:3, :3].astype(np.float64)).T
    pts = np.concatenate([pts[..., :2] * pts[..., 2:3], pts[..., 2:3]], axis=-1)
    combine = cam_to_lidar[:3, :3].astype(np.float64) @ np.linalg.inv(intrinsics.astype(np.float64))
    return pts @ combine.T + cam_to_lidar[:3, 3].astype(np.float64)


def reference_cells(points, bounds):
    """Float32 BEV cell of each point (floor((p - lower) / step)); rank (z * nx + x) * ny + y and
    the in-grid mask."""
    p = points.reshape(-1, 3).astype(np.float32)
    lower = np.array([b[0] for b in bounds], np.float32)
    step = np.array([b[2] for b in bounds], np.float32)
    upper = np.array([b[1] for b in bounds], np.float32)
    dims = np.round((upper - lower) / step).astype(np.int64)
    with np.errstate(invalid="ignore"):
        c = np.floor((p - lower) / step)
        inside = ((c >= 0) & (c < dims)).all(axis=1)
    c = np.where(inside[:, None], c, 0).astype(np.int64)
    rank = (c[:, 2] * dims[0] + c[:, 0]) * dims[1] + c[:, 1]
    return rank, inside, dims


def reference_geometry(points, bounds):
    rank, inside, dims = reference_cells(points, bounds)
    key = np.where(inside, rank, dims.prod())
    indices = np.argsort(key, kind="stable").astype(np.int32)
    sorted_key = key[indices]
    n_inside = int(inside.sum())
    starts = [j for j in range(n_inside) if j == 0 or sorted_key[j] != sorted_key[j - 1]]
    ends = starts[1:] + [n_inside]
    rows = [(s, e, sorted_key[s]) for s, e in zip(starts, ends)] + [(n_inside, len(key), -1)]
    return indices, np.array(rows, np.int32).reshape(-1, 3)


def reference_pool(depth, context, points, bounds):
    """torch index_add of depth * context over each frustum point's BEV cell -> (nz*C, nx, ny)."""
    rank, inside, dims = reference_cells(points, bounds)
    c = context.shape[-1]
    idx = torch.from_numpy(np.flatnonzero(inside))
    d = torch.from_numpy(depth).reshape(-1)[idx]
    f = torch.from_numpy(context).reshape(-1, c)[idx % (context.shape[0] * context.shape[1])]
    out = torch.zeros(int(dims.prod()), c).index_add_(0, torch.from_numpy(rank[inside]), d[:, None] * f)
    nx, ny, nz = (int(v) for v in dims)
    return out.reshape(nz, nx, ny, c).permute(0, 3, 1, 2).reshape(nz * c, nx, ny).numpy()


@pytest.mark.parametrize("aug", [False, True])
def test_frustum_points_match_bevfusion_geometry(kernels, aug):
    cam = kitti_camera(aug)
    args = (*cam, depth_bins(), KITTI["image_size"], KITTI["feature_size"])
    points = kernels.frustum_points(*args)
    ref = reference_frustum(*args)
    assert points.shape == ref.shape == (118, 24, 80, 3)
    np.testing.assert_allclose(points, ref, rtol=1e-5, atol=2e-4)


@pytest.mark.parametrize("aug", [False, True])
def test_geometry_matches_reference_sort_and_runs(kernels, aug):
    cam = kitti_camera(aug)
    points = kernels.frustum_points(*cam, depth_bins(), KITTI["image_size"], KITTI["feature_size"])
    indices, intervals = kernels.bev_pool_geometry(points, *BOUNDS)
    ref_indices, ref_intervals = reference_geometry(points, BOUNDS)
    np.testing.assert_array_equal(indices, ref_indices)
    np.testing.assert_array_equal(intervals, ref_intervals)
    assert intervals[-1, 2] == -1 and intervals[-1, 1] == points.size // 3
    assert len(intervals) > 1000


def test_geometry_of_adversarial_points(kernels):
    lower = [b[0] for b in BOUNDS]
    upper = [b[1] for b in BOUNDS]
    points = np.array(
        [
            [lower[0], lower[1], lower[2]],  # lower corner: cell (0, 0, 0)
            [upper[0], 0.0, 0.0],  # on x upper bound: outside
            [np.nan, 0.0, 0.0],  # not finite: outside
            [0.05, lower[1] + 0.01, 0.0],  # cell (0, 0, 0) again
            [79.99, 39.99, 2.99],  # last cell
            [-0.01, 0.0, 0.0],  # just below x lower: outside
            [np.inf, 0.0, 0.0],
        ],
        np.float32,
    )
    indices, intervals = kernels.bev_pool_geometry(points, *BOUNDS)
    np.testing.assert_array_equal(indices, [0, 3, 4, 1, 2, 5, 6])
    np.testing.assert_array_equal(intervals, [[0, 2, 0], [2, 3, 9999], [3, 7, -1]])


def test_geometry_with_no_point_in_the_grid_is_the_sentinel_alone(kernels):
    points = np.full((2, 3, 4, 3), -100.0, np.float32)
    indices, intervals = kernels.bev_pool_geometry(points, *BOUNDS)
    np.testing.assert_array_equal(indices, np.arange(24))
    np.testing.assert_array_equal(intervals, [[0, 24, -1]])


@pytest.mark.parametrize("channels", [80, 24, 12, 3])  # channel blocks of 16, 8, 4, 1
def test_bev_pool_matches_torch_index_add(kernels, channels):
    rng = np.random.default_rng(channels)
    cam = kitti_camera(aug=True)
    points = kernels.frustum_points(*cam, depth_bins(), KITTI["image_size"], KITTI["feature_size"])
    indices, intervals = kernels.bev_pool_geometry(points, *BOUNDS)
    d, fh, fw = points.shape[:3]
    depth = rng.random((d, fh, fw), dtype=np.float32)
    depth /= depth.sum(axis=0, keepdims=True)
    context = rng.standard_normal((fh, fw, channels), dtype=np.float32)
    out = kernels.bev_pool(depth, context, indices, intervals, *BOUNDS)
    ref = reference_pool(depth, context, points, BOUNDS)
    assert out.shape == (channels, 100, 100)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)
    assert np.abs(out).sum() > 0


def test_bev_pool_of_all_points_in_one_cell_and_with_several_z_bins(kernels):
    rng = np.random.default_rng(7)
    bounds = ([0.0, 4.0, 1.0], [0.0, 2.0, 1.0], [0.0, 3.0, 1.0])
    points = np.tile(np.array([2.5, 1.5, 1.5], np.float32), (5, 2, 3, 1))
    points[1, 1, 2] = [0.5, 0.5, 2.5]
    indices, intervals = kernels.bev_pool_geometry(points, *bounds)
    depth = rng.random((5, 2, 3), dtype=np.float32)
    context = rng.standard_normal((2, 3, 16), dtype=np.float32)
    out = kernels.bev_pool(depth, context, indices, intervals, *bounds)
    np.testing.assert_allclose(out, reference_pool(depth, context, points, bounds), rtol=1e-5, atol=1e-6)
    assert out.shape == (3 * 16, 4, 2)
    # cells (x, y, z) = (2, 1, 1) and (0, 0, 2) of the 4 x 2 x 3 grid: rank (z * nx + x) * ny + y
    np.testing.assert_array_equal(intervals[:, 2], [(1 * 4 + 2) * 2 + 1, (2 * 4 + 0) * 2 + 0, -1])


@pytest.mark.parametrize(
    ("change", "name"),
    [
        (lambda a: a.update(indices=np.array([10**6], np.int32)), "indices"),
        (lambda a: a.update(intervals=np.array([[0, 1, 0]], np.int32)), "intervals"),
        (lambda a: a.update(intervals=np.array([[0, 9, 0], [9, 9, -1]], np.int32)), "intervals"),
        (lambda a: a.update(intervals=np.array([[0, 1, 10**7], [1, 1, -1]], np.int32)), "intervals"),
        (lambda a: a.update(context=np.zeros((2, 3, 4), np.float32)), "context"),
        (lambda a: a.update(depth=np.zeros((4, 6), np.float32)), "depth"),
        (lambda a: a.update(xbound=[0.0, 80.0, 0.0]), "xbound"),
    ],
)
def test_bev_pool_rejects_bad_geometry_by_name(kernels, change, name):
    args = {
        "depth": np.zeros((2, 4, 6), np.float32),
        "context": np.zeros((4, 6, 8), np.float32),
        "indices": np.array([0], np.int32),
        "intervals": np.array([[0, 1, 0], [1, 1, -1]], np.int32),
        "xbound": BOUNDS[0],
        "ybound": BOUNDS[1],
        "zbound": BOUNDS[2],
    }
    change(args)
    with pytest.raises(ValueError, match=f"^{name}:"):
        kernels.bev_pool(**args)


def test_bev_pool_writes_into_a_given_array_and_overwrites_it_fully(kernels):
    rng = np.random.default_rng(9)
    bounds = ([0.0, 4.0, 1.0], [0.0, 2.0, 1.0], [0.0, 1.0, 1.0])
    points = rng.uniform(-1.0, 5.0, (3, 2, 2, 3)).astype(np.float32)
    points[..., 2] = 0.5
    indices, intervals = kernels.bev_pool_geometry(points, *bounds)
    depth = rng.random((3, 2, 2), dtype=np.float32)
    context = rng.standard_normal((2, 2, 8), dtype=np.float32)
    out = np.full((8, 4, 2), np.nan, np.float32)
    result = kernels.bev_pool(depth, context, indices, intervals, *bounds, out=out)
    assert np.shares_memory(result, out)
    np.testing.assert_allclose(out, reference_pool(depth, context, points, bounds), rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="^out:"):
        kernels.bev_pool(depth, context, indices, intervals, *bounds, out=np.zeros((8, 2, 4), np.float32))
