"""The V2X infos schema: an asymmetric box through writer and reader, read back as V2XDataset reads it."""
import pickle

import numpy as np
import pytest
from pyquaternion import Quaternion

from v2xfusion_perception.errors import DatasetError
from v2xfusion_tools.datasets.v2x_infos import ground_denorm, load_v2x_infos, make_v2x_info, v2x_frame, write_v2x_infos

# a pitched camera 0.4 m above the LiDAR, looking along +x (rows: camera x, y, z in LiDAR coordinates)
PITCH = np.deg2rad(10.0)
LIDAR2CAM = np.array([[0.0, -1.0, 0.0, 0.0],
                      [-np.sin(PITCH), 0.0, -np.cos(PITCH), 0.4],
                      [np.cos(PITCH), 0.0, -np.sin(PITCH), 0.0],
                      [0.0, 0.0, 0.0, 1.0]])
INTRINSIC = np.array([[2000.0, 0.0, 960.0], [0.0, 2000.0, 540.0], [0.0, 0.0, 1.0]])
YAWS = (0.0, 0.4, np.pi / 2, -2.7, 3.1)
# length 4.5 along the heading, width 1.8, height 1.5: l != w, so a swap shows
BOXES = np.array([[20.0 + i, -3.0 + i, -2.5, 4.5, 1.8, 1.5, yaw] for i, yaw in enumerate(YAWS)])


def _info(boxes=BOXES):
    return make_v2x_info(
        sample_token="image/000042.jpg", lidar_filename="velodyne/000042.pcd", image_size=(1920, 1080),
        timestamp=1_626_155_192_000_000, camera_timestamp=1_626_155_192_015_000, lidar2cam=LIDAR2CAM,
        intrinsic=INTRINSIC, boxes=boxes, categories=["vehicle.car"] * len(boxes),
        num_lidar_pts=np.arange(len(boxes)), visibility=["0"] * len(boxes))


def _v2x_dataset_box(ann: dict) -> np.ndarray:
    """What CUDA-V2XFusion's V2XDataset.get_gt builds: nuScenes Box(translation, size, rotation) with
    Box.wlh = size, then (x, y, z, wlh[1], wlh[0], wlh[2], orientation.yaw_pitch_roll[0])."""
    wlh = np.asarray(ann["size"], dtype=np.float64)
    yaw = Quaternion(ann["rotation"]).yaw_pitch_roll[0]
    return np.concatenate([np.asarray(ann["translation"]), wlh[[1, 0, 2]], [yaw]])


def test_writer_stores_wlh_centre_and_a_z_quaternion_that_v2xdataset_reads_back(tmp_path):
    path = tmp_path / "infos.pkl"
    write_v2x_infos(path, [_info()])
    info = load_v2x_infos(path)[0]
    for ann, box in zip(info["ann_infos"], BOXES):
        assert np.allclose(ann["size"], [1.8, 4.5, 1.5])             # (w, l, h)
        assert np.allclose(ann["translation"], box[:3])
        assert isinstance(ann["rotation"], Quaternion)
        assert np.allclose(ann["rotation"].elements[1:3], 0.0)          # a rotation about z only
        got = _v2x_dataset_box(ann)
        assert np.allclose(got[:6], box[:6], atol=1e-12)
        assert abs((got[6] - box[6] + np.pi) % (2 * np.pi) - np.pi) < 1e-12


def test_typed_view_gives_internal_boxes_calibration_and_classes(tmp_path):
    path = tmp_path / "infos.pkl"
    write_v2x_infos(path, [_info()])
    frame = v2x_frame(load_v2x_infos(path)[0], source=path)
    assert frame.image_path == "image/000042.jpg" and frame.lidar_path == "velodyne/000042.pcd"
    assert frame.image_size == (1920, 1080) and frame.timestamp == 1_626_155_192_000_000
    assert np.allclose(frame.boxes[:, :6], BOXES[:, :6], atol=1e-12)
    assert np.allclose(np.cos(frame.boxes[:, 6] - BOXES[:, 6]), 1.0, atol=1e-12)
    assert np.allclose(frame.lidar2cam, LIDAR2CAM, atol=1e-12)
    assert np.allclose(frame.lidar2img[:3], INTRINSIC @ LIDAR2CAM[:3], atol=1e-9)
    assert frame.class_names == ("Car",) * len(YAWS) and list(frame.num_lidar_pts) == list(range(len(YAWS)))


