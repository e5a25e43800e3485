"""KITTI raw files: what our writers produce parses with plain string / numpy code, and bad files fail clearly."""
import numpy as np
import pytest

from v2xfusion_perception import boxes as box_ops
from v2xfusion_perception.errors import DatasetError
from v2xfusion_tools.datasets import kitti_format


def _calib() -> kitti_format.KittiCalib:
    rng = np.random.default_rng(0)
    k = np.array([[721.5, 0.0, 609.6], [0.0, 721.5, 172.9], [0.0, 0.0, 1.0]])
    mats = {f"P{i}": k @ np.hstack([np.eye(3), [[0.06 * i], [0.0], [0.0]]]) for i in range(4)}
    angle = 0.01
    r0 = np.array([[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]])
    tr = np.hstack([[[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]], [[0.01], [-0.08], [-0.27]]])
    return kitti_format.KittiCalib(R0_rect=r0, Tr_velo_to_cam=tr,
                                   Tr_imu_to_velo=np.hstack([np.eye(3), rng.normal(size=(3, 1))]), **mats)


def _independent_calib(text: str) -> dict:
    values = {}
    for line in text.splitlines():
        if line.strip():
            key, rest = line.split(":", 1)
            values[key] = np.array([float(v) for v in rest.split()])
    return values


def test_calib_text_has_the_seven_kitti_lines_and_reads_back(tmp_path):
    calib = _calib()
    path = tmp_path / "000007.txt"
    kitti_format.write_calib(path, calib)
    parsed = _independent_calib(path.read_text())
    assert list(parsed) == ["P0", "P1", "P2", "P3", "R0_rect", "Tr_velo_to_cam", "Tr_imu_to_velo"]
    assert [len(v) for v in parsed.values()] == [12, 12, 12, 12, 9, 12, 12]
    assert np.allclose(parsed["P2"].reshape(3, 4), calib.P2, rtol=1e-12)
    again = kitti_format.read_calib(path)
    for key in kitti_format.CALIB_SHAPES:
        assert np.allclose(getattr(again, key), getattr(calib, key), rtol=1e-11, atol=1e-14)
    # lidar2cam is R0_rect @ Tr_velo_to_cam, both padded to 4x4
    r0 = np.eye(4)
    r0[:3, :3] = parsed["R0_rect"].reshape(3, 3)
    tr = np.eye(4)
    tr[:3, :] = parsed["Tr_velo_to_cam"].reshape(3, 4)
    assert np.allclose(again.lidar2cam, r0 @ tr)
    p2 = np.eye(4)
    p2[:3, :] = parsed["P2"].reshape(3, 4)
    assert np.allclose(again.lidar2img, p2 @ r0 @ tr)


def test_calib_accepts_kitti_tracking_key_spellings():
    text = kitti_format.format_calib(_calib())
    text = text.replace("R0_rect:", "R_rect:").replace("Tr_velo_to_cam:", "Tr_velo_cam:").replace(
        "Tr_imu_to_velo:", "Tr_imu_velo:")
    calib = kitti_format.parse_calib(text, "tracking.txt")
    assert np.allclose(calib.R0_rect, _calib().R0_rect)


@pytest.mark.parametrize("edit, message", [
    (lambda t: "\n".join(line for line in t.splitlines() if not line.startswith("R0_rect")), "R0_rect"),
    (lambda t: t.replace("Tr_velo_to_cam: ", "Tr_velo_to_cam: 1 "), "expected 12 numbers, got 13"),
    (lambda t: t.replace("P2: ", "P2: x"), "P2: holds a non-number"),
    (lambda t: t.replace("P0:", "P0"), "expected 'KEY: numbers'"),
])
def test_bad_calib_names_file_and_field(tmp_path, edit, message):
    path = tmp_path / "000001.txt"
    path.write_text(edit(kitti_format.format_calib(_calib())))
    with pytest.raises(DatasetError, match=message) as error:
        kitti_format.read_calib(path)
    assert str(path) in str(error.value)


def _labels() -> kitti_format.KittiLabels:
    return kitti_format.KittiLabels(
        types=("Car", "Pedestrian", "DontCare"), truncated=np.array([0.0, 0.25, -1.0]),
        occluded=np.array([0, 2, -1]), alpha=np.array([-1.57, 0.5, -10.0]),
        bbox=np.array([[100.0, 150.0, 300.5, 250.25], [700.0, 160.0, 720.0, 220.0], [10.0, 170.0, 30.0, 180.0]]),
        dimensions=np.array([[1.52, 1.63, 4.12], [1.73, 0.62, 0.81], [-1.0, -1.0, -1.0]]),
        location=np.array([[2.35, 1.65, 25.14], [-4.5, 1.7, 30.0], [-1000.0, -1000.0, -1000.0]]),
        rotation_y=np.array([-1.48, 0.35, -10.0]))


