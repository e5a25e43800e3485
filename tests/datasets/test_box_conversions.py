"""Box conversions of v2xfusion_perception.boxes against independent numpy formulas, and round trips."""
import numpy as np
import pytest

from v2xfusion_perception import boxes as box_ops

YAWS = [-3.1, -2.0, -np.pi / 2, -0.5, 0.0, 0.7, np.pi / 2, 2.5, 3.1]


def _asymmetric_boxes() -> np.ndarray:
    """Boxes with l != w (so a swapped size order or a 90-degree error shows) at many yaws."""
    rows = []
    for i, yaw in enumerate(YAWS):
        rows.append([10.0 + i, -3.0 + 0.7 * i, -0.9 + 0.05 * i, 4.2, 1.7, 1.5, yaw])
    rows.append([30.0, 8.0, -1.0, 0.8, 0.6, 1.73, 1.0])      # pedestrian-like
    rows.append([25.0, -12.0, -0.8, 1.76, 0.6, 1.73, -2.2])  # cyclist-like
    return np.array(rows)


def _rotation(axis: str, angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return {"x": np.array([[1, 0, 0], [0, c, -s], [0, s, c]]),
            "y": np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]),
            "z": np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])}[axis]


# LiDAR (x fwd, y left, z up) -> camera (x right, y down, z fwd), as a rotation matrix with rows
# the camera axes seen from the LiDAR.
STANDARD_AXES = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])


def _lidar2cam(rotation: np.ndarray, translation) -> np.ndarray:
    matrix = np.eye(4)
    matrix[:3, :3] = rotation
    matrix[:3, 3] = translation
    return matrix


CALIBRATIONS = {
    "standard": _lidar2cam(STANDARD_AXES, [0.0, -0.08, -0.27]),
    # a real KITTI drive's Tr_velo_to_cam and R0_rect (2011_09_26), composed as R0_rect @ Tr
    "kitti_real": _lidar2cam(
        np.array([[9.999239e-01, 9.837760e-03, -7.445048e-03], [-9.869795e-03, 9.999421e-01, -4.278459e-03],
                  [7.402527e-03, 4.351614e-03, 9.999631e-01]]), [0, 0, 0])
    @ _lidar2cam(np.array([[7.533745e-03, -9.999714e-01, -6.166020e-04], [1.480249e-02, 7.280733e-04, -9.998902e-01],
                           [9.998621e-01, 7.523790e-03, 1.480755e-02]]), [-4.069766e-03, -7.631618e-02, -2.717806e-01]),
    "pitched_roadside": _lidar2cam(_rotation("x", -np.deg2rad(12.0)) @ STANDARD_AXES, [0.0, 0.39, 0.08]),
    "turned_and_tilted": _lidar2cam(_rotation("x", 0.2) @ _rotation("y", 0.6) @ STANDARD_AXES, [1.0, -2.0, 0.5]),
}


def _angle_difference(a, b):
    return np.abs((np.asarray(a) - np.asarray(b) + np.pi) % (2 * np.pi) - np.pi)


def test_wrap_yaw_lands_in_half_open_interval_and_keeps_the_angle():
    angles = np.array([np.pi, -np.pi, 3 * np.pi, -3 * np.pi, 0.0, -np.pi - 1e-17, np.pi - 1e-12, 7.0, -7.0])
    wrapped = box_ops.wrap_yaw(angles)
    assert np.all(wrapped >= -np.pi) and np.all(wrapped < np.pi)
    assert np.allclose(np.cos(wrapped), np.cos(angles)) and np.allclose(np.sin(wrapped), np.sin(angles))
    assert box_ops.wrap_yaw(np.pi) == -np.pi


def test_standard_calibration_gives_rotation_y_minus_yaw_minus_half_pi():
    boxes = _asymmetric_boxes()
    lidar2cam = CALIBRATIONS["standard"]
    dims, location, rotation_y = box_ops.kitti_from_lidar_boxes(boxes, lidar2cam)
    assert np.allclose(_angle_difference(rotation_y, -boxes[:, 6] - np.pi / 2), 0.0, atol=1e-12)
    assert np.allclose(dims, boxes[:, [5, 4, 3]])                     # KITTI (h, w, l)
    # bottom centre, written out for this calibration: x_cam = -y, y_cam = -z_bottom - 0.08, z_cam = x - 0.27
    bottom_z = boxes[:, 2] - boxes[:, 5] / 2
    expected = np.stack([-boxes[:, 1], -bottom_z - 0.08, boxes[:, 0] - 0.27], axis=1)
    assert np.allclose(location, expected)


