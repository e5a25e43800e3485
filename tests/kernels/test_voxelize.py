"""Hard (mmcv semantics) and dynamic voxelization against point-by-point numpy references."""
from __future__ import annotations

import numpy as np
import pytest

from v2xfusion_perception.config import load_config, preset_config_path

KITTI = load_config(preset_config_path("kitti"))["geometry"]
PC_RANGE = KITTI["pc_range"]
PILLAR = [KITTI["voxel_size"][0], KITTI["voxel_size"][1], PC_RANGE[5] - PC_RANGE[2]]


def _cells(points: np.ndarray, voxel_size, pc_range):
    """Float32 cell coordinates and the in-grid mask, computed the way mmcv's CPU kernel does."""
    vs = np.asarray(voxel_size, np.float32)
    lo = np.asarray(pc_range[:3], np.float32)
    hi = np.asarray(pc_range[3:], np.float32)
    grid = np.round((hi - lo) / vs).astype(np.int64)
    finite = np.isfinite(points).all(axis=1)
    with np.errstate(invalid="ignore", over="ignore"):
        c = np.floor((points[:, :3] - lo) / vs)
        inside = finite & ((c >= 0) & (c < grid)).all(axis=1)
    return np.where(inside[:, None], c, 0).astype(np.int64), inside, finite, grid


def reference_hard(points, voxel_size, pc_range, max_points, max_voxels):
    """mmcv hard_voxelize_forward_cpu, one point at a time."""
    c, inside, _, _ = _cells(points, voxel_size, pc_range)
    cell_to_voxel: dict[tuple, int] = {}
    coors, rows = [], []
    for i in np.flatnonzero(inside):
        key = tuple(c[i])
        v = cell_to_voxel.get(key)
        if v is None:
            if len(coors) >= max_voxels:
                continue
            v = cell_to_voxel[key] = len(coors)
            coors.append(key)
            rows.append([])
        if len(rows[v]) < max_points:
            rows[v].append(i)
    voxels = np.zeros((len(coors), max_points, points.shape[1]), np.float32)
    for v, r in enumerate(rows):
        voxels[v, : len(r)] = points[r]
    coors_bxyz = np.array([(0, *k) for k in coors], np.int32).reshape(-1, 4)
    return voxels, coors_bxyz, np.array([len(r) for r in rows], np.int32)


