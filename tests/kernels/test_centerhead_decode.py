"""CenterHead decoding (peaks, top-k, boxes, thresholds) against a numpy reference."""
from __future__ import annotations

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from v2xfusion_perception.config import load_config, preset_config_path

CFG = load_config(preset_config_path("kitti"))
GEO, POST = CFG["geometry"], CFG["postprocess"]
NX, NY = GEO["bev_size"]
SETTINGS = {
    "pc_range": GEO["pc_range"],
    "voxel_size": GEO["voxel_size"],
    "out_size_factor": GEO["out_size_factor"],
    "post_center_range": GEO["post_center_range"],
    "score_threshold": POST["score_threshold"],
}


def head_maps(rng, classes=3, nx=NX, ny=NY, vel=False):
    """Random head outputs of one task: smooth-ish heatmap logits with a few sharp peaks."""
    heat = rng.normal(-3.0, 1.0, (classes, nx, ny)).astype(np.float32)
    for _ in range(60):
        c, x, y = rng.integers(classes), rng.integers(nx), rng.integers(ny)
        heat[c, x, y] = rng.uniform(0.0, 6.0)
    maps = {
        "heatmap": heat,
        "reg": rng.random((2, nx, ny), dtype=np.float32),
        "height": rng.uniform(-2, 1, (1, nx, ny)).astype(np.float32),
        "dim": rng.uniform(-1, 1.5, (3, nx, ny)).astype(np.float32),
        "rot": rng.uniform(-1, 1, (2, nx, ny)).astype(np.float32),
        "vel": rng.normal(0, 2, (2, nx, ny)).astype(np.float32) if vel else None,
    }
    return maps


def reference_decode(maps, scores, pc_range, voxel_size, out_size_factor, post_center_range,
                     score_threshold, max_num, pool_size):
    """Peaks by max-pool equality, top max_num (score desc, index asc), decode, centre filter."""
    k, nx, ny = scores.shape
    r = pool_size // 2
    padded = np.pad(scores, ((0, 0), (r, r), (r, r)), constant_values=-np.inf)
    pooled = sliding_window_view(padded, (pool_size, pool_size), axis=(1, 2)).max(axis=(-1, -2))
    flat = scores.reshape(-1)
    candidates = np.flatnonzero(((scores == pooled) & (scores > np.float32(score_threshold))).reshape(-1))
    order = candidates[np.lexsort((candidates, -flat[candidates]))][:max_num]
    label, cell = np.divmod(order, nx * ny)
    ix, iy = np.divmod(cell, ny)
    cell_x = np.float32(voxel_size[0] * out_size_factor)
    cell_y = np.float32(voxel_size[1] * out_size_factor)
    reg = maps["reg"].reshape(2, -1)[:, cell]
    x = (ix.astype(np.float32) + reg[0]) * cell_x + np.float32(pc_range[0])
    y = (iy.astype(np.float32) + reg[1]) * cell_y + np.float32(pc_range[1])
    z = maps["height"].reshape(-1)[cell]
    dims = np.exp(maps["dim"].reshape(3, -1)[:, cell].T)
    rot = maps["rot"].reshape(2, -1)[:, cell]
    yaw = np.arctan2(rot[0], rot[1])
    yaw = np.where(yaw >= np.float32(np.pi), yaw - np.float32(2 * np.pi), yaw)
    parts = [x[:, None], y[:, None], z[:, None], dims, yaw[:, None]]
    if maps["vel"] is not None:
        parts.append(maps["vel"].reshape(2, -1)[:, cell].T)
    boxes = np.concatenate(parts, axis=1).astype(np.float32)
    lo, hi = np.float32(post_center_range[:3]), np.float32(post_center_range[3:])
    keep = ((boxes[:, :3] >= lo) & (boxes[:, :3] <= hi)).all(axis=1)
    return boxes[keep], flat[order][keep], label[keep].astype(np.int32)


def assert_decode_matches(kernels, maps, scores, **settings):
    """Kernel on the scores (no sigmoid) against the reference; returns the kernel's output."""
    boxes, got_scores, labels = kernels.centerhead_decode(**dict(maps, heatmap=scores), apply_sigmoid=False,
                                                     **settings)
    ref_boxes, ref_scores, ref_labels = reference_decode(maps, scores, **settings)
    np.testing.assert_array_equal(labels, ref_labels)
    np.testing.assert_array_equal(got_scores, ref_scores)
    np.testing.assert_array_equal(boxes[:, :3], ref_boxes[:, :3])  # exact: + and * in float32
    np.testing.assert_allclose(boxes[:, 3:], ref_boxes[:, 3:], rtol=2e-6, atol=1e-6)  # exp, atan2
    return boxes, got_scores, labels


