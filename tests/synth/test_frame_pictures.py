"""Frame pictures and data set statistics: drawn where independent projections say, counted right."""
import numpy as np
import pytest

from v2xfusion_perception.errors import V2XError
from v2xfusion_tools.vis import CLASS_COLOURS, dataset_statistics, draw_bev, draw_camera, render_frame

NAMES = ["Car", "Pedestrian", "Cyclist"]
K = np.array([[500.0, 0.0, 320.0], [0.0, 500.0, 240.0], [0.0, 0.0, 1.0]])
AXES = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])   # LiDAR -> camera rows


def _lidar2img() -> np.ndarray:
    lidar2img = np.eye(4)
    lidar2img[:3, :3] = K @ AXES
    return lidar2img


def _has_colour_near(picture, u: float, v: float, colour, radius: int = 2) -> bool:
    pixels = np.asarray(picture)
    col, row = int(round(u)), int(round(v))
    patch = pixels[max(row - radius, 0):row + radius + 1, max(col - radius, 0):col + radius + 1]
    return bool(np.any(np.all(patch == colour, axis=-1)))


def test_camera_picture_draws_box_edges_at_the_projected_corners():
    box = np.array([[15.0, 1.0, -0.5, 4.0, 1.8, 1.5, 0.4]])
    picture = draw_camera(np.zeros((480, 640, 3), np.uint8), box, np.array([0]), _lidar2img(), NAMES)
    c, s = np.cos(0.4), np.sin(0.4)
    for sx, sy, sz in [(1, 1, -1), (-1, -1, 1), (1, -1, 1), (-1, 1, -1)]:
        local = np.array([sx * 2.0, sy * 0.9, sz * 0.75])
        corner = box[0, :3] + [c * local[0] - s * local[1], s * local[0] + c * local[1], local[2]]
        cam = AXES @ corner
        u, v = K[0, 0] * cam[0] / cam[2] + K[0, 2], K[1, 1] * cam[1] / cam[2] + K[1, 2]
        assert _has_colour_near(picture, u, v, CLASS_COLOURS[0])
    assert not _has_colour_near(picture, 40, 440, CLASS_COLOURS[0], radius=30)


def test_camera_picture_skips_boxes_behind_and_cuts_boxes_reaching_behind():
    behind = np.array([[-10.0, 0.0, 0.0, 4.0, 1.8, 1.5, 0.0]])
    picture = draw_camera(np.zeros((480, 640, 3), np.uint8), behind, np.array([1]), _lidar2img(), NAMES)
    assert not np.asarray(picture).any()
    straddling = np.array([[0.5, 3.0, 0.0, 6.0, 1.8, 1.5, 0.0]])   # from 2.5 m behind to 3.5 m ahead
    picture = np.asarray(draw_camera(np.zeros((480, 640, 3), np.uint8), straddling, np.array([2]),
                                     _lidar2img(), NAMES))
    drawn = np.all(picture == CLASS_COLOURS[2], axis=-1)
    assert drawn.any()
    # the front face (x = 3.5, y from 2.1 to 3.9) projects to the left half of the picture
    cam = AXES @ np.array([3.5, 2.1, 0.75])
    assert _has_colour_near(picture, K[0, 0] * cam[0] / cam[2] + K[0, 2], K[1, 1] * cam[1] / cam[2] + K[1, 2],
                            CLASS_COLOURS[2])


def _bev_pixel(x: float, y: float, pc_range, scale: float = 10.0, margin: float = 4.0) -> tuple[float, float]:
    """Column, row of LiDAR (x, y): x up the picture, y to the left, pc_range plus a margin around."""
    return (pc_range[4] + margin - y) * scale, (pc_range[3] + margin - x) * scale


