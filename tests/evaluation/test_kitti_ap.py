"""KITTI AP of v2xfusion_tools.evaluation.kitti_ap: hand-computed cases, and parity with a literal
loop-by-loop reading of the devkit (devkit_reference.py) on random scenes."""
import time

import numpy as np
import pytest

from v2xfusion_perception.config import PRESETS, load_config, preset_config_path
from v2xfusion_tools.datasets.kitti_format import KittiLabels
from v2xfusion_tools.evaluation import iou, kitti_ap
from v2xfusion_tools.evaluation.kitti_ap import DAIR_V2X_I, DIFFICULTIES, KITTI, METRICS, OVERLAP_SETS

from . import scenes
from .devkit_reference import reference_ap

CLASSES = ("Car", "Pedestrian", "Cyclist")


def _all_aps(result, sampling):
    return [result.ap(c, m, d, sampling, o) for c in CLASSES for m in METRICS for d in DIFFICULTIES
            for o in OVERLAP_SETS]


def _car_only(result, metric, sampling, overlaps="strict"):
    return [result.ap("Car", metric, d, sampling, overlaps) for d in DIFFICULTIES]


def _with_extra(frame: KittiLabels, extra: KittiLabels) -> KittiLabels:
    """Two label sets of one frame as one (extra's rows after frame's)."""
    score = None if frame.score is None else np.concatenate([frame.score, extra.score])
    return KittiLabels(frame.types + extra.types, np.concatenate([frame.truncated, extra.truncated]),
                       np.concatenate([frame.occluded, extra.occluded]), np.concatenate([frame.alpha, extra.alpha]),
                       np.concatenate([frame.bbox, extra.bbox]), np.concatenate([frame.dimensions, extra.dimensions]),
                       np.concatenate([frame.location, extra.location]),
                       np.concatenate([frame.rotation_y, extra.rotation_y]), score)


def _far_car(score, bbox=(1000.0, 150.0, 1100.0, 210.0)):
    """A Car detection 30 m from every ground truth (a certain false positive in BEV and 3-D)."""
    return scenes.labels(("Car",), [(30.0, 1.6, 60.0)], [scenes.SIZES["Car"]], [0.0], [bbox], score=[score])


def test_perfect_detections_score_100_for_every_class_metric_difficulty_and_sampling():
    gt = [scenes.one_of_each(rotation_y=0.1 * f) for f in range(100)]
    det = [scenes.as_detections(frame, [1.0 - f / 1000] * 3) for f, frame in enumerate(gt)]
    result = kitti_ap.evaluate(gt, det)
    assert result.num_gt.tolist() == [[100] * 3] * 3
    np.testing.assert_allclose(_all_aps(result, "R40"), 100.0)
    np.testing.assert_allclose(_all_aps(result, "R11"), 100.0)


def test_detections_shifted_below_the_overlap_score_0_in_bev_and_3d_but_not_in_2d():
    gt = [scenes.one_of_each() for _ in range(60)]
    shift = (1.5, 0.0, 0.0)                        # along camera x = along each box's length (ry = 0)
    det = [scenes.as_detections(frame, [1.0 - f / 100] * 3, shift=shift) for f, frame in enumerate(gt)]
    # the shift leaves (l - 1.5) / (l + 1.5) of the footprint: Car 2.4/5.4, Cyclist 0.3/3.3, Pedestrian none
    def ground(frame):
        return iou.camera_to_bev(np.concatenate([frame.location, frame.dimensions, frame.rotation_y[:, None]], 1))
    bev = iou.bev_iou(ground(det[0]), ground(gt[0]))
    np.testing.assert_allclose(np.diag(bev), [2.4 / 5.4, 0.0, 0.3 / 3.3], atol=1e-12)
    result = kitti_ap.evaluate(gt, det)
    for cls in CLASSES:
        for sampling in ("R11", "R40"):
            for overlaps in OVERLAP_SETS:
                for difficulty in DIFFICULTIES:
                    assert result.ap(cls, "bev", difficulty, sampling, overlaps) == 0.0
                    assert result.ap(cls, "3d", difficulty, sampling, overlaps) == 0.0
                    assert result.ap(cls, "bbox", difficulty, sampling, overlaps) == 100.0


