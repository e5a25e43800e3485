"""Box agreement and AP (v2xfusion_tools/quantize/agreement.py) on hand-made boxes with known answers."""
import numpy as np
import pytest

from v2xfusion_tools.quantize.agreement import agreement, average_precision
from v2xfusion_tools.quantize.detections import FrameBoxes


def _frame(rows, scores, labels) -> FrameBoxes:
    return FrameBoxes(np.asarray(rows, np.float32).reshape(-1, 7), np.asarray(scores, np.float32),
                      np.asarray(labels, np.int64))


CAR_A = [10.0, 0.0, -1.0, 4.0, 2.0, 1.5, 0.0]
CAR_B = [20.0, 5.0, -1.0, 4.0, 2.0, 1.5, 0.5]


def test_identical_boxes_agree_fully_and_shifted_or_relabelled_ones_do_not():
    reference = [_frame([CAR_A, CAR_B], [0.9, 0.8], [0, 0])]
    assert agreement(reference, reference, 3).match_rate == 1.0
    assert agreement(reference, reference, 3).ap == pytest.approx(100.0)
    shifted = [_frame([[10.5, 0.0, -1.0, 4.0, 2.0, 1.5, 0.0], CAR_B], [0.9, 0.8], [0, 0])]  # IoU 3.5/4.5 = 0.78
    assert agreement(reference, shifted, 3).matched == 2
    far = [_frame([[11.0, 0.0, -1.0, 4.0, 2.0, 1.5, 0.0], CAR_B], [0.9, 0.8], [0, 0])]  # IoU 3/5 = 0.6
    assert agreement(reference, far, 3).matched == 1
    relabelled = [_frame([CAR_A, CAR_B], [0.9, 0.8], [0, 2])]
    result = agreement(reference, relabelled, 3)
    assert (result.matched, result.match_rate, result.candidate_boxes) == (1, 0.5, 2)


def test_one_candidate_matches_one_reference_box():
    reference = [_frame([CAR_A], [0.9], [0])]
    doubled = [_frame([CAR_A, CAR_A], [0.9, 0.7], [0, 0])]
    result = agreement(reference, doubled, 3)
    assert result.matched == 1
    assert result.ap == pytest.approx(100.0)  # the extra box ranks below the hit: precision 1 up to recall 1


def test_r40_ap_of_a_known_ranking():
    # hit, miss, hit against two references: precision 1 up to recall 0.5, then 2/3 up to recall 1
    ap = average_precision(np.array([0.9, 0.8, 0.7]), np.array([True, False, True]), 2)
    assert ap == pytest.approx((20 * 1.0 + 20 * (2 / 3)) / 40 * 100)
    assert np.isnan(average_precision(np.zeros(0), np.zeros(0, dtype=bool), 0))


def test_frame_counts_must_agree():
    with pytest.raises(ValueError, match="frames"):
        agreement([_frame([CAR_A], [0.9], [0])], [], 3)