@pytest.mark.parametrize("pool_size", [1, 3])
@pytest.mark.parametrize("vel", [False, True])
def test_decode_matches_reference_on_scores(kernels, pool_size, vel):
    rng = np.random.default_rng(pool_size + 10 * vel)
    maps = head_maps(rng, vel=vel)
    scores = (1 / (1 + np.exp(-maps["heatmap"]))).astype(np.float32)
    boxes, got_scores, _ = assert_decode_matches(kernels, maps, scores, **SETTINGS, max_num=500, pool_size=pool_size)
    assert boxes.shape[1] == (9 if vel else 7) and len(boxes) > 10
    assert np.all(np.diff(got_scores) <= 0)
    assert np.all((boxes[:, 6] >= -np.pi) & (boxes[:, 6] < np.pi))


def test_decode_applies_the_sigmoid_itself(kernels):
    rng = np.random.default_rng(3)
    maps = head_maps(rng)
    boxes, scores, labels = kernels.centerhead_decode(**maps, **SETTINGS, apply_sigmoid=True)
    ref_scores = (1 / (1 + np.exp(-maps["heatmap"].astype(np.float64)))).astype(np.float32)
    ref_boxes, ref, ref_labels = reference_decode(maps, ref_scores, **SETTINGS, max_num=500, pool_size=3)
    np.testing.assert_array_equal(labels, ref_labels)
    np.testing.assert_allclose(scores, ref, rtol=1e-6)
    np.testing.assert_allclose(boxes, ref_boxes, rtol=2e-6, atol=1e-6)


def test_decode_keeps_top_max_num_with_ties_by_index(kernels):
    """A plateau of equal scores: every cell is a pool peak; the lowest (class, x, y) indices win."""
    rng = np.random.default_rng(4)
    maps = head_maps(rng, classes=2, nx=6, ny=5)
    scores = np.full((2, 6, 5), 0.5, np.float32)
    scores[1, 4, 2] = 0.9
    settings = dict(SETTINGS, post_center_range=[-1e3, -1e3, -1e3, 1e3, 1e3, 1e3])
    _, _, labels = assert_decode_matches(kernels, maps, scores, **settings, max_num=7, pool_size=1)
    np.testing.assert_array_equal(labels, [1, 0, 0, 0, 0, 0, 0])
    # with 3 x 3 peaks, the 8 plateau cells around the 0.9 lose (pooling is per class)
    _, got, _ = assert_decode_matches(kernels, maps, scores, **settings, max_num=60, pool_size=3)
    assert len(got) == 30 + (1 + 29 - 8)


def test_decode_score_threshold_is_strict_and_centre_range_inclusive(kernels):
    maps = head_maps(np.random.default_rng(5), classes=1, nx=4, ny=4)
    scores = np.zeros((1, 4, 4), np.float32)
    scores[0, 1, 1] = np.float32(SETTINGS["score_threshold"])  # not above: dropped
    scores[0, 2, 2] = 0.8
    maps["reg"][:] = 0.0
    x_at_cell_2 = 2 * np.float32(GEO["voxel_size"][0] * GEO["out_size_factor"]) + np.float32(GEO["pc_range"][0])
    settings = dict(SETTINGS, post_center_range=[x_at_cell_2, -1e3, -1e3, 1e3, 1e3, 1e3])
    boxes, got, _ = kernels.centerhead_decode(**dict(maps, heatmap=scores), **settings, apply_sigmoid=False,
                                         pool_size=1)
    np.testing.assert_array_equal(got, [np.float32(0.8)])
    assert boxes[0, 0] == x_at_cell_2


def test_decode_of_an_empty_heatmap_and_label_offset(kernels):
    maps = head_maps(np.random.default_rng(6), classes=1, nx=4, ny=4)
    boxes, scores, labels = kernels.centerhead_decode(**dict(maps, heatmap=np.zeros((1, 4, 4), np.float32)),
                                                 **SETTINGS, apply_sigmoid=False)
    assert boxes.shape == (0, 7) and scores.shape == (0,) and labels.shape == (0,)
    heat = np.full((1, 4, 4), 5.0, np.float32)
    maps["reg"][:] = 0.5
    _, _, labels = kernels.centerhead_decode(**dict(maps, heatmap=heat), **SETTINGS, label_offset=2, pool_size=1)
    assert set(labels.tolist()) == {2}


@pytest.mark.parametrize(
    ("change", "name"),
    [
        ({"reg": np.zeros((2, 3, 3), np.float32)}, "reg"),
        ({"rot": np.zeros((1, 4, 4), np.float32)}, "rot"),
        ({"heatmap": np.zeros((1, 4, 4), np.float64)}, "heatmap"),
        ({"pool_size": 2}, "pool_size"),
        ({"voxel_size": [0.1, 0.1]}, "voxel_size"),
        ({"max_num": 0}, "max_num"),
    ],
)
def test_decode_rejects_bad_arguments_by_name(kernels, change, name):
    maps = head_maps(np.random.default_rng(7), classes=1, nx=4, ny=4)
    kwargs = dict(maps, **SETTINGS)
    kwargs.update(change)
    with pytest.raises(ValueError, match=f"^{name}:"):
        kernels.centerhead_decode(**kwargs)
