"""CenterHead targets, losses and decoding (v2xfusion_tools/models/heads/), with hand-computed values."""
import math

import torch

from v2xfusion_tools.models.heads.centerhead import CenterHead, TaskSpec
from v2xfusion_tools.models.heads.decode import (PostProcess, decode_topk, nms_circle, nms_rotated,
                                                 rotated_iou_bev)
from v2xfusion_tools.models.heads.losses import gaussian_focal_loss_sum
from v2xfusion_tools.models.heads.targets import BevGeometry, center_targets, gaussian_radius

# 32 x 32 cells of 0.8 m (voxel 0.2, out_size_factor 4), x from 0, y from -12.8
GEOMETRY = BevGeometry((0.0, -12.8, -5.0, 25.6, 12.8, 3.0), (0.2, 0.2), 4, (32, 32))
POST = PostProcess(score_threshold=0.3, pre_max_size=100, post_max_size=50, nms_type="rotate",
                   nms_iou_threshold=0.2, circle_radius=(4.0, 0.85, 0.85),
                   post_center_range=(0.0, -12.8, -5.0, 25.6, 12.8, 3.0))
CLASSES = ["Car", "Pedestrian", "Cyclist"]


def test_gaussian_radius_of_a_car_matches_hand_arithmetic():
    # car 4.0 x 1.8 m in 0.8 m cells: width (x) 5 cells, length (y) 2.25 cells; overlap 0.1.
    # The three CornerNet cases: (b + sqrt(b^2 - 4ac)) / 2 with (a, b, c) =
    r1 = (7.25 + math.sqrt(7.25 ** 2 - 4 * 1 * (5 * 2.25 * 0.9 / 1.1))) / 2
    r2 = (14.5 + math.sqrt(14.5 ** 2 - 4 * 4 * (0.9 * 11.25))) / 2
    r3 = (-1.45 + math.sqrt(1.45 ** 2 + 4 * 0.4 * 10.125)) / 2
    assert round(r3, 3) == 1.414 and r3 < r1 < r2
    assert math.isclose(gaussian_radius(2.25, 5.0, 0.1), r3, rel_tol=1e-9)


def test_targets_put_a_unit_gaussian_peak_on_the_object_cell():
    # pedestrian at x = 10.3, y = -3.7: cell x 10.3 / 0.8 = 12.875 -> 12, cell y 9.1 / 0.8 = 11.375 -> 11
    box = torch.tensor([[10.3, -3.7, -0.8, 0.8, 0.7, 1.7, 0.5]])
    targets = center_targets(box, torch.tensor([1]), 3, GEOMETRY, gaussian_overlap=0.1, min_radius=2,
                             max_objs=4, norm_bbox=True, with_velocity=True)
    heatmap = targets.heatmap
    assert heatmap.shape == (3, 32, 32)
    assert heatmap[1, 12, 11] == 1.0 and heatmap[1].max() == 1.0
    assert heatmap[0].sum() == 0 and heatmap[2].sum() == 0
    # footprint 1 x 0.875 cells gives a radius below min_radius, so r = 2 and sigma = (2r + 1) / 6
    sigma = 5 / 6
    assert math.isclose(heatmap[1, 13, 11].item(), math.exp(-1 / (2 * sigma ** 2)), rel_tol=1e-6)
    assert math.isclose(heatmap[1, 10, 9].item(), math.exp(-8 / (2 * sigma ** 2)), rel_tol=1e-6)
    assert heatmap[1, 15, 11] == 0 and heatmap[1, 12, 14] == 0  # beyond the radius
    assert targets.ind[0] == 12 * 32 + 11 and targets.mask.tolist() == [True, False, False, False]
    expected = [0.875, 0.375, -0.8, math.log(0.8), math.log(0.7), math.log(1.7), math.sin(0.5), math.cos(0.5),
                0.0, 0.0]
    torch.testing.assert_close(targets.boxes[0], torch.tensor(expected), atol=1e-5, rtol=1e-5)


