"""DAIR-V2X-I preparation (guide §2.1): V2X infos and the KITTI-format mirror, against known values.

fixtures/dair_mini: frame 000000 (ASCII PCD; Car with numbers spelled as strings, Truck, Trafficcone,
Pedestrian) and 000001 (binary PCD; Van, Cyclist, a Car of zero length), a camera pitched 10° down;
fixtures/pcd: a binary_compressed PCD and one without intensity. The synthetic DAIR set checks the boxes
against the generator's scenes.
"""
import json
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from v2xfusion_perception.config import load_config, preset_config_path
from v2xfusion_perception.errors import DatasetError
from v2xfusion_tools.cli import main
from v2xfusion_tools.datasets import kitti_format
from v2xfusion_tools.datasets.dair_prepare import default_kitti_root, prepare_dair
from v2xfusion_tools.datasets.v2x_infos import load_v2x_infos, v2x_frame
from v2xfusion_tools.synth import generate
from v2xfusion_tools.synth.frame import rig_for, simulate_frame

FIXTURES = Path(__file__).parent / "fixtures"
DAIR = FIXTURES / "dair_mini"
SEED, FRAMES = 3, 3


def _angle_gap(a, b):
    return np.abs((np.asarray(a) - np.asarray(b) + np.pi) % (2 * np.pi) - np.pi)


def _pcd_points(path: Path) -> np.ndarray:
    """Plain PCD parse for x y z intensity float32 files, ascii or binary."""
    raw = path.read_bytes()
    end = raw.index(b"DATA")
    body_start = raw.index(b"\n", end) + 1
    count = int(next(line.split()[1] for line in raw[:end].decode().splitlines() if line.startswith("POINTS")))
    if raw[end:body_start].split()[1] == b"ascii":
        return np.array([[float(v) for v in line.split()] for line in raw[body_start:].decode().splitlines()
                         if line.strip()], dtype=np.float32)
    return np.array(struct.unpack(f"<{4 * count}f", raw[body_start:body_start + 16 * count]),
                    dtype=np.float32).reshape(count, 4)


def _calib_matrices(path: Path) -> dict[str, np.ndarray]:
    out = {}
    for line in path.read_text().splitlines():
        if line.strip():
            key, rest = line.split(":")
            out[key] = np.array([float(v) for v in rest.split()])
    return out


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("dair") / "dair-v2x-i"
    shutil.copytree(DAIR, root)
    summary = prepare_dair(root)
    return root, summary


def test_infos_hold_the_camera_labels_with_counted_points(prepared):
    root, summary = prepared
    assert summary.kitti_root == default_kitti_root(root) == root.parent / "dair-v2x-i-kitti"
    train, val = (load_v2x_infos(root / f"dair_12hz_infos_{s}.pkl") for s in ("train", "val"))
    assert len(train) == len(val) == 1
    frame = v2x_frame(train[0])
    assert frame.categories == ("vehicle.car", "vehicle.truck", "human.pedestrian.adult")   # no Trafficcone
    assert frame.class_names == ("Car", "Car", "Pedestrian")
    expected = np.array([[20.0, 2.0, -3.5, 4.5, 1.8, 1.5, 0.3], [30.0, -5.0, -3.0, 8.0, 2.5, 3.0, -2.0],
                         [12.0, 0.8, -3.6, 0.5, 0.6, 1.7, 2.5]])
    assert np.allclose(frame.boxes[:, :6], expected[:, :6])
    assert _angle_gap(frame.boxes[:, 6], expected[:, 6]).max() < 1e-12
    # hand count: three of the ASCII points in the Car (the fourth is 1.9 m across its 0.9 m half width),
    # one in the Truck, one at the Pedestrian's centre
    assert list(frame.num_lidar_pts) == [3, 1, 1]
    assert [a["visibility_token"] for a in train[0]["ann_infos"]] == ["0", "1", "2"]
    assert train[0]["ann_infos"][0]["size"].tolist() == [1.8, 4.5, 1.5]                   # (w, l, h)
    other = v2x_frame(val[0])
    assert other.class_names == ("Car", "Cyclist", "Car") and list(other.num_lidar_pts) == [2, 1, 0]


