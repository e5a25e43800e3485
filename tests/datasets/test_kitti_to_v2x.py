"""KITTI -> V2X mirror (guide §2.2.2): links, calib JSONs, and LiDAR boxes equal to the known truth.

Two truths: the generator's scenes (synthetic KITTI set: raw -> mmdet3d infos -> V2X infos -> boxes),
and hand-written frames (fixtures/kitti_mini) whose boxes are worked out here with the KITTI devkit's
corner formula, independently of v2xfusion_perception.boxes.
"""
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from v2xfusion_perception.config import load_config, preset_config_path
from v2xfusion_perception.errors import DatasetError
from v2xfusion_tools.cli import main
from v2xfusion_tools.datasets.kitti_infos import create_kitti_infos
from v2xfusion_tools.datasets.kitti_to_v2x import convert_kitti_to_v2x
from v2xfusion_tools.datasets.v2x_infos import load_v2x_infos, v2x_frame
from v2xfusion_tools.synth import generate
from v2xfusion_tools.synth.frame import rig_for, simulate_frame

KITTI = Path(__file__).parent / "fixtures" / "kitti_mini"
SEED, FRAMES = 5, 3
CENTRE_TOLERANCE, YAW_TOLERANCE = 1e-3, 1e-5


def _angle_gap(a, b):
    return np.abs((np.asarray(a) - np.asarray(b) + np.pi) % (2 * np.pi) - np.pi)


def _lidar2cam(path: Path) -> np.ndarray:
    values = {}
    for line in path.read_text().splitlines():
        if line.strip():
            key, rest = line.split(":")
            values[key] = np.array([float(v) for v in rest.split()])
    r0, tr = np.eye(4), np.eye(4)
    r0[:3, :3] = values["R0_rect"].reshape(3, 3)
    tr[:3, :] = values["Tr_velo_to_cam"].reshape(3, 4)
    return r0 @ tr


def _devkit_lidar_box(fields: list[str], lidar2cam: np.ndarray) -> np.ndarray:
    """(x, y, z, l, w, h, yaw) of a label line as mmdet3d's Box3DMode turns it into a LiDAR box: the bottom
    centre maps through inv(lidar2cam) and the box stands on it along LiDAR z (a real R0_rect tilts camera
    y by ~0.5°, so the camera cuboid's own centre would sit ~1 cm aside); the heading is the devkit
    corners' front face (x = +l/2) minus back face, mapped into the LiDAR frame."""
    h, w, l = (float(v) for v in fields[8:11])
    loc, ry = np.array([float(v) for v in fields[11:14]]), float(fields[14])
    x = np.array([l, l, -l, -l, l, l, -l, -l]) / 2
    y = np.array([0, 0, 0, 0, -h, -h, -h, -h])
    z = np.array([w, -w, -w, w, w, -w, -w, w]) / 2
    rot = np.array([[np.cos(ry), 0, np.sin(ry)], [0, 1, 0], [-np.sin(ry), 0, np.cos(ry)]])
    corners = (rot @ np.stack([x, y, z])).T + loc
    cam2lidar = np.linalg.inv(lidar2cam)
    lidar = (cam2lidar @ np.c_[corners, np.ones(8)].T).T[:, :3]
    heading = lidar[[0, 1, 4, 5]].mean(axis=0) - lidar[[2, 3, 6, 7]].mean(axis=0)
    bottom = (cam2lidar @ np.append(loc, 1.0))[:3]
    return np.array([bottom[0], bottom[1], bottom[2] + h / 2, l, w, h, np.arctan2(heading[1], heading[0])])


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    """The hand-written KITTI frames with their mmdet3d infos, and their V2X mirror."""
    src = tmp_path_factory.mktemp("kitti_src") / "kitti"
    shutil.copytree(KITTI, src)
    create_kitti_infos(src)
    dst = tmp_path_factory.mktemp("kitti_dst") / "kitti-v2x"
    summary = convert_kitti_to_v2x(src, dst)
    return src, dst, summary


