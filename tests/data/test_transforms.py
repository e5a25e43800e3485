"""Frame transforms: image resize / crop matrix, global augmentation of points and boxes, ground plane."""
import math

import numpy as np
import pytest
from PIL import Image

from v2xfusion_perception import boxes as box_ops
from v2xfusion_tools.data import transforms


def test_kitti_image_is_scaled_to_cover_the_input_and_cropped_at_the_top():
    crop = transforms.image_crop((1242, 375), (1280, 384))
    assert crop.scale == pytest.approx(1280 / 1242)
    assert crop.resized == (1280, 386)
    assert (crop.left, crop.top) == (0, 2)   # the sky row goes, the road stays


def test_crop_matrix_sends_a_native_pixel_to_where_it_lands_in_the_picture():
    native = np.zeros((375, 1242, 3), dtype=np.uint8)
    native[200:210, 700:710] = 255                   # a bright 10 x 10 square centred on (704.5, 204.5)
    rng = np.random.default_rng(3)
    for jitter_rng in (None, rng, rng):
        crop = transforms.image_crop((1242, 375), (320, 96), jitter=0.2, rng=jitter_rng)
        picture = transforms.apply_image_crop(Image.fromarray(native), crop, (320, 96)).astype(np.float64)
        assert picture.shape == (96, 320, 3)
        weight = picture[..., 0]
        rows, cols = np.indices(weight.shape)
        # centroid of the square in the picture, in pixel-centre coordinates
        centroid = np.array([(cols * weight).sum(), (rows * weight).sum()]) / weight.sum()
        # PIL maps pixel centres: resized (x + 0.5) = native (x + 0.5) * scale
        expected = (np.array([704.5, 204.5]) + 0.5) * crop.scale - 0.5
        mapped = crop.matrix @ np.array([704.5 + 0.5, 204.5 + 0.5, 1.0, 1.0])
        assert np.allclose(mapped[:2] - 0.5, expected - [crop.left, crop.top])
        assert np.allclose(centroid, expected - [crop.left, crop.top], atol=0.3)


def _points_in(boxes, per_box, rng):
    """per_box points inside each box (sampled in the box frame)."""
    points = []
    for box in boxes:
        local = (rng.random((per_box, 3)) - 0.5) * box[3:6] * 0.9
        cos, sin = math.cos(box[6]), math.sin(box[6])
        world = local @ np.array([[cos, sin, 0], [-sin, cos, 0], [0, 0, 1]]) + box[:3]
        points.append(np.hstack([world, rng.random((per_box, 1))]))
    return np.vstack(points).astype(np.float32)


@pytest.mark.parametrize("flip_y,flip_x", [(False, False), (True, False), (False, True), (True, True)])
def test_augmentation_keeps_every_point_in_its_box(flip_y, flip_x):
    rng = np.random.default_rng(7)
    boxes = np.array([[20.0, 5.0, -0.9, 4.2, 1.8, 1.5, 0.4], [35.0, -8.0, -0.8, 0.8, 0.6, 1.7, -2.5],
                      [12.0, 2.0, -1.0, 1.8, 0.6, 1.6, 3.0]])
    points = _points_in(boxes, 50, rng)
    matrix = transforms.lidar_aug_matrix(0.6, 1.07, flip_y, flip_x, (0.3, -0.2, 0.1))
    moved_points = transforms.transform_points(points, matrix)
    moved_boxes = transforms.transform_boxes(boxes, matrix)
    inside = box_ops.points_in_boxes(moved_points, moved_boxes)
    owner = np.repeat(np.arange(3), 50)
    assert inside[np.arange(len(points)), owner].all()
    assert inside.sum() == len(points)
    assert np.allclose(moved_points[:, 3], points[:, 3])                      # intensity untouched
    assert np.allclose(moved_boxes[:, 3:6], boxes[:, 3:6] * 1.07)
    assert np.all((moved_boxes[:, 6] >= -np.pi) & (moved_boxes[:, 6] < np.pi))


def test_mirroring_y_mirrors_position_and_heading():
    box = np.array([[10.0, 5.0, -1.0, 4.0, 1.8, 1.5, 0.3]])
    mirrored = transforms.transform_boxes(box, transforms.lidar_aug_matrix(0.0, 1.0, True, False, (0, 0, 0)))
    assert np.allclose(mirrored, [[10.0, -5.0, -1.0, 4.0, 1.8, 1.5, -0.3]])
    turned = transforms.transform_boxes(box, transforms.lidar_aug_matrix(math.pi / 2, 1.0, False, False, (0, 0, 0)))
    assert np.allclose(turned, [[-5.0, 10.0, -1.0, 4.0, 1.8, 1.5, 0.3 + math.pi / 2]])


def test_random_augmentation_stays_in_its_ranges():
    rng = np.random.default_rng(0)
    for _ in range(50):
        matrix = transforms.random_lidar_aug(rng, (-0.2, 0.2), (0.9, 1.1), (0.0, 0.0, 0.0), 0.0, 0.0)
        scale = np.linalg.norm(matrix[:3, 0])
        assert 0.9 <= scale <= 1.1
        assert abs(math.atan2(matrix[1, 0], matrix[0, 0])) <= 0.2 + 1e-9
        assert np.allclose(matrix[:3, 3], 0.0)


def _camera(height, pitch_deg):
    """lidar2cam of a camera `height` m above the LiDAR origin, looking along +x, pitched down."""
    base = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])
    p = math.radians(pitch_deg)
    pitch = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    matrix = np.eye(4)
    matrix[:3, :3] = pitch @ base
    matrix[:3, 3] = -matrix[:3, :3] @ np.array([0.0, 0.0, height])
    return matrix


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_ground_plane_heights_are_negative_above_the_ground(sign):
    lidar_height = 4.2                       # the ground is z = -4.2 in the LiDAR frame
    lidar2cam = _camera(0.4, 12.0)
    ground = np.array([[3.0, 1.0, -lidar_height], [20.0, -7.0, -lidar_height], [45.0, 9.0, -lidar_height]])
    in_camera = ground @ lidar2cam[:3, :3].T + lidar2cam[:3, 3]
    normal = np.cross(in_camera[1] - in_camera[0], in_camera[2] - in_camera[0])
    denorm = sign * np.append(normal, -normal @ in_camera[0])          # the ground plane, camera frame
    plane = transforms.ground_plane_from_denorm(denorm, lidar2cam)
    assert np.allclose(plane, [0.0, 0.0, -1.0, -lidar_height], atol=1e-9)
    probes = np.array([[30.0, 2.0, -lidar_height], [30.0, 2.0, -lidar_height + 1.5], [8.0, -3.0, -lidar_height + 2.0]])
    heights = probes @ plane[:3] + plane[3]
    assert np.allclose(heights, [0.0, -1.5, -2.0])


def test_folded_heading_is_the_same_box_with_yaw_in_half_a_turn():
    boxes = np.array([[10.0, 2.0, -1.0, 4.0, 1.8, 1.5, yaw] for yaw in (-3.1, -1.6, -0.2, 1.5, 1.58, 3.0)])
    folded = transforms.fold_heading(boxes)
    assert np.all((folded[:, 6] >= -np.pi / 2) & (folded[:, 6] < np.pi / 2))
    assert np.allclose(folded[:, :6], boxes[:, :6])
    for a, b in zip(box_ops.box_corners(boxes), box_ops.box_corners(folded)):
        # turning by pi swaps the corners in pairs: the same set of points
        assert np.allclose(np.sort(a, axis=0), np.sort(b, axis=0))
