"""PointPillarsScatter against a numpy reference, including duplicate and border cells."""
from __future__ import annotations

import numpy as np
import pytest


def reference_scatter(features, coors, nx, ny):
    """Pillars written one after another onto a zero canvas (C, nx, ny), rows along x."""
    canvas = np.zeros((features.shape[1], nx, ny), np.float32)
    for f, (_, x, y, _) in zip(features, coors):
        canvas[:, x, y] = f
    return canvas


def test_scatter_matches_reference_on_random_unique_pillars(kernels):
    rng = np.random.default_rng(0)
    nx, ny, c = 432, 496, 64
    cells = rng.choice(nx * ny, size=9000, replace=False)
    coors = np.zeros((9000, 4), np.int32)
    coors[:, 1], coors[:, 2] = cells % nx, cells // nx
    features = rng.standard_normal((9000, c), dtype=np.float32)
    canvas = kernels.pillar_scatter(features, coors, nx, ny)
    np.testing.assert_array_equal(canvas, reference_scatter(features, coors, nx, ny))


def test_scatter_of_no_pillars_is_a_zero_canvas(kernels):
    canvas = kernels.pillar_scatter(np.zeros((0, 8), np.float32), np.zeros((0, 4), np.int32), 5, 3)
    assert canvas.shape == (8, 5, 3) and not canvas.any()


def test_scatter_corner_cells_and_duplicates_take_the_later_pillar(kernels):
    features = np.arange(5 * 3, dtype=np.float32).reshape(5, 3)
    coors = np.array([[0, 0, 0, 0], [0, 6, 3, 0], [0, 0, 0, 0], [0, 6, 0, 0], [0, 0, 3, 0]], np.int32)
    canvas = kernels.pillar_scatter(features, coors, 7, 4)
    np.testing.assert_array_equal(canvas, reference_scatter(features, coors, 7, 4))
    np.testing.assert_array_equal(canvas[:, 0, 0], features[2])


def test_scatter_takes_the_hard_voxelizer_output(kernels):
    rng = np.random.default_rng(1)
    points = np.concatenate(
        [rng.uniform([0, -40, -5], [80, 40, 3], (3000, 3)), rng.random((3000, 1))], axis=1
    ).astype(np.float32)
    voxels, coors, num, _ = kernels.voxelize_hard(points, [0.4, 0.4, 8.0], [0, -40, -5, 80, 40, 3], 8, 12000)
    pillar_features = (voxels.sum(axis=1) / num[:, None]).astype(np.float32)
    canvas = kernels.pillar_scatter(pillar_features, coors, 200, 200)
    np.testing.assert_array_equal(canvas, reference_scatter(pillar_features, coors, 200, 200))


@pytest.mark.parametrize(
    ("coors", "name"),
    [
        (np.array([[0, 7, 0, 0]], np.int32), "coors"),
        (np.array([[0, 0, -1, 0]], np.int32), "coors"),
        (np.array([[1, 0, 0, 0]], np.int32), "coors"),
        (np.array([[0, 0, 0, 0]], np.int64), "coors"),
        (np.array([[0, 0, 0]], np.int32), "coors"),
    ],
)
def test_scatter_rejects_bad_coors_by_name(kernels, coors, name):
    with pytest.raises(ValueError, match=f"^{name}:"):
        kernels.pillar_scatter(np.zeros((1, 2), np.float32), coors, 7, 4)


def test_scatter_writes_into_a_given_canvas_and_overwrites_it_fully(kernels):
    rng = np.random.default_rng(2)
    features = rng.standard_normal((3, 4), dtype=np.float32)
    coors = np.array([[0, 1, 2, 0], [0, 4, 0, 0], [0, 0, 0, 0]], np.int32)
    canvas = np.full((4, 5, 3), np.nan, np.float32)  # stale contents of a reused buffer
    result = kernels.pillar_scatter(features, coors, 5, 3, out=canvas)
    assert result is not None and np.shares_memory(result, canvas)
    np.testing.assert_array_equal(canvas, reference_scatter(features, coors, 5, 3))
    with pytest.raises(ValueError, match="^out:"):
        kernels.pillar_scatter(features, coors, 5, 3, out=np.zeros((4, 3, 5), np.float32))
    readonly = np.zeros((4, 5, 3), np.float32)
    readonly.flags.writeable = False
    with pytest.raises(ValueError, match="^out:"):
        kernels.pillar_scatter(features, coors, 5, 3, out=readonly)