def test_calibrated_sensor_is_camera_to_lidar_and_denorm_is_bevheights(tmp_path):
    info = _info()
    sensor = info["cam_infos"]["CAM_FRONT"]["calibrated_sensor"]
    cam2lidar = np.linalg.inv(LIDAR2CAM)
    assert np.allclose(sensor["rotation_matrix"], cam2lidar[:3, :3])
    assert np.allclose(sensor["translation"], cam2lidar[:3, 3])
    assert np.allclose(sensor["camera_intrinsic"], INTRINSIC)
    # BEVHeight's equation_plane through LiDAR (0,0,0), (0,1,0), (1,1,0) mapped into the camera, negated
    p = (LIDAR2CAM @ np.array([[0, 0, 0, 1], [0, 1, 0, 1], [1, 1, 0, 1]], dtype=float).T).T[:, :3]
    a1, b1, c1 = p[1] - p[0]
    a2, b2, c2 = p[2] - p[0]
    a, b, c = b1 * c2 - b2 * c1, a2 * c1 - a1 * c2, a1 * b2 - b1 * a2
    expected = -np.array([a, b, c, -a * p[0, 0] - b * p[0, 1] - c * p[0, 2]])
    assert np.allclose(info["cam_infos"]["CAM_FRONT"]["denorm"], expected)
    assert np.allclose(ground_denorm(LIDAR2CAM), expected)
    # |d| / |n| is the camera's height above the LiDAR's z = 0 plane
    assert abs(abs(expected[3]) / np.linalg.norm(expected[:3]) - cam2lidar[2, 3]) < 1e-12


def test_bevheight_lwh_files_are_read_with_size_order_lwh():
    info = _info()
    for ann in info["ann_infos"]:
        ann["size"] = ann["size"][[1, 0, 2]]                          # BEVHeight's gen_info_dair: l, w, h
        yaw = ann["yaw_lidar"]
        ann["rotation"] = Quaternion(matrix=np.array([[np.cos(yaw), -np.sin(yaw), 0], [np.sin(yaw), np.cos(yaw), 0],
                                                      [0, 0, 1]]))
    boxes = v2x_frame(info, size_order="lwh").boxes
    assert np.allclose(boxes[:, 3:6], BOXES[:, 3:6])
    assert np.allclose(v2x_frame(info).boxes[:, 3:5], BOXES[:, [4, 3]])   # read as ours: l and w swap
    with pytest.raises(DatasetError, match="size_order"):
        v2x_frame(info, size_order="hwl")


def test_nuscenes_style_wxyz_camera_rotation_is_accepted():
    info = _info()
    sensor = info["cam_infos"]["CAM_FRONT"]["calibrated_sensor"]
    rotation = sensor.pop("rotation_matrix")
    sensor["rotation"] = list(Quaternion(matrix=rotation).elements)
    assert np.allclose(v2x_frame(info).lidar2cam, LIDAR2CAM, atol=1e-9)


def test_rotation_and_yaw_lidar_that_disagree_are_refused():
    info = _info()
    info["ann_infos"][1]["yaw_lidar"] += 0.1
    with pytest.raises(DatasetError, match=r"ann_infos\[1\].*disagree"):
        v2x_frame(info, source="x.pkl")


@pytest.mark.parametrize("edit, message", [
    (lambda infos: infos[0].pop("ann_infos"), "frame 0: missing ann_infos"),
    (lambda infos: infos[0]["cam_infos"].pop("CAM_FRONT"), "frame 0 cam_infos: missing CAM_FRONT"),
    (lambda infos: infos[0]["ann_infos"][2].pop("size"), r"frame 0 ann_infos\[2\]: missing size"),
    (lambda infos: infos[0]["lidar_infos"]["LIDAR_TOP"].pop("filename"), "LIDAR_TOP: missing filename"),
])
def test_a_broken_entry_is_named_by_file_frame_and_key(tmp_path, edit, message):
    infos = [_info()]
    edit(infos)
    path = tmp_path / "broken.pkl"
    write_v2x_infos(path, infos)
    with pytest.raises(DatasetError, match=message) as error:
        load_v2x_infos(path)
    assert "broken.pkl" in str(error.value)


def test_mmdet3d_infos_given_to_the_v2x_reader_say_how_to_convert(tmp_path):
    path = tmp_path / "kitti_infos_train.pkl"
    path.write_bytes(pickle.dumps({"metainfo": {}, "data_list": []}, protocol=2))
    with pytest.raises(DatasetError, match="kitti-to-v2x"):
        load_v2x_infos(path)