@pytest.mark.parametrize("shifted_first, r40, r11", [
    # 50 hits then 50 misses: precision 1 up to recall 0.5 -> 20 of 40 / 6 of 11 sample points
    (False, 50.0, 100.0 * 6 / 11),
    # 50 misses then 50 hits: the best precision at any recall <= 0.5 is 50 / 100
    (True, 25.0, 100.0 * 3 / 11),
])
def test_half_the_detections_shifted_out_gives_the_hand_computed_ap(shifted_first, r40, r11):
    gt = scenes.car_frames(100)
    det = []
    for f, frame in enumerate(gt):
        shifted = f >= 50
        score = (0.9 if shifted == shifted_first else 0.4) - f / 1000
        det.append(scenes.as_detections(frame, [score], shift=(2.0, 0.0, 0.0) if shifted else (0.0, 0.0, 0.0)))
    result = kitti_ap.evaluate(gt, det)
    for metric in ("bev", "3d"):
        assert _car_only(result, metric, "R40") == pytest.approx([r40] * 3, abs=1e-9)
        assert _car_only(result, metric, "R11") == pytest.approx([r11] * 3, abs=1e-9)


def test_empty_predictions_and_empty_frames_score_0():
    gt = [scenes.one_of_each() for _ in range(10)]
    result = kitti_ap.evaluate(gt, [scenes.no_detections() for _ in gt])
    assert _all_aps(result, "R40") == [0.0] * len(_all_aps(result, "R40"))
    assert _all_aps(result, "R11") == [0.0] * len(_all_aps(result, "R11"))
    # no ground truth at all: nothing to find, AP 0 (not NaN), even with detections
    empty_gt = [scenes.labels((), np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(0), np.zeros((0, 4)))] * 3
    result = kitti_ap.evaluate(empty_gt, [_far_car(0.9)] * 3)
    assert _all_aps(result, "R40") == [0.0] * len(_all_aps(result, "R40"))
    assert kitti_ap.evaluate([], []).num_gt.sum() == 0


def test_hand_built_precision_recall_curve():
    # 100 cars. Ranked by score: 50 hits, 25 false positives, 50 hits. Precision is 1 up to recall 0.5,
    # then k / (k + 25) for hit k = 51..100, whose best at recall >= r (r > 0.5) is 100 / 125 = 0.8.
    # R40: 20 samples at 1 and 20 at 0.8 -> 90. R11: recall 0 .. 0.5 (6 samples) at 1, 0.6 .. 1 at 0.8.
    gt = scenes.car_frames(100)
    det = []
    for f, frame in enumerate(gt):
        score = 0.99 - f / 1000 if f < 50 else 0.5 - f / 1000
        frame_det = scenes.as_detections(frame, [score])
        if f < 25:
            frame_det = _with_extra(frame_det, _far_car(0.7 - f / 1000))
        det.append(frame_det)
    result = kitti_ap.evaluate(gt, det)
    for metric in ("bev", "3d"):
        assert _car_only(result, metric, "R40") == pytest.approx([90.0] * 3, abs=1e-9)
        assert _car_only(result, metric, "R11") == pytest.approx([100.0 * (6 + 5 * 0.8) / 11] * 3, abs=1e-9)
    curve = result.precision[0, METRICS.index("bev"), 0, 0]
    np.testing.assert_allclose(curve[:21], 1.0)
    np.testing.assert_allclose(curve[21:], 0.8)


