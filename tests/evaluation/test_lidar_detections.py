"""Internal LiDAR-frame detections as KITTI prediction labels: 2-D boxes against an independent
projection, 3-D boxes against the internal boxes, and the AP of known shifts."""
import math

import numpy as np
import pytest

from v2xfusion_tools.datasets.kitti_format import KittiLabels, write_labels
from v2xfusion_tools.evaluation import io, kitti_ap
from v2xfusion_tools.evaluation.lidar_detections import image_boxes, kitti_from_lidar_detections

CLASS_NAMES = ("Car", "Pedestrian", "Cyclist")
IMAGE_SIZE = (1242, 375)


def _calibration():
    """A KITTI-like rig: LiDAR -> camera axes, a slightly tilted R0_rect, P2 = K [I | t]."""
    axes = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])
    tilt = 0.01
    r0 = np.array([[1.0, 0.0, 0.0], [0.0, math.cos(tilt), -math.sin(tilt)], [0.0, math.sin(tilt), math.cos(tilt)]])
    lidar2cam = np.eye(4)
    lidar2cam[:3, :3] = r0 @ axes
    lidar2cam[:3, 3] = r0 @ np.array([0.0, -0.08, -0.27])
    k = np.array([[721.5, 0.0, 609.6], [0.0, 721.5, 172.9], [0.0, 0.0, 1.0]])
    p2 = np.hstack([k, [[44.9], [0.2], [0.003]]])
    return lidar2cam, p2 @ lidar2cam


def _corners(box):
    """The 8 corners of an internal box (x, y, z, dx, dy, dz, yaw), written out independently."""
    x, y, z, dx, dy, dz, yaw = box
    out = []
    for sx in (-0.5, 0.5):
        for sy in (-0.5, 0.5):
            for sz in (-0.5, 0.5):
                lx, ly = sx * dx, sy * dy
                out.append([x + lx * math.cos(yaw) - ly * math.sin(yaw), y + lx * math.sin(yaw) + ly * math.cos(yaw),
                            z + sz * dz])
    return np.array(out)


def _independent_rectangle(box, lidar2img):
    corners = _corners(box)
    projected = corners @ lidar2img[:3, :3].T + lidar2img[:3, 3]
    uv = projected[:, :2] / projected[:, 2:3]
    return np.concatenate([uv.min(axis=0), uv.max(axis=0)])


BOXES = np.array([
    [20.0, 3.0, -0.9, 3.9, 1.6, 1.5, 0.3],
    [12.0, -2.0, -0.8, 0.8, 0.6, 1.75, -1.2],
    [35.0, 6.0, -1.0, 1.8, 0.6, 1.7, 2.9],
])


def test_boxes_in_view_get_the_rectangle_of_their_projected_corners_and_keep_their_3d_box():
    lidar2cam, lidar2img = _calibration()
    labels = kitti_from_lidar_detections(BOXES, [0.9, 0.8, 0.7], [0, 1, 2], CLASS_NAMES, lidar2cam, lidar2img,
                                         IMAGE_SIZE)
    assert labels.types == CLASS_NAMES
    np.testing.assert_allclose(labels.score, [0.9, 0.8, 0.7])
    for i, box in enumerate(BOXES):
        np.testing.assert_allclose(labels.bbox[i], _independent_rectangle(box, lidar2img), atol=1e-9)
    np.testing.assert_allclose(labels.lidar_boxes(lidar2cam), BOXES, atol=1e-9)
    # KITTI's size order: (h, w, l) = (dz, dy, dx)
    np.testing.assert_allclose(labels.dimensions, BOXES[:, [5, 4, 3]])