def test_infos_name_files_timestamps_and_calibration_as_bevheight(prepared):
    root, _ = prepared
    info = load_v2x_infos(root / "dair_12hz_infos_train.pkl")[0]
    assert info["sample_token"] == info["scene_token"] == "image/000000.jpg"
    assert info["lidar_infos"]["LIDAR_TOP"]["filename"] == "velodyne/000000.pcd"
    assert info["timestamp"] == 1626155192000000 and info["cam_infos"]["CAM_FRONT"]["timestamp"] == 1626155192015000
    assert info["sweeps"] == []
    frame = v2x_frame(info)
    extrinsic = json.loads((DAIR / "calib/virtuallidar_to_camera/000000.json").read_text())
    assert np.allclose(frame.lidar2cam[:3, :3], extrinsic["rotation"], atol=1e-12)
    assert np.allclose(frame.lidar2cam[:3, 3], np.ravel(extrinsic["translation"]), atol=1e-12)
    assert np.allclose(frame.intrinsic, np.reshape([1000.0, 0, 48, 0, 1000, 27, 0, 0, 1], (3, 3)))
    assert frame.image_size == (96, 54)
    assert all((root / name).is_file() for name in (frame.image_path, frame.lidar_path))


def test_mirror_velodyne_is_the_pcd_with_intensity_over_255(prepared):
    _, summary = prepared
    for frame_id in ("000000", "000001"):                    # ASCII and binary PCD
        points = _pcd_points(DAIR / "velodyne" / f"{frame_id}.pcd")
        written = np.fromfile(summary.kitti_root / "training" / "velodyne" / f"{frame_id}.bin", dtype="<f4")
        expected = points.copy()
        expected[:, 3] /= 255.0
        assert np.array_equal(written.reshape(-1, 4), expected)
    assert written.reshape(-1, 4)[2, 3] == np.float32(240.5) / np.float32(255.0)


def test_mirror_calib_is_what_dairs_gen_calib2kitti_writes(prepared):
    _, summary = prepared
    calib = _calib_matrices(summary.kitti_root / "training" / "calib" / "000000.txt")
    extrinsic = json.loads((DAIR / "calib/virtuallidar_to_camera/000000.json").read_text())
    rigid = np.hstack([np.array(extrinsic["rotation"]), np.array(extrinsic["translation"])]).ravel()
    projection = np.hstack([np.reshape([1000.0, 0, 48, 0, 1000, 27, 0, 0, 1], (3, 3)), np.zeros((3, 1))]).ravel()
    for key in ("P0", "P1", "P2", "P3"):
        assert np.allclose(calib[key], projection)
    assert np.allclose(calib["R0_rect"], np.eye(3).ravel())
    assert np.allclose(calib["Tr_velo_to_cam"], rigid) and np.allclose(calib["Tr_imu_to_velo"], rigid)


def test_mirror_labels_are_kitti_boxes_of_the_dair_objects(prepared):
    _, summary = prepared
    extrinsic = json.loads((DAIR / "calib/virtuallidar_to_camera/000000.json").read_text())
    rotation, translation = np.array(extrinsic["rotation"]), np.ravel(extrinsic["translation"])
    objects = json.loads((DAIR / "label/camera/000000.json").read_text())
    lines = [line.split() for line in (summary.kitti_root / "training/label_2/000000.txt").read_text().splitlines()]
    assert [f[0] for f in lines] == ["Car", "Car", "Trafficcone", "Pedestrian"]     # Truck folds into Car
    for fields, obj in zip(lines, objects):
        dims = {k: float(v) for k, v in obj["3d_dimensions"].items()}
        centre = np.array([float(obj["3d_location"][k]) for k in "xyz"])
        yaw = float(obj["rotation"])
        assert [float(v) for v in fields[8:11]] == pytest.approx([dims["h"], dims["w"], dims["l"]], abs=0.005)
        bottom_cam = rotation @ (centre - [0.0, 0.0, dims["h"] / 2]) + translation
        location = np.array([float(v) for v in fields[11:14]])
        assert location == pytest.approx(bottom_cam, abs=0.005)
        # KITTI's heading (cos ry, 0, -sin ry) seen from the LiDAR points along the DAIR yaw
        ry = float(fields[14])
        heading = np.linalg.solve(rotation, [np.cos(ry), 0.0, -np.sin(ry)])
        direction = heading[:2] / np.linalg.norm(heading[:2])
        assert direction == pytest.approx([np.cos(yaw), np.sin(yaw)], abs=0.01)
        assert float(fields[3]) == pytest.approx(ry - np.arctan2(location[0], location[2]), abs=0.01)
        assert (float(fields[1]), int(fields[2])) == (obj["truncated_state"], obj["occluded_state"])
        assert [float(v) for v in fields[4:8]] == pytest.approx([float(obj["2d_box"][k]) for k in
                                                                ("xmin", "ymin", "xmax", "ymax")], abs=0.005)
    second = (summary.kitti_root / "training/label_2/000001.txt").read_text().split("\n")
    assert [line.split()[0] for line in second if line] == ["Car", "Cyclist"]          # the zero-length Car is gone