@pytest.mark.parametrize("name", sorted(CALIBRATIONS))
def test_lidar_box_survives_camera_rect_and_back(name):
    boxes = _asymmetric_boxes()
    lidar2cam = CALIBRATIONS[name]
    back = box_ops.lidar_boxes_from_kitti(*box_ops.kitti_from_lidar_boxes(boxes, lidar2cam), lidar2cam)
    assert np.allclose(back[:, :6], boxes[:, :6], atol=1e-9)
    assert np.all(_angle_difference(back[:, 6], boxes[:, 6]) < 1e-9)


@pytest.mark.parametrize("name", sorted(CALIBRATIONS))
def test_kitti_label_box_survives_lidar_and_back(name):
    lidar2cam = CALIBRATIONS[name]
    dims = np.array([[1.5, 1.7, 4.2], [1.73, 0.6, 0.8], [1.73, 0.6, 1.76]] * 3)
    location = np.array([[2.0, 1.6, 20.0], [-5.0, 1.7, 35.0], [8.0, 1.5, 12.0]] * 3)
    rotation_y = np.array([-3.0, -1.2, -0.1, 0.0, 0.4, 1.5, 2.2, 3.0, -2.6])
    boxes = box_ops.lidar_boxes_from_kitti(dims, location, rotation_y, lidar2cam)
    dims2, location2, rotation_y2 = box_ops.kitti_from_lidar_boxes(boxes, lidar2cam)
    assert np.allclose(dims2, dims) and np.allclose(location2, location, atol=1e-9)
    assert np.all(_angle_difference(rotation_y2, rotation_y) < 1e-9)


@pytest.mark.parametrize("name", ["standard", "turned_and_tilted"])
def test_kitti_corners_from_the_devkit_formula_match_our_corners(name):
    """The devkit builds corners in camera-rect (l along x, h up -y, w along z, turned by rotation_y);
    mapped to the LiDAR they must be our box's corners (where the camera's y axis is vertical)."""
    lidar2cam = CALIBRATIONS[name]
    if name == "turned_and_tilted":  # keep the camera's y axis vertical: only a turn about it
        lidar2cam = _lidar2cam(_rotation("y", 0.6) @ STANDARD_AXES, [1.0, -2.0, 0.5])
    dims = np.array([[1.5, 1.7, 4.2], [1.73, 0.6, 1.76]])
    location = np.array([[2.0, 1.6, 20.0], [-5.0, 1.7, 35.0]])
    rotation_y = np.array([0.4, -2.1])
    boxes = box_ops.lidar_boxes_from_kitti(dims, location, rotation_y, lidar2cam)
    ours = box_ops.box_corners(boxes)
    cam2lidar = np.linalg.inv(lidar2cam)
    for i, ((h, w, l), loc, ry) in enumerate(zip(dims, location, rotation_y)):
        x = np.array([l, l, -l, -l, l, l, -l, -l]) / 2
        y = np.array([0, 0, 0, 0, -h, -h, -h, -h])
        z = np.array([w, -w, -w, w, w, -w, -w, w]) / 2
        rot = np.array([[np.cos(ry), 0, np.sin(ry)], [0, 1, 0], [-np.sin(ry), 0, np.cos(ry)]])
        cam = (rot @ np.stack([x, y, z])).T + loc
        devkit = cam @ cam2lidar[:3, :3].T + cam2lidar[:3, 3]
        distances = np.linalg.norm(devkit[:, None, :] - ours[i][None, :, :], axis=2)
        assert np.allclose(distances.min(axis=1), 0.0, atol=1e-9)   # same 8 points, any order
        # and the heading: the devkit's +x face (first four points) is our front face
        assert np.allclose(np.sort(devkit[[0, 1, 4, 5]], axis=0), np.sort(ours[i][box_ops.FRONT_FACE], axis=0))