def test_boxes_out_of_the_image_are_dropped_and_cut_ones_are_clipped():
    lidar2cam, lidar2img = _calibration()
    boxes = np.array([
        [-10.0, 0.0, -0.9, 3.9, 1.6, 1.5, 0.0],      # behind the camera
        [5.0, 40.0, -0.9, 3.9, 1.6, 1.5, 0.0],       # far left of the field of view
        [6.0, 6.0, -0.9, 3.9, 1.6, 1.5, 0.0],        # across the left image border
        [0.0, 0.0, -0.9, 3.9, 1.6, 1.5, 0.0],        # across the camera plane, in front of the lens
        [20.0, 0.0, -0.9, 3.9, 1.6, 1.5, 0.0],       # wholly inside
    ])
    labels = kitti_from_lidar_detections(boxes, np.linspace(0.9, 0.5, 5), [0] * 5, CLASS_NAMES, lidar2cam, lidar2img,
                                         IMAGE_SIZE)
    np.testing.assert_allclose(labels.score, [0.7, 0.6, 0.5])
    width = IMAGE_SIZE[0]
    assert labels.bbox[0, 0] == 0.0 and 0.0 < labels.bbox[0, 2] < width
    # the part in front of the camera plane projects over the whole image width
    np.testing.assert_allclose(labels.bbox[1, [0, 2]], [0.0, width])
    np.testing.assert_allclose(labels.bbox[2], _independent_rectangle(boxes[4], lidar2img), atol=1e-9)
    rect = image_boxes(boxes[:1], lidar2img)
    assert np.all(np.isnan(rect))


@pytest.mark.parametrize("shift, expected_loose, expected_strict", [
    (0.0, 100.0, 100.0),
    (1.0, 100.0, 0.0),     # BEV IoU (3.9 - 1) / (3.9 + 1) = 0.59: above 0.5, below 0.7
    (1.5, 0.0, 0.0),       # (3.9 - 1.5) / (3.9 + 1.5) = 0.44
])
def test_shifting_lidar_detections_along_their_heading_gives_the_known_bev_ap(tmp_path, shift, expected_loose,
                                                                             expected_strict):
    lidar2cam, lidar2img = _calibration()
    rng = np.random.default_rng(4)
    gt, det, det_frames = [], [], {}
    for f in range(60):
        yaw = rng.uniform(-math.pi, math.pi)
        box = np.array([[rng.uniform(10, 30), rng.uniform(-4, 4), -0.9, 3.9, 1.6, 1.5, yaw]])
        truth = kitti_from_lidar_detections(box, [1.0], [0], CLASS_NAMES, lidar2cam, lidar2img, IMAGE_SIZE)
        gt.append(KittiLabels(truth.types, truth.truncated, truth.occluded, truth.alpha, truth.bbox,
                              truth.dimensions, truth.location, truth.rotation_y))
        moved = box.copy()
        moved[0, :2] += shift * np.array([math.cos(yaw), math.sin(yaw)])
        det.append(kitti_from_lidar_detections(moved, [0.9 - f / 1000], [0], CLASS_NAMES, lidar2cam, lidar2img,
                                               IMAGE_SIZE))
        det_frames[f"{f:06d}"] = det[-1]
    result = kitti_ap.evaluate(gt, det)
    assert result.num_gt[0, 1] == 60
    assert result.ap("Car", "bev", "moderate", "R40", "loose") == pytest.approx(expected_loose, abs=1e-9)
    assert result.ap("Car", "bev", "moderate", "R40", "strict") == pytest.approx(expected_strict, abs=1e-9)
    # the same detections through a --dump-pred style folder
    io.write_predictions(tmp_path / "pred", det_frames)
    (tmp_path / "label_2").mkdir()
    for frame_id, truth in zip(det_frames, gt):
        write_labels(tmp_path / "label_2" / f"{frame_id}.txt", truth)
    from_files = io.evaluate_folders(tmp_path / "label_2", tmp_path / "pred")
    assert from_files.ap("Car", "bev", "moderate", "R40", "loose") == pytest.approx(expected_loose, abs=1e-9)


def test_bad_detection_arrays_fail_clearly():
    lidar2cam, lidar2img = _calibration()
    with pytest.raises(ValueError, match="differ in count"):
        kitti_from_lidar_detections(BOXES, [0.9], [0, 1, 2], CLASS_NAMES, lidar2cam, lidar2img, IMAGE_SIZE)
    with pytest.raises(ValueError, match="labels must index class_names"):
        kitti_from_lidar_detections(BOXES, [0.9] * 3, [0, 1, 3], CLASS_NAMES, lidar2cam, lidar2img, IMAGE_SIZE)
    empty = kitti_from_lidar_detections(np.zeros((0, 7)), [], [], CLASS_NAMES, lidar2cam, lidar2img, IMAGE_SIZE)
    assert len(empty) == 0 and empty.score.shape == (0,)
