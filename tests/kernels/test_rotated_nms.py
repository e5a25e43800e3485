"""Rotated BEV IoU and per-class rotated / circle NMS against float64 numpy references."""
from __future__ import annotations

import functools
import math

import numpy as np
import pytest


def corners(box):
    """(4, 2) footprint corners, counter-clockwise, float64."""
    x, y, _, dx, dy, _, yaw = (float(v) for v in box[:7])
    c, s = math.cos(yaw), math.sin(yaw)
    local = np.array([[dx, dy], [-dx, dy], [-dx, -dy], [dx, -dy]]) / 2
    return local @ np.array([[c, s], [-s, c]]) + [x, y]


def inside(p, quad):
    edges = np.roll(quad, -1, axis=0) - quad
    rel = p - quad
    return np.all(edges[:, 0] * rel[:, 1] - edges[:, 1] * rel[:, 0] >= -1e-12)


def reference_iou(a, b):
    """Intersection polygon = corners of each inside the other + edge crossings, ordered by angle."""
    qa, qb = corners(a), corners(b)
    pts = [p for p in qa if inside(p, qb)] + [p for p in qb if inside(p, qa)]
    for i in range(4):
        p, r = qa[i], qa[(i + 1) % 4] - qa[i]
        for j in range(4):
            q, s = qb[j], qb[(j + 1) % 4] - qb[j]
            den = r[0] * s[1] - r[1] * s[0]
            if abs(den) < 1e-15:
                continue
            t = ((q - p)[0] * s[1] - (q - p)[1] * s[0]) / den
            u = ((q - p)[0] * r[1] - (q - p)[1] * r[0]) / den
            if 0 <= t <= 1 and 0 <= u <= 1:
                pts.append(p + t * r)
    if len(pts) < 3:
        return 0.0
    pts = np.array(pts)
    centre = pts.mean(axis=0)
    pts = pts[np.argsort(np.arctan2(pts[:, 1] - centre[1], pts[:, 0] - centre[0]))]
    inter = 0.5 * abs(np.sum(pts[:, 0] * np.roll(pts[:, 1], -1) - np.roll(pts[:, 0], -1) * pts[:, 1]))
    union = a[3] * a[4] + b[3] * b[4] - inter
    return inter / union


def reference_nms(boxes, scores, labels, suppress, pre_max_size, post_max_size):
    """Greedy per-class NMS; suppress(i, j) says kept box i removes box j."""
    kept = []
    for label in np.unique(labels):
        idx = np.flatnonzero(labels == label)
        idx = idx[np.lexsort((idx, -scores[idx]))][:pre_max_size]
        removed = np.zeros(len(idx), bool)
        count = 0
        for a in range(len(idx)):
            if removed[a] or count == post_max_size:
                continue
            kept.append(idx[a])
            count += 1
            for b in range(a + 1, len(idx)):
                removed[b] |= suppress(idx[a], idx[b])
    kept = np.array(kept, np.int64)
    return kept[np.lexsort((kept, -scores[kept]))].astype(np.int32)


def box(x, y, dx, dy, yaw, z=0.0, dz=1.5):
    return [x, y, z, dx, dy, dz, yaw]


def random_boxes(rng, n, extent=30.0):
    centres = rng.uniform(-extent, extent, (n, 2))
    size = rng.uniform(0.5, 5.0, (n, 3))
    yaw = rng.uniform(-np.pi, np.pi, n)
    return np.column_stack([centres, rng.uniform(-1, 1, n), size, yaw]).astype(np.float32)


def test_bev_iou_of_touching_contained_and_rotated_boxes(kernels):
    a = np.array([box(0, 0, 4, 2, 0), box(0, 0, 4, 2, 0), box(0, 0, 4, 2, 0), box(0, 0, 2, 2, 0),
                  box(0, 0, 4, 2, 0), box(0, 0, 4, 2, 0.3)], np.float32)
    b = np.array([box(4, 0, 4, 2, 0),  # touching along an edge
                  box(0.5, 0, 1, 1, 0),  # contained
                  box(0, 0, 4, 2, np.pi / 2),  # same box turned by 90 degrees
                  box(0, 0, 2, 2, np.pi / 4),  # square vs itself at 45 degrees
                  box(0, 0, 4, 2, 0),  # identical
                  box(10, 10, 1, 1, 0.3)], np.float32)  # far apart
    iou = kernels.bev_iou(a, b)
    expected = [0.0, 1 / 8, 4 / 12, math.sqrt(2) / 2, 1.0, 0.0]
    np.testing.assert_allclose(iou, expected, atol=2e-6)
    np.testing.assert_allclose(iou, [reference_iou(p, q) for p, q in zip(a, b)], atol=2e-6)


def test_bev_iou_matches_reference_on_random_overlapping_pairs(kernels):
    rng = np.random.default_rng(0)
    a = random_boxes(rng, 400, extent=2.0)
    b = random_boxes(rng, 400, extent=2.0)
    iou = kernels.bev_iou(a, b)
    ref = np.array([reference_iou(p, q) for p, q in zip(a, b)])
    assert (ref > 0.05).sum() > 100
    np.testing.assert_allclose(iou, ref, atol=1e-5)


@functools.cache
def random_nms_case():
    """300 random boxes of 3 classes and their reference rotated NMS at IoU 0.2 (made once: the
    float64 reference takes seconds), with every IoU the reference compared."""
    rng = np.random.default_rng(1)
    boxes = random_boxes(rng, 300, extent=10.0)
    scores = rng.random(300, dtype=np.float32)
    labels = rng.integers(0, 3, 300).astype(np.int32)
    iou = {}

    def suppress(i, j):
        iou[i, j] = reference_iou(boxes[i], boxes[j])
        return iou[i, j] > 0.2

    return boxes, scores, labels, reference_nms(boxes, scores, labels, suppress, 1000, 83), list(iou.values())