def test_few_ground_truths_follow_the_devkit_sample_indexing():
    # 2 cars; detections: 0.9 hit (frame 0), 0.8 false positive and 0.7 hit (frame 1). The devkit keeps
    # one threshold per true positive (0.9: precision 1, 0.7: precision 2/3) at sample points 0 and 1,
    # whatever recall they reach: R40 = (2/3) / 40, R11 = 1 / 11 (sample 4 is empty).
    gt = scenes.car_frames(2)
    det = [scenes.as_detections(gt[0], [0.9]), _with_extra(scenes.as_detections(gt[1], [0.7]), _far_car(0.8))]
    result = kitti_ap.evaluate(gt, det)
    assert result.ap("Car", "3d", "moderate", "R40") == pytest.approx(100.0 * (2 / 3) / 40, abs=1e-12)
    assert result.ap("Car", "3d", "moderate", "R11") == pytest.approx(100.0 / 11, abs=1e-12)
    # found perfectly, the 2 thresholds still cover only samples 0 and 1
    perfect = kitti_ap.evaluate(gt, [scenes.as_detections(g, [0.9 - i / 10]) for i, g in enumerate(gt)])
    assert perfect.ap("Car", "3d", "moderate", "R40") == pytest.approx(2.5, abs=1e-12)


def test_get_thresholds_picks_the_scores_nearest_each_recall_step():
    # 4 ground truths, step 1/40: every true positive is nearest a step of its own
    np.testing.assert_array_equal(kitti_ap.get_thresholds(np.array([0.2, 0.9, 0.5, 0.7]), 4), [0.9, 0.7, 0.5, 0.2])
    # 80 ground truths: after the first, every other score (recall 2/80 = 1/40 per step)
    scores = np.linspace(1.0, 0.21, 80)
    thresholds = kitti_ap.get_thresholds(scores, 80)
    assert len(thresholds) == 41
    np.testing.assert_array_equal(thresholds[1:], scores[1::2])
    assert len(kitti_ap.get_thresholds(np.zeros(0), 5)) == 0


def test_heavily_occluded_ground_truth_counts_only_in_hard():
    gt = scenes.car_frames(50) + [scenes.one_of_each(classes=("Car",), occluded=(2,))]
    det = [scenes.as_detections(frame, [0.9 - f / 1000]) for f, frame in enumerate(gt[:50])] + [scenes.no_detections()]
    result = kitti_ap.evaluate(gt, det)
    assert result.num_gt[0].tolist() == [50, 50, 51]
    # hard misses 1 of 51: precision 1 up to recall 50/51, nothing at recall 1
    assert _car_only(result, "3d", "R40") == pytest.approx([100.0, 100.0, 97.5], abs=1e-9)
    assert _car_only(result, "3d", "R11") == pytest.approx([100.0, 100.0, 1000.0 / 11], abs=1e-9)
    # found, it is no false positive where it is ignored
    det[50] = scenes.as_detections(gt[50], [0.95])
    found = kitti_ap.evaluate(gt, det)
    assert _car_only(found, "3d", "R40") == pytest.approx([100.0] * 3, abs=1e-9)


def test_partly_occluded_and_truncated_ground_truths_follow_the_difficulty_limits():
    gt = scenes.car_frames(50)
    partly = scenes.one_of_each(classes=("Car",), occluded=(1,))
    truncated = scenes.labels(("Car",), [scenes.PLACES["Car"]], [scenes.SIZES["Car"]], [0.0], [scenes.BOXES_2D["Car"]],
                              truncated=[0.4])
    result = kitti_ap.evaluate(gt + [partly, truncated], [scenes.no_detections()] * 52)
    assert result.num_gt[0].tolist() == [50, 51, 52]