def reference_dynamic(points, voxel_size, pc_range):
    """Mean voxel features; voxels ordered by (z, y, x); sums in input order in float32."""
    c, inside, _, grid = _cells(points, voxel_size, pc_range)
    zyx = c[inside][:, ::-1]
    lin = (zyx[:, 0] * grid[1] + zyx[:, 1]) * grid[0] + zyx[:, 2]
    uniq, inverse = np.unique(lin, return_inverse=True)
    sums = np.zeros((len(uniq), points.shape[1]), np.float32)
    np.add.at(sums, inverse, points[inside])
    counts = np.bincount(inverse, minlength=len(uniq)).astype(np.int32)
    coors = np.zeros((len(uniq), 4), np.int32)
    coors[:, 1] = uniq // (grid[0] * grid[1])
    coors[:, 2] = (uniq // grid[0]) % grid[1]
    coors[:, 3] = uniq % grid[0]
    return sums / counts[:, None].astype(np.float32), coors, counts


def random_cloud(rng, n, spill=0.2):
    """n points over pc_range plus a margin outside it, with intensity."""
    lo = np.array(PC_RANGE[:3], np.float32)
    hi = np.array(PC_RANGE[3:], np.float32)
    span = hi - lo
    xyz = rng.uniform(lo - spill * span, hi + spill * span, size=(n, 3)).astype(np.float32)
    return np.concatenate([xyz, rng.random((n, 1), dtype=np.float32)], axis=1)


def assert_hard_equal(kernels, points, voxel_size, max_points, max_voxels):
    voxels, coors, num, stats = kernels.voxelize_hard(points, voxel_size, PC_RANGE, max_points, max_voxels)
    ref_voxels, ref_coors, ref_num = reference_hard(points, voxel_size, PC_RANGE, max_points, max_voxels)
    np.testing.assert_array_equal(coors, ref_coors)
    np.testing.assert_array_equal(num, ref_num)
    np.testing.assert_array_equal(voxels, ref_voxels)
    return stats


def test_hard_matches_reference_on_random_cloud_with_pillars(kernels):
    rng = np.random.default_rng(0)
    points = random_cloud(rng, 20000)
    stats = assert_hard_equal(kernels, points, PILLAR, 32, 12000)
    assert stats.num_points == 20000
    assert stats.num_out_of_range > 0


def test_hard_matches_reference_with_clustered_points_and_small_voxels(kernels):
    rng = np.random.default_rng(1)
    centres = rng.uniform([5, -10, -2], [30, 10, 0], size=(50, 3)).astype(np.float32)
    xyz = centres[rng.integers(0, 50, 8000)] + rng.normal(0, 0.15, (8000, 3)).astype(np.float32)
    points = np.concatenate([xyz, rng.random((8000, 1), dtype=np.float32)], axis=1).astype(np.float32)
    stats = assert_hard_equal(kernels, points, KITTI["voxel_size"], 5, 12000)
    assert stats.num_point_overflow > 0


def test_hard_keeps_first_max_voxels_in_order_of_first_appearance(kernels):
    rng = np.random.default_rng(2)
    points = random_cloud(rng, 5000, spill=0.0)
    stats = assert_hard_equal(kernels, points, PILLAR, 4, 300)
    assert stats.num_voxels_dropped > 0 and stats.num_voxel_overflow > 0
    kept = 5000 - stats.num_out_of_range - stats.num_voxel_overflow - stats.num_point_overflow
    _, _, num, _ = kernels.voxelize_hard(points, PILLAR, PC_RANGE, 4, 300)
    assert num.sum() == kept


def test_hard_of_empty_cloud_is_empty(kernels):
    voxels, coors, num, stats = kernels.voxelize_hard(np.zeros((0, 4), np.float32), PILLAR, PC_RANGE, 32, 100)
    assert voxels.shape == (0, 32, 4) and coors.shape == (0, 4) and num.shape == (0,)
    assert stats.num_points == 0


def test_hard_of_one_point(kernels):
    point = np.array([[10.05, 0.05, 0.0, 0.5]], np.float32)
    voxels, coors, num, _ = kernels.voxelize_hard(point, PILLAR, PC_RANGE, 32, 100)
    np.testing.assert_array_equal(coors, [[0, 100, 400, 0]])
    np.testing.assert_array_equal(num, [1])
    np.testing.assert_array_equal(voxels[0, 0], point[0])
    assert not voxels[0, 1:].any()


def test_hard_all_points_in_one_voxel_keeps_the_first_max_points(kernels):
    rng = np.random.default_rng(3)
    points = np.tile(np.array([[20.01, 1.01, 0.5, 0.0]], np.float32), (100, 1))
    points[:, 3] = rng.random(100, dtype=np.float32)
    voxels, coors, num, stats = kernels.voxelize_hard(points, PILLAR, PC_RANGE, 32, 100)
    assert coors.shape == (1, 4) and num[0] == 32
    np.testing.assert_array_equal(voxels[0], points[:32])
    assert stats.num_point_overflow == 68


def test_hard_points_on_range_borders_follow_floor_rule(kernels):
    lo, hi = PC_RANGE[:3], PC_RANGE[3:]
    points = np.array(
        [
            [lo[0], lo[1], lo[2], 1.0],  # on the lower corner: cell 0, kept
            [hi[0], 0.0, 0.0, 1.0],  # on x max: cell == grid, dropped
            [0.0, hi[1], 0.0, 1.0],  # on y max: dropped
            [0.0, 0.0, hi[2], 1.0],  # on z max: dropped
            [np.nextafter(np.float32(hi[0]), np.float32(0)), 0.0, 0.0, 1.0],  # just inside x max
            [np.nextafter(np.float32(lo[1]), np.float32(-100)), 0.0, 0.0, 1.0],  # just below y min
        ],
        np.float32,
    )
    stats = assert_hard_equal(kernels, points, KITTI["voxel_size"], 8, 100)
    assert stats.num_out_of_range == 4


def test_hard_drops_and_counts_nan_and_inf_rows(kernels):
    rng = np.random.default_rng(4)
    points = random_cloud(rng, 2000, spill=0.0)
    points[::7, 0] = np.nan
    points[3::11, 2] = np.inf
    points[5::13, 3] = -np.inf  # a non-finite intensity drops the point too
    bad = ~np.isfinite(points).all(axis=1)
    voxels, coors, num, stats = kernels.voxelize_hard(points, PILLAR, PC_RANGE, 32, 12000)
    assert stats.num_nonfinite == bad.sum()
    assert np.isfinite(voxels).all()
    ref = reference_hard(points[~bad], PILLAR, PC_RANGE, 32, 12000)
    np.testing.assert_array_equal(coors, ref[1])
    np.testing.assert_array_equal(voxels, ref[0])


def test_hard_writes_the_batch_index(kernels):
    points = np.array([[1.0, 1.0, 1.0, 0.0]], np.float32)
    _, coors, _, _ = kernels.voxelize_hard(points, PILLAR, PC_RANGE, 4, 4, batch_index=3)
    assert coors[0, 0] == 3


def test_dynamic_matches_reference_means_exactly(kernels):
    rng = np.random.default_rng(5)
    points = random_cloud(rng, 30000)
    points[::101, 1] = np.nan
    features, coors, num, stats = kernels.voxelize_dynamic(points, [0.8, 0.8, 0.4], PC_RANGE)
    ref_features, ref_coors, ref_num = reference_dynamic(points, [0.8, 0.8, 0.4], PC_RANGE)
    np.testing.assert_array_equal(coors, ref_coors)
    np.testing.assert_array_equal(num, ref_num)
    np.testing.assert_array_equal(features, ref_features)
    assert stats.num_nonfinite == len(points[::101])
    assert num.sum() == stats.num_points - stats.num_nonfinite - stats.num_out_of_range


def test_dynamic_of_empty_and_single_voxel_clouds(kernels):
    features, coors, num, _ = kernels.voxelize_dynamic(np.zeros((0, 4), np.float32), PILLAR, PC_RANGE)
    assert features.shape == (0, 4) and coors.shape == (0, 4) and num.shape == (0,)
    points = np.array([[1.01, 2.01, 0.1, 1.0], [1.02, 2.02, 0.2, 3.0]], np.float32)
    features, coors, num, _ = kernels.voxelize_dynamic(points, PILLAR, PC_RANGE)
    np.testing.assert_array_equal(num, [2])
    np.testing.assert_array_equal(coors, [[0, 0, 420, 10]])
    np.testing.assert_array_equal(features[0], (points[0] + points[1]) / np.float32(2))


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"points": np.zeros((4, 4), np.float64)}, "points"),
        ({"points": np.zeros((4, 2), np.float32)}, "points"),
        ({"points": np.zeros((4, 8), np.float32)[:, ::2]}, "points"),
        ({"voxel_size": [0.1, 0.1]}, "voxel_size"),
        ({"voxel_size": [0.1, 0.0, 0.1]}, "voxel_size"),
        ({"pc_range": [0, 0, 0, -1, 1, 1]}, "pc_range"),
        ({"max_points": 0}, "max_points"),
        ({"max_voxels": -1}, "max_voxels"),
    ],
)
def test_hard_rejects_bad_arguments_by_name(kernels, kwargs, name):
    args = {
        "points": np.zeros((4, 4), np.float32),
        "voxel_size": PILLAR,
        "pc_range": PC_RANGE,
        "max_points": 4,
        "max_voxels": 4,
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=f"^{name}:"):
        kernels.voxelize_hard(**args)
