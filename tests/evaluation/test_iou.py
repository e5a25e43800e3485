"""Overlaps of v2xfusion_tools.evaluation.iou against hand-computed areas and an independent
polygon-intersection reference (corners inside + edge crossings, hull by angle, shoelace)."""
import math

import numpy as np
import pytest

from v2xfusion_perception import boxes as box_ops
from v2xfusion_tools.evaluation import iou

SQRT2 = math.sqrt(2.0)


def _rectangle(x, z, length, width, ry):
    """Corners of a KITTI ground-plane box: length along (cos ry, -sin ry), width along (sin ry, cos ry)."""
    heading = np.array([math.cos(ry), -math.sin(ry)])
    side = np.array([math.sin(ry), math.cos(ry)])
    centre = np.array([x, z])
    return [centre + a * heading * length / 2 + b * side * width / 2 for a, b in ((1, 1), (-1, 1), (-1, -1), (1, -1))]


def _inside(point, rect, eps=1e-9):
    """Point in a convex polygon given in any consistent winding."""
    signs = []
    for k in range(4):
        a, b = rect[k], rect[(k + 1) % 4]
        signs.append((b[0] - a[0]) * (point[1] - a[1]) - (b[1] - a[1]) * (point[0] - a[0]))
    return all(s >= -eps for s in signs) or all(s <= eps for s in signs)


def _segment_crossing(p, p2, q, q2):
    r, s = p2 - p, q2 - q
    denominator = r[0] * s[1] - r[1] * s[0]
    if abs(denominator) < 1e-15:
        return None
    t = ((q - p)[0] * s[1] - (q - p)[1] * s[0]) / denominator
    u = ((q - p)[0] * r[1] - (q - p)[1] * r[0]) / denominator
    return p + t * r if 0.0 <= t <= 1.0 and 0.0 <= u <= 1.0 else None


def _reference_intersection(a, b):
    """Area of the intersection of two rectangles (lists of corners), one pair at a time."""
    points = [p for p in a if _inside(p, b)] + [q for q in b if _inside(q, a)]
    for k in range(4):
        for m in range(4):
            hit = _segment_crossing(a[k], a[(k + 1) % 4], b[m], b[(m + 1) % 4])
            if hit is not None:
                points.append(hit)
    if len(points) < 3:
        return 0.0
    centre = np.mean(points, axis=0)
    points.sort(key=lambda p: math.atan2(p[1] - centre[1], p[0] - centre[0]))
    area = 0.0
    for k in range(len(points)):
        p, q = points[k], points[(k + 1) % len(points)]
        area += p[0] * q[1] - p[1] * q[0]
    return abs(area) / 2.0


def _reference_bev_iou(box_a, box_b):
    inter = _reference_intersection(_rectangle(*box_a), _rectangle(*box_b))
    return inter / (box_a[2] * box_a[3] + box_b[2] * box_b[3] - inter)


@pytest.mark.parametrize("box_b, expected", [
    ((0.0, 0.0, 2.0, 2.0, 0.0), 1.0),                                 # the same box
    ((5.0, 0.0, 2.0, 2.0, 0.0), 0.0),                                 # apart
    ((2.0, 0.0, 2.0, 2.0, 0.0), 0.0),                                 # touching along an edge
    ((1.0, 0.0, 2.0, 2.0, 0.0), 1.0 / 3.0),                           # shifted by half: 2 / (4 + 4 - 2)
    ((0.0, 1.0, 2.0, 2.0, 0.0), 1.0 / 3.0),                           # the same across
    ((0.0, 0.0, 2.0, 2.0, math.pi / 2), 1.0),                         # a square turned 90 deg is itself
    ((0.0, 0.0, 2.0, 2.0, math.pi / 4),                               # octagon of area 8 (sqrt2 - 1)
     8 * (SQRT2 - 1) / (8 - 8 * (SQRT2 - 1))),
    ((1.0, 1.0, 2.0, 2.0, 0.0), 1.0 / 7.0),                           # quarter overlap: 1 / (8 - 1)
])
def test_bev_iou_of_a_2m_square_matches_hand_computed_areas(box_b, expected):
    square = np.array([[0.0, 0.0, 2.0, 2.0, 0.0]])
    assert iou.bev_iou(square, np.array([box_b]))[0, 0] == pytest.approx(expected, abs=1e-12)
    assert iou.bev_iou(np.array([box_b]), square)[0, 0] == pytest.approx(expected, abs=1e-12)