def test_two_d_heights_decide_what_counts():
    def car(top, bottom, **kwargs):
        return scenes.labels(("Car",), [scenes.PLACES["Car"]], [scenes.SIZES["Car"]], [0.0],
                             [(100.0, top, 300.0, bottom)], **kwargs)
    # the devkit's 'height <= minimum' is too small: 40 px counts from moderate, 41 px everywhere,
    # 25 px nowhere
    gt = [car(150.0, 190.0), car(150.0, 191.0), car(150.0, 175.0)]
    result = kitti_ap.evaluate(gt, [scenes.no_detections()] * 3)
    assert result.num_gt[0].tolist() == [1, 2, 2]
    # a false positive 20 px tall is ignored at every level, 30 px tall only at easy (< 40)
    gt = scenes.car_frames(50)
    det = [scenes.as_detections(frame, [0.9 - f / 1000]) for f, frame in enumerate(gt)]
    small = [_with_extra(det[0], _far_car(0.99, bbox=(1000.0, 150.0, 1100.0, 170.0)))] + det[1:]
    assert _car_only(kitti_ap.evaluate(gt, small), "3d", "R40") == pytest.approx([100.0] * 3, abs=1e-9)
    medium = [_with_extra(det[0], _far_car(0.99, bbox=(1000.0, 150.0, 1100.0, 180.0)))] + det[1:]
    # the false positive ranks first: best precision at every recall is 50 / 51
    expected = [100.0, 100.0 * 50 / 51, 100.0 * 50 / 51]
    assert _car_only(kitti_ap.evaluate(gt, medium), "3d", "R40") == pytest.approx(expected, abs=1e-9)


def _dontcare(bbox):
    return scenes.labels(("DontCare",), [(-1000.0, -1000.0, -1000.0)], [(-1.0, -1.0, -1.0)], [-10.0], [bbox],
                         occluded=[-1], truncated=[-1.0])


@pytest.mark.parametrize("det_bbox, bbox_ap", [
    ((610.0, 110.0, 690.0, 190.0), 100.0),                 # wholly inside the DontCare region
    ((650.0, 110.0, 750.0, 190.0), 100.0 * 100 / 101),     # half of it outside (0.5 <= 0.7): a false positive
])
def test_dontcare_region_absorbs_detections_in_the_2d_metric_only(det_bbox, bbox_ap):
    gt = scenes.car_frames(100)
    gt[0] = _with_extra(gt[0], _dontcare((600.0, 100.0, 700.0, 200.0)))
    det = [scenes.as_detections(frame, [0.9 - f / 1000]) for f, frame in enumerate(scenes.car_frames(100))]
    det[0] = _with_extra(det[0], _far_car(0.99, bbox=det_bbox))
    result = kitti_ap.evaluate(gt, det)
    assert result.num_gt[0].tolist() == [100] * 3
    for sampling in ("R11", "R40"):
        assert _car_only(result, "bbox", sampling) == pytest.approx([bbox_ap] * 3, abs=1e-9)
        # BEV and 3-D count it, as mmdet3d does: ranked first, it caps precision at 100 / 101
        assert _car_only(result, "bev", sampling) == pytest.approx([100.0 * 100 / 101] * 3, abs=1e-9)


def _one(cls, place_of="Car"):
    """One ground truth of type `cls` where scenes puts a `place_of`."""
    return scenes.labels((cls,), [scenes.PLACES[place_of]], [scenes.SIZES[place_of]], [0.0],
                         [scenes.BOXES_2D[place_of]])


def test_neighbour_classes_are_ignored_and_other_types_are_not():
    gt = scenes.car_frames(50)
    det = [scenes.as_detections(frame, [0.9 - f / 1000]) for f, frame in enumerate(gt)]
    van = _one("Van")
    # a Van found as a Car is no false positive; a Van not found is no miss
    result = kitti_ap.evaluate(gt + [van, van], det + [scenes.as_detections(van, [0.99], types=["Car"]),
                                                       scenes.no_detections()])
    assert result.num_gt[0].tolist() == [50] * 3
    assert _car_only(result, "3d", "R40") == pytest.approx([100.0] * 3, abs=1e-9)
    # a Truck found as a Car is a false positive (ranked first here: precision 50 / 51 at every recall)
    truck = _one("Truck")
    result = kitti_ap.evaluate(gt + [truck], det + [scenes.as_detections(truck, [0.99], types=["Car"])])
    assert _car_only(result, "3d", "R40") == pytest.approx([100.0 * 50 / 51] * 3, abs=1e-9)
    # Person_sitting is Pedestrian's neighbour
    peds = [scenes.one_of_each(classes=("Pedestrian",)) for _ in range(50)]
    ped_det = [scenes.as_detections(frame, [0.9 - f / 1000]) for f, frame in enumerate(peds)]
    sitting = _one("Person_sitting", place_of="Pedestrian")
    found_sitting = scenes.as_detections(sitting, [0.99], types=["Pedestrian"])
    result = kitti_ap.evaluate(peds + [sitting], ped_det + [found_sitting])
    assert result.ap("Pedestrian", "3d", "moderate") == pytest.approx(100.0, abs=1e-9)