def test_bev_picture_puts_points_and_boxes_where_they_are():
    pc_range = [0.0, -40.0, -5.0, 80.0, 40.0, 3.0]
    points = np.array([[30.0, 10.0, -1.7, 0.2], [60.0, -25.0, 0.5, 0.9]])
    box = np.array([[20.0, -5.0, -0.9, 4.0, 2.0, 1.6, 0.0]])
    picture = draw_bev(points, box, np.array([1]), pc_range, NAMES)
    pixels = np.asarray(picture)
    assert picture.size == (880, 880)
    for x, y, _, _ in points:
        col, row = _bev_pixel(x, y, pc_range)
        assert tuple(pixels[int(row), int(col)]) != (16, 18, 24)
    colour = CLASS_COLOURS[1]
    assert _has_colour_near(picture, *_bev_pixel(22.0, -6.0, pc_range), colour)      # front-right corner
    assert _has_colour_near(picture, *_bev_pixel(18.0, -4.0, pc_range), colour)      # rear-left corner
    assert _has_colour_near(picture, *_bev_pixel(21.5, -5.0, pc_range), colour, 0)   # heading tick, ahead
    assert not _has_colour_near(picture, *_bev_pixel(18.6, -5.0, pc_range), colour, 0)  # none behind centre
    # the pc_range outline
    assert _has_colour_near(picture, *_bev_pixel(80.0, 0.0, pc_range), (235, 235, 235))
    assert _has_colour_near(picture, *_bev_pixel(40.0, -40.0, pc_range), (235, 235, 235))


def test_bev_intensity_colours_do_not_depend_on_the_intensity_scale():
    rng = np.random.default_rng(2)
    points = np.column_stack([rng.uniform(0, 70, 3000), rng.uniform(-30, 30, 3000), rng.uniform(-2, 0, 3000),
                              rng.uniform(0, 1, 3000)])
    scaled = points.copy()
    scaled[:, 3] *= 255.0
    empty = np.zeros((0, 7))
    pc_range = [0, -40, -5, 80, 40, 3]
    first = np.asarray(draw_bev(points, empty, np.zeros(0, int), pc_range, NAMES, colour_by="intensity"))
    second = np.asarray(draw_bev(scaled, empty, np.zeros(0, int), pc_range, NAMES, colour_by="intensity"))
    assert np.array_equal(first, second)
    with pytest.raises(V2XError, match="colour_by"):
        draw_bev(points, empty, np.zeros(0, int), pc_range, NAMES, colour_by="range")


def test_dataset_statistics_counts_objects_and_points_in_boxes():
    box_a = [10.0, 0.0, 0.0, 4.0, 2.0, 2.0, 0.0]
    box_b = [20.0, 5.0, 0.0, 1.0, 1.0, 2.0, 0.0]
    frame_one = (np.array([[10.5, 0.2, 0.1], [11.9, -0.9, 0.9], [30.0, 0.0, 0.0], [20.2, 5.1, 0.0]]),
                 np.array([box_a, box_b]), np.array([0, 1]))
    frame_two = (np.array([[0.0, 0.0, 0.0]]), np.array([box_a]), np.array([0]))
    stats = dataset_statistics([frame_one, frame_two], NAMES)
    assert stats.frames == 2 and stats.class_counts == {"Car": 2, "Pedestrian": 1, "Cyclist": 0}
    assert stats.points_per_frame == {"min": 1.0, "mean": 2.5, "max": 4.0}
    assert stats.points_in_box["Car"]["max"] == 2 and stats.points_in_box["Car"]["empty"] == 1
    assert stats.points_in_box["Pedestrian"]["mean"] == 1
    text = stats.format()
    assert "Car" in text and "Cyclist" in text and "points per frame" in text


def test_render_frame_saves_both_pictures(tmp_path):
    image = np.full((375, 1242, 3), 90, np.uint8)
    points = np.array([[10.0, 1.0, -1.0, 0.5]])
    boxes = np.array([[12.0, 1.0, -0.8, 3.9, 1.6, 1.56, 0.3]])
    lidar2img = np.eye(4)
    lidar2img[:3, :3] = np.array([[721.5, 0, 621], [0, 721.5, 187.5], [0, 0, 1]]) @ AXES
    pictures = render_frame(image, points, boxes, np.array([0]), lidar2img, [0, -40, -5, 80, 40, 3], NAMES,
                            scores=np.array([0.87]))
    camera_path, bev_path = pictures.save(tmp_path / "pictures", "000000")
    assert camera_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and bev_path.stat().st_size > 1000
    assert pictures.camera.size == (1242, 375)