def test_mirror_layout_image_link_and_image_sets(prepared):
    root, summary = prepared
    kitti = summary.kitti_root
    assert (kitti / "training" / "image_2").is_symlink()
    assert (kitti / "training" / "image_2").resolve() == (root / "image").resolve()
    assert (kitti / "testing").is_dir() and not any((kitti / "testing").iterdir())
    sets = {name: (kitti / "ImageSets" / f"{name}.txt").read_text().split()
            for name in ("train", "val", "trainval", "test")}
    assert sets == {"train": ["000000"], "val": ["000001"], "trainval": ["000000", "000001"], "test": []}
    assert summary.mirrored_frames == 2 and summary.mirrored_objects == 6


@pytest.mark.parametrize("fixture, message", [("binary_compressed.pcd", "binary_compressed"),
                                              ("no_intensity.pcd", "intensity")])
def test_unreadable_pcd_is_named(tmp_path, fixture, message):
    root = tmp_path / "dair"
    shutil.copytree(DAIR, root)
    shutil.copy(FIXTURES / "pcd" / fixture, root / "velodyne" / "000001.pcd")
    with pytest.raises(DatasetError, match=message) as error:
        prepare_dair(root, tmp_path / "mirror")
    assert "000001.pcd" in str(error.value)


def test_split_file_problems_are_named(tmp_path):
    root = tmp_path / "dair"
    shutil.copytree(DAIR, root)
    (root / "split_data.json").unlink()
    with pytest.raises(DatasetError, match="--split-file"):
        prepare_dair(root, tmp_path / "mirror")
    bad = tmp_path / "split.json"
    bad.write_text(json.dumps({"train": ["000000"], "val": ["000007"], "test": []}))
    with pytest.raises(DatasetError, match="000007"):
        prepare_dair(root, tmp_path / "mirror", split_file=bad)
    with pytest.raises(DatasetError, match="its own"):
        prepare_dair(root, root, split_file=bad)


def test_cli_prints_what_it_wrote(tmp_path, capsys):
    root = tmp_path / "dair"
    shutil.copytree(DAIR, root)
    with pytest.raises(SystemExit) as done:
        main(["data", "dair-prepare", "--root", str(root), "--kitti-root", str(tmp_path / "kitti")])
    assert done.value.code == 0
    printed = " ".join(capsys.readouterr().out.split())     # rich wraps long lines
    assert "train: 1 frames, 3 objects" in printed and "KITTI-format mirror: 2 frames" in printed


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    cfg = load_config(preset_config_path("v2x"))
    root = tmp_path_factory.mktemp("v2x_synth")
    generate(cfg, "v2x", FRAMES, root, seed=SEED, workers=1)
    summary = prepare_dair(root, tmp_path_factory.mktemp("v2x_synth_kitti"))
    return cfg, root, summary


def test_synthetic_round_trip_gives_the_generators_boxes(synthetic):
    cfg, root, summary = synthetic
    rig = rig_for(cfg["synthetic"], "v2x", SEED)
    infos = [info for split in ("train", "val") for info in load_v2x_infos(root / f"dair_12hz_infos_{split}.pkl")]
    stems = sorted(Path(i["lidar_infos"]["LIDAR_TOP"]["filename"]).stem for i in infos)
    assert stems == [f"{i:06d}" for i in range(FRAMES)]
    for info in infos:
        frame = v2x_frame(info)
        index = int(Path(frame.lidar_path).stem)
        scene = simulate_frame(rig, cfg["synthetic"]["scene"], list(cfg["class_names"]), SEED, index).scene
        assert len(frame.boxes) == len(json.loads((root / "label" / "camera" / f"{index:06d}.json").read_text()))
        for box, name in zip(frame.boxes, frame.class_names):
            distance = np.linalg.norm(scene.boxes[:, :3] - box[:3], axis=1)
            j = int(distance.argmin())
            assert distance[j] < 1e-3 and _angle_gap(scene.boxes[j, 6], box[6]) < 1e-5
            assert np.allclose(scene.boxes[j, 3:6], box[3:6], atol=1e-9)
            assert scene.class_names[scene.classes[j]] == name
        # the mirror's label_2, read back as KITTI through its calib, lands on the same boxes (2-decimal text)
        calib = kitti_format.read_calib(summary.kitti_root / "training" / "calib" / f"{index:06d}.txt")
        mirrored = kitti_format.read_labels(summary.kitti_root / "training" / "label_2" / f"{index:06d}.txt")
        for box in mirrored.lidar_boxes(calib.lidar2cam):
            distance = np.linalg.norm(scene.boxes[:, :3] - box[:3], axis=1)
            j = int(distance.argmin())
            assert distance[j] < 0.03 and _angle_gap(scene.boxes[j, 6], box[6]) < 0.01
    assert summary.mirrored_frames == FRAMES
    assert len(list((summary.kitti_root / "training" / "velodyne").glob("*.bin"))) == FRAMES