def test_targets_skip_objects_outside_the_map():
    boxes = torch.tensor([[-1.0, 0.0, 0.0, 4.0, 1.8, 1.5, 0.0], [5.0, 20.0, 0.0, 4.0, 1.8, 1.5, 0.0]])
    targets = center_targets(boxes, torch.tensor([0, 0]), 3, GEOMETRY, 0.1, 2, 4, True, False)
    assert targets.heatmap.sum() == 0 and not targets.mask.any() and targets.boxes.shape == (4, 8)


def test_gaussian_focal_loss_matches_its_formula():
    pred = torch.tensor([0.9, 0.2, 0.6])
    target = torch.tensor([1.0, 0.5, 0.0])
    expected = (-math.log(0.9) * 0.1 ** 2                        # positive: -log p (1 - p)^2
                - math.log(0.8) * 0.2 ** 2 * 0.5 ** 4            # near a peak: -log(1 - p) p^2 (1 - t)^4
                - math.log(0.4) * 0.6 ** 2)                      # background
    assert math.isclose(gaussian_focal_loss_sum(pred, target).item(), expected, rel_tol=1e-5)


def _head(tasks=None, **kwargs):
    tasks = tasks or [TaskSpec(3, CLASSES)]
    return CenterHead(16, tasks, CLASSES, GEOMETRY, POST, **kwargs)


def test_head_names_shapes_and_heatmap_bias():
    head = _head(common_heads={"reg": [2, 2], "height": [1, 2], "dim": [3, 2], "rot": [2, 2], "vel": [2, 2]})
    shapes = {k: tuple(v.shape) for k, v in head.state_dict().items()}
    assert shapes["shared_conv.conv.weight"] == (64, 16, 3, 3)
    assert shapes["task_heads.0.heatmap.0.conv.weight"] == (64, 64, 3, 3)
    assert shapes["task_heads.0.heatmap.1.weight"] == (3, 64, 3, 3)
    assert shapes["task_heads.0.vel.1.bias"] == (2,)
    assert torch.all(head.task_heads[0].heatmap[1].bias == -2.19)
    outs = head(torch.randn(2, 16, 32, 32))
    assert {k: tuple(v.shape[1:]) for k, v in outs[0].items()} == {
        "reg": (2, 32, 32), "height": (1, 32, 32), "dim": (3, 32, 32), "rot": (2, 32, 32), "vel": (2, 32, 32),
        "heatmap": (3, 32, 32)}
    assert head.output_names == ["heatmap", "reg", "height", "dim", "rot", "vel"]


def _predictions_from_boxes(boxes, labels, num_class):
    """Head outputs whose decoding is exactly `boxes`: logit peaks on the cells, regressions there."""
    preds = {"heatmap": torch.full((1, num_class, 32, 32), -10.0), "reg": torch.zeros(1, 2, 32, 32),
             "height": torch.zeros(1, 1, 32, 32), "dim": torch.zeros(1, 3, 32, 32),
             "rot": torch.zeros(1, 2, 32, 32)}
    for box, label in zip(boxes.tolist(), labels.tolist()):
        cx, cy = (box[0] - 0.0) / 0.8, (box[1] + 12.8) / 0.8
        ix, iy = int(cx), int(cy)
        preds["heatmap"][0, label, ix, iy] = 3.0
        preds["reg"][0, :, ix, iy] = torch.tensor([cx - ix, cy - iy])
        preds["height"][0, 0, ix, iy] = box[2]
        preds["dim"][0, :, ix, iy] = torch.tensor(box[3:6]).log()
        preds["rot"][0, :, ix, iy] = torch.tensor([math.sin(box[6]), math.cos(box[6])])
    return preds