def test_bev_iou_of_a_rectangle_and_itself_turned_90_degrees_is_one_third():
    # 4 x 2 and 2 x 4 share a 2 x 2 square: 4 / (8 + 8 - 4)
    a = np.array([[3.0, 7.0, 4.0, 2.0, 0.3]])
    b = np.array([[3.0, 7.0, 4.0, 2.0, 0.3 + math.pi / 2]])
    assert iou.bev_iou(a, b)[0, 0] == pytest.approx(1.0 / 3.0, abs=1e-12)


def test_bev_heading_follows_kitti_rotation_y():
    # rotation_y = +45 deg points the length along camera (x, z) = (cos, -sin): towards +x and -z
    stick = np.array([[0.0, 0.0, 4.0, 0.2, math.pi / 4]])
    on_it = np.array([[1.2, -1.2, 0.2, 0.2, 0.0]])
    mirrored = np.array([[1.2, 1.2, 0.2, 0.2, 0.0]])
    # the small square sits across the stick: a 0.2 x ~0.2 piece of it is shared
    assert iou.bev_intersection(stick, on_it)[0] > 0.02
    assert iou.bev_intersection(stick, mirrored)[0] == 0.0


def test_bev_iou_matches_the_reference_on_random_boxes():
    rng = np.random.default_rng(3)
    a = np.column_stack([rng.uniform(-3, 3, 40), rng.uniform(-3, 3, 40), rng.uniform(0.3, 5, 40),
                         rng.uniform(0.3, 3, 40), rng.uniform(-math.pi, math.pi, 40)])
    b = np.column_stack([rng.uniform(-3, 3, 30), rng.uniform(-3, 3, 30), rng.uniform(0.3, 5, 30),
                         rng.uniform(0.3, 3, 30), rng.uniform(-math.pi, math.pi, 30)])
    ours = iou.bev_iou(a, b)
    expected = np.array([[_reference_bev_iou(p, q) for q in b] for p in a])
    assert ours.shape == (40, 30)
    assert np.count_nonzero(expected > 0.05) > 100            # the sample exercises real overlaps
    np.testing.assert_allclose(ours, expected, atol=1e-10)


def test_bev_iou_stays_exact_far_from_the_origin():
    offset = np.array([1000.0, -2000.0, 0.0, 0.0, 0.0])
    a = np.array([[0.0, 0.0, 4.0, 2.0, 0.4]])
    b = np.array([[0.7, 0.3, 3.5, 1.8, -0.2]])
    assert iou.bev_iou(a + offset, b + offset)[0, 0] == pytest.approx(_reference_bev_iou(a[0], b[0]), abs=1e-9)


def test_bev_intersection_equals_the_lidar_footprint_overlap_of_the_same_boxes():
    # camera-rect boxes -> internal LiDAR boxes (project convention) -> footprints from box_corners
    lidar2cam = np.eye(4)
    lidar2cam[:3, :3] = [[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]]
    rng = np.random.default_rng(5)
    camera = np.column_stack([rng.uniform(-2, 2, 12), np.full(12, 1.6), rng.uniform(18, 22, 12),
                              np.full(12, 1.5), rng.uniform(1, 2, 12), rng.uniform(2, 5, 12), rng.uniform(-3, 3, 12)])
    lidar = box_ops.lidar_boxes_from_kitti(camera[:, 3:6], camera[:, 0:3], camera[:, 6], lidar2cam)
    footprints = box_ops.box_corners(lidar)[:, :4, :2]
    for i in range(len(camera)):
        for j in range(len(camera)):
            expected = _reference_intersection(list(footprints[i]), list(footprints[j]))
            ours = iou.bev_intersection(iou.camera_to_bev(camera[i]), iou.camera_to_bev(camera[j]))[0]
            assert ours == pytest.approx(expected, abs=1e-9)