def test_links_point_at_the_source_folders(mirror):
    src, dst, summary = mirror
    expected = {"image": "training/image_2", "velodyne": "training/velodyne", "training/image_2": "training/image_2",
                "training/velodyne": "training/velodyne", "training/label_2": "training/label_2",
                "training/calib": "training/calib", "testing/image_2": "testing/image_2",
                "testing/velodyne": "testing/velodyne", "testing/calib": "testing/calib"}
    for link, target in expected.items():
        assert (dst / link).is_symlink() and Path(os.readlink(dst / link)) == (src / target).resolve()
    assert len(summary.links) == len(expected)
    assert not (dst / "training" / "planes").exists()


def test_calib_json_per_training_frame_holds_r0_rect_times_tr_velo_to_cam(mirror):
    src, dst, summary = mirror
    jsons = sorted((dst / "calib" / "virtuallidar_to_camera").glob("*.json"))
    assert [p.stem for p in jsons] == ["000000", "000001"] and summary.calib_files == 2
    for path in jsons:
        data = json.loads(path.read_text())
        expected = _lidar2cam(src / "training" / "calib" / f"{path.stem}.txt")
        assert np.allclose(data["rotation"], expected[:3, :3], atol=1e-12)
        assert np.array(data["translation"]).shape == (3, 1)
        assert np.allclose(np.ravel(data["translation"]), expected[:3, 3], atol=1e-12)


def test_boxes_at_several_yaws_match_the_devkit_corners_under_a_real_calibration(mirror):
    src, dst, _ = mirror
    info = load_v2x_infos(dst / "kitti_infos_train.pkl")[0]
    frame = v2x_frame(info)
    lines = [f for f in (line.split() for line in (src / "training/label_2/000000.txt").read_text().splitlines())
             if f[0] in ("Car", "Pedestrian", "Cyclist")]             # Van and DontCare stay out
    expected = np.stack([_devkit_lidar_box(f, _lidar2cam(src / "training/calib/000000.txt")) for f in lines])
    assert frame.class_names == ("Car", "Pedestrian", "Cyclist", "Car")
    assert frame.categories == ("vehicle.car", "human.pedestrian.adult", "vehicle.bicycle", "vehicle.car")
    assert np.abs(frame.boxes[:, :3] - expected[:, :3]).max() < 1e-5
    assert np.allclose(frame.boxes[:, 3:6], expected[:, 3:6])
    assert _angle_gap(frame.boxes[:, 6], expected[:, 6]).max() < 1e-5
    sizes = np.stack([a["size"] for a in info["ann_infos"]])
    assert np.allclose(sizes, expected[:, [4, 3, 5]])                # stored as (w, l, h)
    assert info["cam_infos"]["CAM_FRONT"]["filename"] == "image/000000.png" == info["sample_token"]
    assert info["lidar_infos"]["LIDAR_TOP"]["filename"] == "velodyne/000000.bin"
    assert (info["cam_infos"]["CAM_FRONT"]["width"], info["cam_infos"]["CAM_FRONT"]["height"]) == (1242, 375)


def test_axis_aligned_rig_gives_the_hand_derived_boxes(mirror):
    _, dst, _ = mirror
    frame = v2x_frame(load_v2x_infos(dst / "kitti_infos_val.pkl")[0])
    # camera (x, y, z) = LiDAR (-y, -z, x); centre = bottom centre raised by h / 2; yaw = -rotation_y - pi/2
    expected = np.array([
        [20.0, -2.0, -0.95, 4.0, 1.6, 1.5, -np.pi / 2],              # Car, rotation_y 0
        [10.0, -9.0, -0.85, 1.8, 0.6, 1.7, -1.57 - np.pi / 2],       # Cyclist, rotation_y 1.57
        [8.0, 0.0, -0.775, 0.8, 0.6, 1.75, 3.0 - np.pi / 2],         # Pedestrian, rotation_y -3.0
    ])
    assert np.allclose(frame.boxes[:, :6], expected[:, :6], atol=1e-6)
    assert _angle_gap(frame.boxes[:, 6], expected[:, 6]).max() < 1e-6
    assert list(frame.num_lidar_pts) == [3, 2, 1]
    assert np.allclose(frame.intrinsic, [[700, 0, 600], [0, 700, 180], [0, 0, 1]])