def test_wlh_order_puts_length_along_the_heading():
    centre = np.array([[10.0, 2.0, -1.0]] * len(YAWS))
    size_wlh = np.array([[1.6, 4.0, 1.5]] * len(YAWS))
    boxes = box_ops.lidar_boxes_from_wlh(centre, size_wlh, YAWS)
    assert np.allclose(boxes[:, 3:6], [4.0, 1.6, 1.5])
    corners = box_ops.box_corners(boxes)
    front_centre = corners[:, box_ops.FRONT_FACE].mean(axis=1)
    heading = np.stack([np.cos(YAWS), np.sin(YAWS), np.zeros(len(YAWS))], axis=1)
    assert np.allclose(front_centre, centre + 2.0 * heading)
    back_centre, back_size, back_yaw = box_ops.wlh_from_lidar_boxes(boxes)
    assert np.allclose(back_centre, centre) and np.allclose(back_size, size_wlh)
    assert np.all(_angle_difference(back_yaw, YAWS) < 1e-12)


def test_box_corners_match_rotation_of_half_sizes():
    box = np.array([5.0, -2.0, 0.3, 4.0, 2.0, 1.0, 0.5])
    corners = box_ops.box_corners(box)[0]
    rot = np.array([[np.cos(0.5), -np.sin(0.5), 0], [np.sin(0.5), np.cos(0.5), 0], [0, 0, 1]])
    assert np.allclose(corners[0], box[:3] + rot @ [2.0, 1.0, -0.5])   # front-left-bottom
    assert np.allclose(corners[6], box[:3] + rot @ [-2.0, -1.0, 0.5])  # rear-right-top
    assert len({tuple(np.round(c, 9)) for c in corners}) == 8


def test_points_in_boxes_matches_a_direct_test():
    rng = np.random.default_rng(3)
    boxes = _asymmetric_boxes()
    points = np.concatenate([boxes[:, :3] + rng.uniform(-2.5, 2.5, (len(boxes), 3)) for _ in range(60)])
    inside = box_ops.points_in_boxes(points, boxes)
    for j, box in enumerate(boxes):
        rot = np.array([[np.cos(box[6]), -np.sin(box[6])], [np.sin(box[6]), np.cos(box[6])]])
        local_xy = (points[:, :2] - box[:2]) @ rot       # rows times R = R^T applied to each row
        expected = (np.abs(local_xy[:, 0]) <= box[3] / 2) & (np.abs(local_xy[:, 1]) <= box[4] / 2) & \
            (np.abs(points[:, 2] - box[2]) <= box[5] / 2)
        assert np.array_equal(inside[:, j], expected)
    assert inside.any() and not inside.all()


def test_project_points_is_the_pinhole_model():
    intrinsic = np.array([[700.0, 0, 600.0], [0, 710.0, 180.0], [0, 0, 1]])
    lidar2cam = CALIBRATIONS["standard"]
    lidar2img = np.eye(4)
    lidar2img[:3, :3] = intrinsic
    lidar2img = lidar2img @ lidar2cam
    points = np.array([[20.0, 3.0, -1.0], [8.0, -2.0, 0.5]])
    uv, depth = box_ops.project_points(points, lidar2img)
    cam = points @ lidar2cam[:3, :3].T + lidar2cam[:3, 3]
    assert np.allclose(depth, cam[:, 2])
    assert np.allclose(uv[:, 0], 700.0 * cam[:, 0] / cam[:, 2] + 600.0)
    assert np.allclose(uv[:, 1], 710.0 * cam[:, 1] / cam[:, 2] + 180.0)


def test_kitti_alpha_is_rotation_y_minus_viewing_angle():
    location = np.array([[0.0, 1.6, 20.0], [10.0, 1.6, 10.0], [-10.0, 1.6, 10.0]])
    rotation_y = np.array([0.3, 0.3, -3.0])
    alpha = box_ops.kitti_alpha(location, rotation_y)
    assert np.allclose(alpha[:2], [0.3, 0.3 - np.pi / 4])
    assert _angle_difference(alpha[2], -3.0 + np.pi / 4) < 1e-12 and -np.pi <= alpha[2] < np.pi
