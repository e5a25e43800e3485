"""DAIR-V2X-I native JSON files: written exactly as design.md §6 describes, read back, bad files named."""
import json

import numpy as np
import pytest

from v2xfusion_perception.errors import DatasetError
from v2xfusion_tools.datasets import dair_format


def _labels() -> dair_format.DairLabels:
    return dair_format.DairLabels(
        types=("Car", "Pedestrian"), occluded_state=np.array([0, 1]), truncated_state=np.array([1, 0]),
        alpha=np.array([0.25, -1.0]), box2d=np.array([[0.0, 300.5, 210.0, 420.0], [900.0, 400.0, 930.0, 480.0]]),
        centre=np.array([[30.5, -4.25, -3.4], [41.0, 7.5, -3.3]]),
        size_wlh=np.array([[1.8, 4.6, 1.5], [0.6, 0.8, 1.73]]), rotation=np.array([0.3, -2.9]))


def test_label_file_is_a_list_of_dair_objects(tmp_path):
    path = tmp_path / "000009.json"
    dair_format.write_labels(path, _labels())
    objects = json.loads(path.read_text())
    car = objects[0]
    assert set(car) == {"type", "occluded_state", "truncated_state", "alpha", "2d_box", "3d_dimensions",
                        "3d_location", "rotation"}
    assert car["type"] == "Car" and car["occluded_state"] == 0 and car["truncated_state"] == 1
    assert car["2d_box"] == {"xmin": 0.0, "ymin": 300.5, "xmax": 210.0, "ymax": 420.0}
    assert car["3d_dimensions"] == {"h": 1.5, "w": 1.8, "l": 4.6}
    assert car["3d_location"] == {"x": 30.5, "y": -4.25, "z": -3.4}
    assert car["rotation"] == 0.3
    back = dair_format.read_labels(path)
    assert back.types == ("Car", "Pedestrian")
    boxes = back.lidar_boxes()
    assert np.allclose(boxes[0], [30.5, -4.25, -3.4, 4.6, 1.8, 1.5, 0.3])    # dx = l, dy = w, dz = h
    assert np.allclose(boxes[1], [41.0, 7.5, -3.3, 0.8, 0.6, 1.73, -2.9])


def test_label_numbers_spelled_as_strings_are_read(tmp_path):
    path = tmp_path / "000001.json"
    path.write_text(json.dumps([{
        "type": "Van", "occluded_state": "0", "truncated_state": 0, "alpha": "1.2",
        "2d_box": {"xmin": "10", "ymin": "20", "xmax": "30", "ymax": "40"},
        "3d_dimensions": {"h": "1.9", "w": "1.95", "l": "4.9"},
        "3d_location": {"x": "50.1", "y": "-2", "z": "-4"}, "rotation": "1.5"}]))
    labels = dair_format.read_labels(path)
    assert labels.types == ("Van",)
    assert np.allclose(labels.lidar_boxes(), [[50.1, -2.0, -4.0, 4.9, 1.95, 1.9, 1.5]])


@pytest.mark.parametrize("change, message", [
    (lambda o: o["3d_dimensions"].pop("h"), "field '3d_dimensions.h' missing"),
    (lambda o: o.__setitem__("rotation", "north"), "field 'rotation' must be a number"),
    (lambda o: o.pop("2d_box"), "field '2d_box' missing"),
    (lambda o: o.__setitem__("type", ""), "field 'type' must be a non-empty string"),
])
def test_bad_label_names_file_object_and_field(tmp_path, change, message):
    path = tmp_path / "000002.json"
    dair_format.write_labels(path, _labels())
    objects = json.loads(path.read_text())
    change(objects[1])
    path.write_text(json.dumps(objects))
    with pytest.raises(DatasetError, match=message) as error:
        dair_format.read_labels(path)
    assert str(path) in str(error.value) and "object 1" in str(error.value)


def test_malformed_json_and_wrong_top_level_are_dataset_errors(tmp_path):
    path = tmp_path / "000003.json"
    path.write_text('[{"type": "Car",')
    with pytest.raises(DatasetError, match="malformed JSON"):
        dair_format.read_labels(path)
    path.write_text('{"type": "Car"}')
    with pytest.raises(DatasetError, match="must be a list of objects"):
        dair_format.read_labels(path)


def test_camera_intrinsic_is_nine_row_major_numbers(tmp_path):
    k = np.array([[2180.0, 0.0, 960.0], [0.0, 2170.0, 540.0], [0.0, 0.0, 1.0]])
    path = tmp_path / "000000.json"
    dair_format.write_camera_intrinsic(path, dair_format.CameraIntrinsic(cam_K=k, cam_D=np.array([-0.1, 0.01, 0, 0, 0])))
    raw = json.loads(path.read_text())
    assert raw["cam_K"] == [2180.0, 0.0, 960.0, 0.0, 2170.0, 540.0, 0.0, 0.0, 1.0]
    assert len(raw["cam_D"]) == 5
    read = dair_format.read_camera_intrinsic(path)
    assert np.array_equal(read.cam_K, k) and np.allclose(read.cam_D, [-0.1, 0.01, 0, 0, 0])
    raw["cam_K"] = raw["cam_K"][:8]
    path.write_text(json.dumps(raw))
    with pytest.raises(DatasetError, match="'cam_K' must hold 9 numbers, got 8"):
        dair_format.read_camera_intrinsic(path)


def test_rigid_transform_has_3x3_rotation_and_3x1_translation(tmp_path):
    angle = 0.4
    matrix = np.eye(4)
    matrix[:3, :3] = [[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]]
    matrix[:3, 3] = [1.5, -2.0, 4.2]
    path = tmp_path / "000000.json"
    dair_format.write_rigid(path, matrix, extra={"relative_error": {"delta_x": 0.0, "delta_y": 0.0}})
    raw = json.loads(path.read_text())
    assert np.array(raw["rotation"]).shape == (3, 3) and raw["translation"] == [[1.5], [-2.0], [4.2]]
    point = np.array([3.0, 1.0, -2.0])
    assert np.allclose(np.array(raw["rotation"]) @ point + np.array(raw["translation"])[:, 0],
                       matrix[:3, :3] @ point + matrix[:3, 3])
    assert np.allclose(dair_format.read_rigid(path), matrix)


def test_data_info_requires_every_design_key(tmp_path):
    frame = {key: f"x/{key}" for key in dair_format.DATA_INFO_KEYS}
    path = tmp_path / "data_info.json"
    dair_format.write_data_info(path, [frame, frame])
    assert dair_format.read_data_info(path) == [frame, frame]
    broken = dict(frame)
    broken.pop("calib_virtuallidar_to_world_path")
    dair_format.write_data_info(path, [frame, broken])
    with pytest.raises(DatasetError, match="frame 1 lacks calib_virtuallidar_to_world_path"):
        dair_format.read_data_info(path)


def test_split_file_round_trip_and_checks_ids(tmp_path):
    path = tmp_path / "split.json"
    dair_format.write_split(path, {"train": ["000000", "000002"], "val": ["000001"]})
    assert json.loads(path.read_text()) == {"train": ["000000", "000002"], "val": ["000001"], "test": []}
    assert dair_format.read_split(path)["val"] == ["000001"]
    path.write_text(json.dumps({"train": [0, 1]}))
    with pytest.raises(DatasetError, match="split 'train' must be a list of frame id strings"):
        dair_format.read_split(path)