def test_label_lines_have_the_15_kitti_fields_in_order(tmp_path):
    path = tmp_path / "000003.txt"
    kitti_format.write_labels(path, _labels())
    rows = [line.split(" ") for line in path.read_text().splitlines()]
    assert [len(r) for r in rows] == [15, 15, 15]
    car = rows[0]
    assert car[0] == "Car" and car[1] == "0.00" and car[2] == "0" and float(car[3]) == -1.57
    assert [float(v) for v in car[4:8]] == [100.0, 150.0, 300.5, 250.25]
    assert [float(v) for v in car[8:11]] == [1.52, 1.63, 4.12]          # h w l
    assert [float(v) for v in car[11:14]] == [2.35, 1.65, 25.14]         # x y z (bottom centre)
    assert float(car[14]) == -1.48
    assert rows[2][:4] == ["DontCare", "-1.00", "-1", "-10.00"]
    back = kitti_format.read_labels(path)
    assert back.types == _labels().types and back.score is None
    assert np.array_equal(back.occluded, [0, 2, -1])
    assert np.allclose(back.dimensions, _labels().dimensions) and np.allclose(back.bbox, _labels().bbox)


def test_label_with_scores_has_16_fields_and_negative_zero_is_written_plain(tmp_path):
    labels = _labels()
    scored = kitti_format.KittiLabels(**{**labels.__dict__, "score": np.array([0.9, 0.4567, 0.1]),
                                         "alpha": np.array([-0.001, 0.5, -10.0])})
    path = tmp_path / "000004.txt"
    kitti_format.write_labels(path, scored)
    rows = [line.split() for line in path.read_text().splitlines()]
    assert all(len(r) == 16 for r in rows) and rows[1][15] == "0.4567" and rows[0][3] == "0.00"
    assert np.allclose(kitti_format.read_labels(path).score, [0.9, 0.4567, 0.1])


def test_label_converts_to_the_lidar_box_with_length_along_heading():
    lidar2cam = np.eye(4)
    lidar2cam[:3, :3] = [[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]]
    car = _labels().select(np.array([True, False, False]))
    box = car.lidar_boxes(lidar2cam)[0]
    assert np.allclose(box[3:6], [4.12, 1.63, 1.52])
    assert np.isclose(box[6], box_ops.wrap_yaw(-(-1.48) - np.pi / 2))
    assert np.allclose(box[:3], [25.14, -2.35, -1.65 + 1.52 / 2])


@pytest.mark.parametrize("line, message", [
    ("Car 0.00 0 -1.57 100 150 300 250 1.5 1.6 4.1 2.3 1.6", "has 13 fields"),
    ("Car 0.00 0 -1.57 100 150 300 250 1.5 1.6 4.1 2.3 1.6 25.1 abc", "'rotation_y' is not a number"),
    ("Car 0.00 0.5 -1.57 100 150 300 250 1.5 1.6 4.1 2.3 1.6 25.1 0.1", "'occluded' must be an integer"),
])
def test_bad_label_names_file_line_and_field(tmp_path, line, message):
    path = tmp_path / "000005.txt"
    path.write_text("Car 0.00 0 -1.57 100 150 300 250 1.5 1.6 4.1 2.3 1.6 25.1 0.1\n" + line + "\n")
    with pytest.raises(DatasetError, match=message) as error:
        kitti_format.read_labels(path)
    assert str(path) in str(error.value) and "line 2" in str(error.value)


def test_velodyne_is_little_endian_float32_quadruples(tmp_path):
    points = np.random.default_rng(1).normal(size=(1000, 4)).astype(np.float32)
    path = tmp_path / "000000.bin"
    kitti_format.write_velodyne(path, points)
    assert path.stat().st_size == 1000 * 16
    assert np.array_equal(np.fromfile(path, dtype="<f4").reshape(-1, 4), points)
    assert np.array_equal(kitti_format.read_velodyne(path), points)
    path.write_bytes(path.read_bytes()[:-6])
    with pytest.raises(DatasetError, match="not a whole number of 16-byte") as error:
        kitti_format.read_velodyne(path)
    assert str(path) in str(error.value)


def test_image_sets_round_trip_and_reject_non_ids(tmp_path):
    path = tmp_path / "train.txt"
    kitti_format.write_image_set(path, ["000000", "000003", "000010"])
    assert path.read_text() == "000000\n000003\n000010\n"
    assert kitti_format.read_image_set(path) == ["000000", "000003", "000010"]
    path.write_text("000001\nframe2\n")
    with pytest.raises(DatasetError, match="'frame2' is not a frame number"):
        kitti_format.read_image_set(path)


def test_missing_file_is_a_dataset_error(tmp_path):
    with pytest.raises(DatasetError, match="cannot read calib file"):
        kitti_format.read_calib(tmp_path / "nope.txt")