def test_dair_protocol_folds_vehicle_types_into_car_and_drops_scores_up_to_045():
    gt = scenes.car_frames(50)
    det = [scenes.as_detections(frame, [0.9 - f / 1000]) for f, frame in enumerate(gt)]
    truck = _one("Truck")
    truck_found = scenes.as_detections(truck, [0.99], types=["Car"])
    dair = kitti_ap.evaluate(gt + [truck], det + [truck_found], protocol=DAIR_V2X_I)
    assert dair.num_gt[0].tolist() == [51] * 3
    assert _car_only(dair, "3d", "R40") == pytest.approx([100.0] * 3, abs=1e-9)
    kitti = kitti_ap.evaluate(gt + [truck], det + [truck_found], protocol=KITTI)
    assert kitti.num_gt[0].tolist() == [50] * 3
    assert _car_only(kitti, "3d", "R40") == pytest.approx([100.0 * 50 / 51] * 3, abs=1e-9)
    # BEVHeight's result2kitti writes only detections scored above 0.45: a hit at 0.45 becomes a miss
    # (49 of 50 found: precision 1 up to recall 0.98, so 39 of 40 samples)
    for score, expected in ((0.45, 97.5), (0.46, 100.0)):
        scored = [scenes.as_detections(gt[0], [score])] + det[1:]
        assert kitti_ap.evaluate(gt, scored, protocol=DAIR_V2X_I).ap("Car", "3d", "hard") == pytest.approx(expected)
        assert kitti_ap.evaluate(gt, scored, protocol=KITTI).ap("Car", "3d", "hard") == pytest.approx(100.0)


def test_dair_protocol_ignores_every_truncated_object():
    # DAIR's truncated_state is 0, 1 or 2: state 1 exceeds even hard's 0.5
    gt = scenes.car_frames(3)
    gt[1] = scenes.labels(("Car",), [scenes.PLACES["Car"]], [scenes.SIZES["Car"]], [0.0], [scenes.BOXES_2D["Car"]],
                          truncated=[1.0])
    result = kitti_ap.evaluate(gt, [scenes.no_detections()] * 3, protocol=DAIR_V2X_I)
    assert result.num_gt[0].tolist() == [2, 2, 2]


# few frames: classes with fewer than 40 ground truths (the devkit's short threshold lists);
# 80 frames: enough for all 41 sample points
@pytest.mark.parametrize("protocol, seed, n_frames", [(KITTI, 1, 14), (KITTI, 2, 14), (KITTI, 4, 80),
                                                      (DAIR_V2X_I, 3, 14), (DAIR_V2X_I, 5, 80)])
def test_matches_the_literal_devkit_reference_on_random_scenes(protocol, seed, n_frames):
    rng = np.random.default_rng(seed)
    gt, det = scenes.random_scene(rng, n_frames)
    result = kitti_ap.evaluate(gt, det, protocol=protocol)
    checked = 0
    for c, cls in enumerate(CLASSES):
        for m, metric in enumerate(METRICS):
            for d in range(3):
                for o, overlaps in enumerate(OVERLAP_SETS):
                    min_overlap = protocol.min_overlaps[overlaps][metric][cls]
                    r11, r40, precision, recall = reference_ap(
                        gt, det, cls, metric, d, min_overlap, neighbours=protocol.neighbours.get(cls, ()),
                        gt_fold=dict(protocol.gt_types), min_score=protocol.min_score)
                    assert result.ap(cls, metric, DIFFICULTIES[d], "R11", overlaps) == pytest.approx(r11, abs=1e-9)
                    assert result.ap(cls, metric, DIFFICULTIES[d], "R40", overlaps) == pytest.approx(r40, abs=1e-9)
                    np.testing.assert_allclose(result.precision[c, m, o, d], precision, atol=1e-12)
                    np.testing.assert_allclose(result.recall[c, m, o, d], recall, atol=1e-12)
                    checked += r40 > 0
    assert checked > 20                       # the scene is not trivially all-zero