def test_decoding_recovers_the_encoded_boxes():
    boxes = torch.tensor([[10.3, -3.7, -0.8, 4.0, 1.8, 1.5, 2.5], [20.1, 6.2, -1.0, 0.8, 0.7, 1.7, -0.4]])
    preds = _predictions_from_boxes(boxes, torch.tensor([0, 2]), 3)
    decoded, scores, labels = decode_topk(preds["heatmap"].sigmoid(), preds["reg"], preds["height"],
                                          preds["dim"], preds["rot"], None, GEOMETRY, top_k=2, norm_bbox=True)
    order = decoded[0, :, 0].argsort()
    torch.testing.assert_close(decoded[0, order], boxes, atol=1e-5, rtol=1e-5)
    assert labels[0, order].tolist() == [0, 2] and torch.allclose(scores, torch.sigmoid(torch.tensor(3.0)))


def test_predict_maps_task_labels_to_class_names():
    head = _head(tasks=[TaskSpec(1, ["Car"]), TaskSpec(2, ["Pedestrian", "Cyclist"])])
    boxes = torch.tensor([[10.3, -3.7, -0.8, 4.0, 1.8, 1.5, 0.3], [20.1, 6.2, -1.0, 1.8, 0.6, 1.6, 1.0]])
    preds = [_predictions_from_boxes(boxes[:1], torch.tensor([0]), 1),
             _predictions_from_boxes(boxes[1:], torch.tensor([1]), 2)]
    detections = head.predict(preds)[0]
    assert detections.labels.tolist() == [0, 2]  # Car from task 0, Cyclist = slot 1 of task 1
    torch.testing.assert_close(detections.boxes, boxes, atol=1e-5, rtol=1e-5)


def test_rotated_iou_matches_geometry():
    square = torch.tensor([[0.0, 0.0, 0.0, 2.0, 2.0, 1.0, 0.0]])
    shifted = torch.tensor([[1.0, 0.0, 0.0, 2.0, 2.0, 1.0, 0.0]])
    turned = torch.tensor([[0.0, 0.0, 0.0, 2.0, 2.0, 1.0, math.pi / 4]])
    far = torch.tensor([[5.0, 5.0, 0.0, 2.0, 2.0, 1.0, 0.3]])
    iou = rotated_iou_bev(square, torch.cat([square, shifted, turned, far]))[0]
    octagon = 8 * (math.sqrt(2) - 1)  # a side-2 square and its 45 degree turn share a regular octagon
    expected = [1.0, 2 / 6, octagon / (8 - octagon), 0.0]
    torch.testing.assert_close(iou, torch.tensor(expected, dtype=torch.float64), atol=1e-6, rtol=1e-6)


def test_nms_keeps_the_best_of_overlapping_boxes():
    boxes = torch.tensor([[0.0, 0.0, 0.0, 4.0, 2.0, 1.5, 0.0], [0.3, 0.1, 0.0, 4.0, 2.0, 1.5, 0.1],
                          [10.0, 0.0, 0.0, 4.0, 2.0, 1.5, 0.0]])
    scores = torch.tensor([0.6, 0.9, 0.5])
    assert nms_rotated(boxes, scores, 0.2, max_keep=10).tolist() == [1, 2]
    assert nms_rotated(boxes, scores, 0.2, max_keep=1).tolist() == [1]
    assert nms_circle(boxes, scores, radius=1.0, max_keep=10).tolist() == [1, 2]
    assert nms_circle(boxes, scores, radius=0.1, max_keep=10).tolist() == [1, 0, 2]


def test_loss_is_small_for_predictions_that_match_the_targets():
    head = _head()
    boxes = [torch.tensor([[10.3, -3.7, -0.8, 4.0, 1.8, 1.5, 2.5]])]
    labels = [torch.tensor([0])]
    good = _predictions_from_boxes(boxes[0], labels[0], 3)
    good["heatmap"] = torch.logit(center_targets(boxes[0], labels[0], 3, GEOMETRY, 0.1, 2, 500, True, False)
                                  .heatmap.clamp(1e-4, 1 - 1e-4)).unsqueeze(0)
    bad = {k: v + 1.0 for k, v in good.items()}
    good_loss, bad_loss = head.loss([good], boxes, labels), head.loss([bad], boxes, labels)
    assert good_loss["bbox/task0"] < 1e-4 < bad_loss["bbox/task0"]
    assert good_loss["heatmap/task0"] < bad_loss["heatmap/task0"]