def test_rotated_nms_matches_reference_on_random_boxes(kernels):
    boxes, scores, labels, ref, ious = random_nms_case()
    # no decision may hinge on float rounding: every compared IoU is clearly off the threshold
    assert min(abs(v - 0.2) for v in ious) > 1e-4
    keep = kernels.rotated_nms(boxes, scores, labels, 0.2, 1000, 83)
    np.testing.assert_array_equal(keep, ref)
    assert 30 < len(keep) < 300


def test_rotated_nms_adversarial_layouts(kernels):
    boxes = np.array([
        box(0, 0, 4, 2, 0),  # 0: best car
        box(4, 0, 4, 2, 0),  # 1: touches 0 -> kept
        box(0.2, 0, 1, 1, 0),  # 2: inside 0, IoU 1/8 -> kept at threshold 0.2
        box(0, 0, 4, 2, np.pi / 2),  # 3: 0 turned by 90 degrees, IoU 1/3 -> suppressed
        box(0, 0, 4, 2, 0),  # 4: a copy of 0 of another class -> kept
        box(4, 0, 4, 2, 0),  # 5: a copy of 1 with the same score, higher index -> suppressed
    ], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.8], np.float32)
    labels = np.array([0, 0, 0, 0, 1, 0], np.int32)
    keep = kernels.rotated_nms(boxes, scores, labels, 0.2, 100, 100)
    np.testing.assert_array_equal(keep, [0, 1, 2, 4])
    # a tighter threshold removes the contained box too
    np.testing.assert_array_equal(kernels.rotated_nms(boxes, scores, labels, 0.1, 100, 100), [0, 1, 4])


def test_nms_pre_and_post_max_sizes_are_per_class(kernels):
    boxes = np.array([box(10.0 * i, 0, 1, 1, 0) for i in range(6)], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4], np.float32)
    labels = np.array([0, 0, 0, 1, 1, 1], np.int32)
    np.testing.assert_array_equal(kernels.rotated_nms(boxes, scores, labels, 0.2, 100, 2), [0, 1, 3, 4])
    np.testing.assert_array_equal(kernels.rotated_nms(boxes, scores, labels, 0.2, 1, 100), [0, 3])


def test_nms_of_no_boxes(kernels):
    empty = np.zeros((0, 7), np.float32)
    assert kernels.rotated_nms(empty, np.zeros(0, np.float32), np.zeros(0, np.int32), 0.2, 10, 10).shape == (0,)
    assert kernels.circle_nms(empty, np.zeros(0, np.float32), np.zeros(0, np.int32), [1.0], 10, 10).shape == (0,)


def test_circle_nms_matches_reference_and_includes_the_radius(kernels):
    rng = np.random.default_rng(2)
    boxes = random_boxes(rng, 400, extent=15.0)
    scores = rng.random(400, dtype=np.float32)
    labels = rng.integers(0, 3, 400).astype(np.int32)
    radius = [4.0, 0.85, 0.85]

    def suppress(i, j):
        d2 = float(boxes[i, 0] - boxes[j, 0]) ** 2 + float(boxes[i, 1] - boxes[j, 1]) ** 2
        return d2 <= radius[labels[i]] ** 2

    keep = kernels.circle_nms(boxes, scores, labels, radius, 1000, 83)
    np.testing.assert_array_equal(keep, reference_nms(boxes, scores, labels, suppress, 1000, 83))
    on_radius = np.array([box(0, 0, 1, 1, 0), box(3, 4, 1, 1, 0), box(3, 4.01, 1, 1, 0)], np.float32)
    for second, expected in ((1, [0]), (2, [0, 1])):
        pair = on_radius[[0, second]]
        keep = kernels.circle_nms(pair, np.array([0.9, 0.5], np.float32), np.zeros(2, np.int32), [5.0], 10, 10)
        np.testing.assert_array_equal(keep, expected)


@pytest.mark.parametrize(
    ("change", "name"),
    [
        ({"boxes": np.zeros((2, 6), np.float32)}, "boxes"),
        ({"scores": np.array([0.5, np.nan], np.float32)}, "scores"),
        ({"labels": np.array([0, -1], np.int32)}, "labels"),
        ({"labels": np.array([0, 1], np.int64)}, "labels"),
        ({"iou_threshold": 1.5}, "iou_threshold"),
        ({"post_max_size": 0}, "post_max_size"),
    ],
)
def test_rotated_nms_rejects_bad_arguments_by_name(kernels, change, name):
    kwargs = {
        "boxes": np.zeros((2, 7), np.float32),
        "scores": np.array([0.5, 0.4], np.float32),
        "labels": np.array([0, 1], np.int32),
        "iou_threshold": 0.2,
        "pre_max_size": 10,
        "post_max_size": 10,
    }
    kwargs.update(change)
    with pytest.raises(ValueError, match=f"^{name}:"):
        kernels.rotated_nms(**kwargs)


def test_circle_nms_needs_a_radius_per_class(kernels):
    with pytest.raises(ValueError, match="^radius:"):
        kernels.circle_nms(np.zeros((2, 7), np.float32), np.ones(2, np.float32), np.array([0, 2], np.int32),
                      [1.0, 1.0], 10, 10)