def test_every_split_is_converted_and_test_frames_point_into_testing(mirror):
    _, dst, summary = mirror
    assert {split: v[1] for split, v in summary.files.items()} == {"train": 1, "val": 1, "trainval": 2, "test": 1}
    test = load_v2x_infos(dst / "kitti_infos_test.pkl")[0]
    assert test["sample_token"] == "testing/image_2/000002.png" and test["ann_infos"] == []
    assert test["lidar_infos"]["LIDAR_TOP"]["filename"] == "testing/velodyne/000002.bin"
    assert (dst / test["sample_token"]).is_file()


def test_bad_roots_are_refused_with_the_fix(tmp_path, mirror):
    src, _, _ = mirror
    with pytest.raises(DatasetError, match="must differ"):
        convert_kitti_to_v2x(src, src)
    bare = tmp_path / "bare"
    shutil.copytree(KITTI, bare)
    with pytest.raises(DatasetError, match="kitti-infos"):
        convert_kitti_to_v2x(bare, tmp_path / "out")
    occupied = tmp_path / "occupied"
    (occupied / "image").mkdir(parents=True)
    with pytest.raises(DatasetError, match="not a symlink"):
        convert_kitti_to_v2x(src, occupied)


def test_cli_prints_what_it_wrote(tmp_path, capsys, mirror):
    src, _, _ = mirror
    with pytest.raises(SystemExit) as done:
        main(["data", "kitti-to-v2x", "--src-root", str(src), "--dst-root", str(tmp_path / "v2x")])
    assert done.value.code == 0
    printed = " ".join(capsys.readouterr().out.split())     # rich wraps long lines
    assert "2 calib/virtuallidar_to_camera JSONs" in printed and "trainval: 2 frames, 7 objects" in printed


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """A synthetic KITTI set taken raw -> mmdet3d infos -> V2X mirror."""
    cfg = load_config(preset_config_path("kitti"))
    root = tmp_path_factory.mktemp("kitti_synth")
    generate(cfg, "kitti", FRAMES, root, seed=SEED, workers=1)
    create_kitti_infos(root)
    dst = tmp_path_factory.mktemp("kitti_synth_v2x")
    convert_kitti_to_v2x(root, dst)
    return cfg, root, dst


def test_synthetic_round_trip_gives_the_generators_boxes(synthetic):
    cfg, root, dst = synthetic
    rig = rig_for(cfg["synthetic"], "kitti", SEED)
    infos = load_v2x_infos(dst / "kitti_infos_trainval.pkl")
    assert sorted(int(Path(i["lidar_infos"]["LIDAR_TOP"]["filename"]).stem) for i in infos) == list(range(FRAMES))
    matched = 0
    for info in infos:
        frame = v2x_frame(info)
        index = int(Path(frame.lidar_path).stem)
        scene = simulate_frame(rig, cfg["synthetic"]["scene"], list(cfg["class_names"]), SEED, index).scene
        label_lines = (root / "training" / "label_2" / f"{index:06d}.txt").read_text().splitlines()
        assert len(frame.boxes) == sum(1 for line in label_lines if not line.startswith("DontCare"))
        used = set()
        for box, name in zip(frame.boxes, frame.class_names):
            distance = np.linalg.norm(scene.boxes[:, :3] - box[:3], axis=1)
            j = int(distance.argmin())
            assert j not in used
            used.add(j)
            assert distance[j] < CENTRE_TOLERANCE
            assert _angle_gap(scene.boxes[j, 6], box[6]) < YAW_TOLERANCE
            assert np.allclose(scene.boxes[j, 3:6], box[3:6], atol=1e-6)
            assert scene.class_names[scene.classes[j]] == name
        matched += len(used)
        assert np.allclose(frame.lidar2cam, rig.lidar2cam, atol=1e-6)
    assert matched > 0