def test_convex_overlap_area_of_nested_and_degenerate_quads():
    big = iou.bev_corners(np.array([[0.0, 0.0, 4.0, 4.0, 0.2]]))
    small = iou.bev_corners(np.array([[0.5, 0.0, 1.0, 1.0, 1.0]]))
    flat = iou.bev_corners(np.array([[0.0, 0.0, 3.0, 0.0, 0.0]]))
    assert iou.convex_overlap_area(small, big)[0] == pytest.approx(1.0, abs=1e-12)
    assert iou.convex_overlap_area(big, small)[0] == pytest.approx(1.0, abs=1e-12)
    assert iou.convex_overlap_area(flat, big)[0] == pytest.approx(0.0, abs=1e-12)
    assert iou.convex_overlap_area(np.zeros((0, 4, 2)), np.zeros((0, 4, 2))).shape == (0,)


@pytest.mark.parametrize("y_b, h_b, expected", [
    (1.6, 1.5, 1.0),                         # same box
    (1.6 + 0.75, 1.5, 0.75 / 2.25),          # half the height lower (y points down): 0.75 shared of 1.5
    (1.6 - 1.5, 1.5, 0.0),                   # stacked on top: touching only
    (1.6, 0.75, 0.5),                        # the lower half of it
])
def test_box3d_iou_adds_the_vertical_overlap_below_the_bottom_centre(y_b, h_b, expected):
    a = np.array([[2.0, 1.6, 20.0, 1.5, 1.6, 3.9, 0.3]])
    b = np.array([[2.0, y_b, 20.0, h_b, 1.6, 3.9, 0.3]])
    assert iou.box3d_iou(a, b)[0, 0] == pytest.approx(expected, abs=1e-12)


def test_box3d_iou_combines_ground_and_height_overlap():
    # 2 m cubes, half-shifted along the length (ground overlap 1 x 2) and half the height apart
    a = np.array([[0.0, 0.0, 0.0, 2.0, 2.0, 2.0, 0.0]])
    b = np.array([[1.0, 1.0, 0.0, 2.0, 2.0, 2.0, 0.0]])
    # shared: 1 x 2 x 1 = 2 m^3 of 8 + 8 - 2
    assert iou.box3d_iou(a, b)[0, 0] == pytest.approx(2.0 / 14.0, abs=1e-12)


def test_image_overlap_iou_and_share_of_the_first_box():
    boxes = np.array([[0.0, 0.0, 10.0, 10.0]])
    query = np.array([[5.0, 0.0, 15.0, 10.0], [20.0, 0.0, 30.0, 10.0], [0.0, 0.0, 100.0, 100.0]])
    np.testing.assert_allclose(iou.image_overlap(boxes, query), [[50 / 150, 0.0, 100 / 10000]])
    np.testing.assert_allclose(iou.image_overlap(boxes, query, "area_a"), [[0.5, 0.0, 1.0]])
    with pytest.raises(ValueError, match="criterion"):
        iou.image_overlap(boxes, query, "union")


def test_empty_box_sets_give_empty_matrices():
    assert iou.bev_iou(np.zeros((0, 5)), np.ones((3, 5))).shape == (0, 3)
    assert iou.box3d_iou(np.ones((2, 7)), np.zeros((0, 7))).shape == (2, 0)
    assert iou.image_overlap(np.zeros((0, 4)), np.zeros((0, 4))).shape == (0, 0)