def test_results_read_out_under_mmdet3d_key_names():
    gt = [scenes.one_of_each() for _ in range(50)]
    det = [scenes.as_detections(frame, [0.9 - f / 1000] * 3) for f, frame in enumerate(gt)]
    det[0] = _with_extra(det[0], _far_car(0.99))
    result = kitti_ap.evaluate(gt, det)
    values = result.as_dict()
    assert values["KITTI/Car_3D_AP40_moderate_strict"] == result.ap("Car", "3d", "moderate", "R40", "strict")
    assert values["KITTI/Cyclist_BEV_AP11_hard_loose"] == result.ap("Cyclist", "bev", "hard", "R11", "loose")
    assert values["KITTI/Overall_2D_AP40_easy"] == pytest.approx(
        np.mean([result.ap(c, "bbox", "easy") for c in CLASSES]))
    assert len(values) == 2 * 3 * (3 * 2 * 3 + 3)
    text = result.report("R40")
    assert "Car AP40@0.70, 0.50, 0.50 (loose):" in text
    assert f"3d   AP40:{result.ap('Car', '3d', 'easy'):.4f}" in text


def test_bad_arguments_fail_clearly():
    gt = scenes.car_frames(2)
    with pytest.raises(ValueError, match="2 frames, detections 1"):
        kitti_ap.evaluate(gt, gt[:1])
    with pytest.raises(ValueError, match="frame 0 carry no scores"):
        kitti_ap.evaluate(gt, gt)
    with pytest.raises(ValueError, match="unknown metric 'aos'"):
        kitti_ap.evaluate(gt, [scenes.no_detections()] * 2, metrics=("aos",))
    result = kitti_ap.evaluate(gt, [scenes.no_detections()] * 2, metrics=("bev",))
    with pytest.raises(ValueError, match="unknown metric '3d'"):
        result.ap("Car", "3d", "easy")
    with pytest.raises(ValueError, match="sampling"):
        result.ap_table("R20")


def test_100_frames_of_20_boxes_take_well_under_a_few_seconds():
    rng = np.random.default_rng(9)
    gt, det = [], []
    for _ in range(100):
        types = list(rng.choice(CLASSES, 20))
        centre = np.column_stack([rng.uniform(-20, 20, 20), np.full(20, 1.6), rng.uniform(5, 60, 20)])
        dims = np.array([scenes.SIZES[t] for t in types])
        ry = rng.uniform(-np.pi, np.pi, 20)
        left, top = rng.uniform(0, 1100, 20), rng.uniform(100, 250, 20)
        bbox = np.column_stack([left, top, left + 80, top + rng.uniform(20, 90, 20)])
        gt.append(scenes.labels(types, centre, dims, ry, bbox, occluded=rng.integers(0, 3, 20)))
        det.append(scenes.labels(types, centre + rng.normal(0, 0.3, (20, 3)), dims, ry,
                                 bbox + rng.normal(0, 3, (20, 4)), score=rng.uniform(0, 1, 20)))
    start = time.perf_counter()
    result = kitti_ap.evaluate(gt, det)
    elapsed = time.perf_counter() - start
    assert 0.0 < result.ap("Car", "bev", "moderate", "R40", "loose") < 100.0
    assert elapsed < 5.0, f"evaluation took {elapsed:.2f} s"


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_has_a_protocol_over_its_classes(preset):
    cfg = load_config(preset_config_path(preset))
    protocol = kitti_ap.PROTOCOLS[cfg["preset"]]
    assert protocol.classes == tuple(cfg["class_names"])
    for overlap_set in OVERLAP_SETS:
        for metric in METRICS:
            assert set(protocol.min_overlaps[overlap_set][metric]) >= set(protocol.classes)
