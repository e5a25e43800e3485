"""Folders of label_2 / prediction txt files score exactly as the same frames in memory; bad folders
fail naming the file."""
import numpy as np
import pytest

from v2xfusion_perception.errors import DatasetError
from v2xfusion_tools.datasets import kitti_format
from v2xfusion_tools.datasets.kitti_format import KittiLabels
from v2xfusion_tools.evaluation import io, kitti_ap

from . import scenes


def _as_printed(labels: KittiLabels) -> KittiLabels:
    """The values a KITTI txt file holds: two decimals (four for a score), rounded as Python prints them."""
    def printed(values, decimals=2):
        return np.array([float(f"{v:.{decimals}f}") for v in np.ravel(values)]).reshape(np.shape(values))
    return KittiLabels(labels.types, printed(labels.truncated), labels.occluded, printed(labels.alpha),
                       printed(labels.bbox), printed(labels.dimensions), printed(labels.location),
                       printed(labels.rotation_y), None if labels.score is None else printed(labels.score, 4))


def _scene(seed=7, n_frames=30):
    gt, det = scenes.random_scene(np.random.default_rng(seed), n_frames)
    det[3] = scenes.no_detections()                      # a frame without detections: an empty file
    return [_as_printed(g) for g in gt], [_as_printed(d) for d in det]


def _write(tmp_path, gt, det, ids):
    gt_folder, pred_folder = tmp_path / "label_2", tmp_path / "pred"
    gt_folder.mkdir()
    for frame_id, labels in zip(ids, gt):
        kitti_format.write_labels(gt_folder / f"{frame_id}.txt", labels)
    io.write_predictions(pred_folder, dict(zip(ids, det)))
    return gt_folder, pred_folder


@pytest.mark.parametrize("protocol", [kitti_ap.KITTI, kitti_ap.DAIR_V2X_I])
def test_prediction_folder_scores_exactly_as_in_memory(tmp_path, protocol):
    gt, det = _scene()
    ids = [kitti_format.frame_id(3 * i + 1) for i in range(len(gt))]
    gt_folder, pred_folder = _write(tmp_path, gt, det, ids)
    assert (pred_folder / f"{ids[3]}.txt").read_text() == ""
    # 16 fields on every prediction line, the last the score
    line = (pred_folder / f"{ids[0]}.txt").read_text().splitlines()[0].split()
    assert len(line) == 16 and float(line[15]) == det[0].score[0]
    from_files = io.evaluate_folders(gt_folder, pred_folder, protocol=protocol)
    in_memory = kitti_ap.evaluate(gt, det, protocol=protocol)
    np.testing.assert_array_equal(from_files.precision, in_memory.precision)
    np.testing.assert_array_equal(from_files.recall, in_memory.recall)
    assert from_files.as_dict() == in_memory.as_dict()
    assert np.count_nonzero(in_memory.ap_table("R40")) > 20


def test_frame_ids_select_frames_and_default_to_the_prediction_files(tmp_path):
    gt, det = _scene(n_frames=12)
    ids = [kitti_format.frame_id(i) for i in range(len(gt))]
    gt_folder, pred_folder = _write(tmp_path, gt, det, ids)
    assert io.frame_ids_in(pred_folder) == ids
    half = ids[::2]
    selected = io.evaluate_folders(gt_folder, pred_folder, frame_ids=half)
    expected = kitti_ap.evaluate(gt[::2], det[::2])
    np.testing.assert_array_equal(selected.precision, expected.precision)
    # extra ground-truth files (frames not predicted) are not read by default
    (pred_folder / f"{ids[1]}.txt").unlink()
    remaining = [i for k, i in enumerate(ids) if k != 1]
    default = io.evaluate_folders(gt_folder, pred_folder)
    np.testing.assert_array_equal(
        default.precision, kitti_ap.evaluate([g for k, g in enumerate(gt) if k != 1],
                                             [d for k, d in enumerate(det) if k != 1]).precision)
    assert io.frame_ids_in(pred_folder) == remaining


def test_missing_and_malformed_files_fail_naming_the_file(tmp_path):
    gt, det = _scene(n_frames=4)
    ids = [kitti_format.frame_id(i) for i in range(4)]
    gt_folder, pred_folder = _write(tmp_path, gt, det, ids)
    (gt_folder / f"{ids[2]}.txt").unlink()
    with pytest.raises(DatasetError, match=rf"label_2/{ids[2]}\.txt: ground-truth label file is missing"):
        io.evaluate_folders(gt_folder, pred_folder)
    (pred_folder / f"{ids[1]}.txt").unlink()
    with pytest.raises(DatasetError, match=rf"pred/{ids[1]}\.txt: prediction file is missing"):
        io.evaluate_folders(gt_folder, pred_folder, frame_ids=[ids[0], ids[1]])
    kitti_format.write_labels(pred_folder / f"{ids[0]}.txt", gt[0])      # label_2 lines: no score
    with pytest.raises(DatasetError, match=rf"{ids[0]}\.txt: prediction lines have 15 fields"):
        io.read_predictions(pred_folder, [ids[0]])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match="holds no prediction txt files"):
        io.evaluate_folders(gt_folder, empty)
    with pytest.raises(DatasetError, match="not a folder"):
        io.frame_ids_in(tmp_path / "absent")
    with pytest.raises(ValueError, match="frame 000000 carry no scores"):
        io.write_predictions(tmp_path / "out", {ids[0]: gt[0]})
