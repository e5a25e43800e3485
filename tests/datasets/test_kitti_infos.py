"""mmdet3d v1.x KITTI infos from hand-written KITTI frames with known calibrations and labels.

fixtures/kitti_mini: frame 000000 (a real KITTI calibration; Car, Pedestrian, Cyclist, a truncated Car
cut by the right image border, a Van, DontCare last), 000001 (an axis-aligned rig: camera x = -LiDAR y,
camera y = -LiDAR z, camera z = LiDAR x, P2 = [[700, 0, 600, 0], [0, 700, 180, 0], [0, 0, 1, 0]];
DontCare between the objects; ten hand-placed velodyne points), 000002 (testing, no labels).
"""
import shutil
from pathlib import Path

import numpy as np
import pytest

from v2xfusion_perception.errors import DatasetError
from v2xfusion_tools.cli import main
from v2xfusion_tools.datasets.kitti_infos import create_kitti_infos, hull_box_in_image, kitti_difficulty
from v2xfusion_tools.datasets.safe_pickle import load_pickle

KITTI = Path(__file__).parent / "fixtures" / "kitti_mini"
IMAGE_W, IMAGE_H = 1242, 375


def _calib(path: Path) -> dict[str, np.ndarray]:
    """Plain parse of a calib file into 4x4 matrices."""
    out = {}
    for line in path.read_text().splitlines():
        if line.strip():
            key, values = line.split(":")
            numbers = np.array([float(v) for v in values.split()])
            matrix = np.eye(4)
            matrix[:3, :numbers.size // 3] = numbers.reshape(3, -1)
            out[key] = matrix
    return out


def _labels(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def infos(tmp_path_factory):
    out = tmp_path_factory.mktemp("kitti_infos")
    summary = create_kitti_infos(KITTI, out, with_plane=True)
    return {split: load_pickle(path) for split, (path, _, _) in summary.files.items()}


def test_four_files_in_mmdet3d_layout(infos):
    assert set(infos) == {"train", "val", "trainval", "test"}
    assert [len(infos[s]["data_list"]) for s in ("train", "val", "trainval", "test")] == [1, 1, 2, 1]
    classes = ["Pedestrian", "Cyclist", "Car", "Van", "Truck", "Person_sitting", "Tram", "Misc"]
    assert infos["train"]["metainfo"] == {"categories": {**{c: i for i, c in enumerate(classes)}, "DontCare": -1},
                                          "dataset": "kitti", "info_version": "1.1"}
    assert "DontCare" not in infos["test"]["metainfo"]["categories"]
    frame = infos["train"]["data_list"][0]
    assert list(frame) == ["sample_idx", "images", "lidar_points", "instances", "plane", "cam_instances"]
    assert list(frame["images"]) == ["CAM0", "CAM1", "CAM2", "CAM3", "R0_rect"]
    assert list(frame["images"]["CAM2"]) == ["img_path", "height", "width", "cam2img", "lidar2img", "lidar2cam"]
    assert list(frame["instances"][0]) == ["bbox", "bbox_label", "bbox_3d", "bbox_label_3d", "depth", "center_2d",
                                           "num_lidar_pts", "difficulty", "truncated", "occluded", "alpha", "score",
                                           "index", "group_id"]
    assert [f["sample_idx"] for f in infos["trainval"]["data_list"]] == [0, 1]


@pytest.mark.parametrize("frame_id, split", [("000000", "train"), ("000001", "val")])
def test_lidar2cam_is_r0_rect_times_tr_velo_to_cam_and_lidar2img_adds_each_p(infos, frame_id, split):
    calib = _calib(KITTI / "training" / "calib" / f"{frame_id}.txt")
    lidar2cam = calib["R0_rect"] @ calib["Tr_velo_to_cam"]
    frame = infos[split]["data_list"][0]
    camera = frame["images"]["CAM2"]
    assert np.allclose(camera["lidar2cam"], lidar2cam, atol=1e-6)
    assert camera["img_path"] == f"{frame_id}.png" and frame["lidar_points"]["lidar_path"] == f"{frame_id}.bin"
    assert (camera["height"], camera["width"]) == (IMAGE_H, IMAGE_W) and isinstance(camera["height"], np.int32)
    for i in range(4):
        image = frame["images"][f"CAM{i}"]
        assert np.allclose(image["cam2img"], calib[f"P{i}"])
        assert np.allclose(image["lidar2img"], calib[f"P{i}"] @ lidar2cam, atol=1e-4)
    assert np.allclose(frame["images"]["R0_rect"], calib["R0_rect"], atol=1e-7)
    assert np.allclose(frame["lidar_points"]["Tr_velo_to_cam"], calib["Tr_velo_to_cam"], atol=1e-7)
    assert np.allclose(frame["lidar_points"]["Tr_imu_to_velo"], calib["Tr_imu_to_velo"], atol=1e-7)
    assert frame["lidar_points"]["num_pts_feats"] == 4


def test_instances_carry_label_fields_lhw_boxes_labels_and_difficulty(infos):
    instances = infos["train"]["data_list"][0]["instances"]
    lines = _labels(KITTI / "training" / "label_2" / "000000.txt")
    assert [i["bbox_label"] for i in instances] == [2, 0, 1, 2, 3, -1]
    assert [i["bbox_label_3d"] for i in instances] == [2, 0, 1, 2, 3, -1]
    # easy (70 px, visible), moderate (30 px, partly occluded), hard (26.5 px, occluded 2, truncated 0.4),
    # none (truncated 0.8), easy Van, none for DontCare (20 px)
    assert [i["difficulty"] for i in instances] == [0, 1, 2, -1, 0, -1]
    assert [i["index"] for i in instances] == [0, 1, 2, 3, 4, -1]
    assert [i["group_id"] for i in instances] == list(range(6))
    for inst, fields in zip(instances, lines):
        h, w, l = (float(v) for v in fields[8:11])
        assert inst["bbox_3d"] == [float(v) for v in fields[11:14]] + [l, h, w, float(fields[14])]
        assert inst["bbox"] == [float(v) for v in fields[4:8]]
        assert (inst["truncated"], inst["occluded"], inst["alpha"]) == \
            (float(fields[1]), int(fields[2]), float(fields[3]))
        assert inst["score"] == 0.0
    # depth / center_2d: the gravity centre (bottom centre raised by h / 2) through P2
    p2 = _calib(KITTI / "training" / "calib" / "000000.txt")["P2"]
    centre = np.array([2.0, 1.7 - 0.75, 20.0, 1.0])
    u, v, depth = (p2 @ centre)[:3]
    assert instances[0]["depth"] == pytest.approx(depth)
    assert instances[0]["center_2d"] == pytest.approx([u / depth, v / depth])


def _inside_kitti_box(rect: np.ndarray, fields: list[str]) -> np.ndarray:
    """Camera-rect points inside a label's box (devkit frame: y from -h to 0 above the bottom centre)."""
    h, w, l = (float(v) for v in fields[8:11])
    loc, ry = np.array([float(v) for v in fields[11:14]]), float(fields[14])
    d = rect - loc
    x = np.cos(ry) * d[:, 0] - np.sin(ry) * d[:, 2]
    z = np.sin(ry) * d[:, 0] + np.cos(ry) * d[:, 2]
    return (np.abs(x) <= l / 2) & (np.abs(z) <= w / 2) & (d[:, 1] >= -h) & (d[:, 1] <= 0)


def test_num_lidar_pts_counts_box_points_inside_the_image_and_minus_one_for_dont_care(infos):
    instances = infos["val"]["data_list"][0]["instances"]
    # hand count (fixture points): 3 in the Car (a fourth lies 0.2 m past it), 2 of the Cyclist's 4 points
    # project inside the image (the others at u = 1244 and 1282 > 1242), 1 in the Pedestrian
    assert [i["num_lidar_pts"] for i in instances] == [3, -1, 2, 1]
    # the same from the files with plain numpy: camera-rect points, pinhole view test, devkit box test
    points = np.fromfile(KITTI / "training" / "velodyne" / "000001.bin", dtype="<f4").reshape(-1, 4)
    calib = _calib(KITTI / "training" / "calib" / "000001.txt")
    rect = (calib["R0_rect"] @ calib["Tr_velo_to_cam"] @ np.c_[points[:, :3], np.ones(len(points))].T).T[:, :3]
    pixels = (calib["P2"][:3] @ np.c_[rect, np.ones(len(rect))].T).T
    u, v = pixels[:, 0] / pixels[:, 2], pixels[:, 1] / pixels[:, 2]
    in_view = (pixels[:, 2] > 0.001) & (u > 0) & (u < IMAGE_W) & (v > 0) & (v < IMAGE_H)
    lines = _labels(KITTI / "training" / "label_2" / "000001.txt")
    expected = [-1 if f[0] == "DontCare" else int((_inside_kitti_box(rect, f) & in_view).sum()) for f in lines]
    assert [i["num_lidar_pts"] for i in instances] == expected


def test_dont_care_between_objects_is_matched_by_name(infos):
    instances = infos["val"]["data_list"][0]["instances"]
    assert [i["bbox_label"] for i in instances] == [2, -1, 1, 0]
    assert [i["index"] for i in instances] == [0, -1, 1, 2]


def _projected_corners(fields: list[str], p2: np.ndarray) -> np.ndarray:
    h, w, l = (float(v) for v in fields[8:11])
    loc, ry = np.array([float(v) for v in fields[11:14]]), float(fields[14])
    x = np.array([l, l, -l, -l, l, l, -l, -l]) / 2
    y = np.array([0, 0, 0, 0, -h, -h, -h, -h])
    z = np.array([w, -w, -w, w, w, -w, -w, w]) / 2
    rot = np.array([[np.cos(ry), 0, np.sin(ry)], [0, 1, 0], [-np.sin(ry), 0, np.cos(ry)]])
    corners = (rot @ np.stack([x, y, z])).T + loc
    pixels = (p2[:3] @ np.c_[corners, np.ones(8)].T).T
    return pixels[:, :2] / pixels[:, 2:3]


def test_camera_instances_are_projected_boxes_clipped_to_the_image(infos):
    frame = infos["train"]["data_list"][0]
    records = frame["cam_instances"]["CAM2"]
    assert [r["bbox_label"] for r in records] == [2, 0, 1, 2, 3]           # no DontCare
    p2 = _calib(KITTI / "training" / "calib" / "000000.txt")["P2"]
    lines = _labels(KITTI / "training" / "label_2" / "000000.txt")
    for record, fields in zip(records, lines):
        uv = _projected_corners(fields, p2)
        expected = [max(uv[:, 0].min(), 0.0), max(uv[:, 1].min(), 0.0), min(uv[:, 0].max(), IMAGE_W),
                    min(uv[:, 1].max(), IMAGE_H)]
        assert record["bbox"] == pytest.approx(expected, abs=1e-3)
        assert record["bbox_3d_isvalid"] is True and record["velocity"] == -1
        assert record["bbox_3d"] == pytest.approx([float(v) for v in fields[11:14]]
                                                  + [float(fields[10]), float(fields[8]), float(fields[9]),
                                                     float(fields[14])], abs=1e-6)
    assert _projected_corners(lines[3], p2)[:, 0].max() > IMAGE_W and records[3]["bbox"][2] == IMAGE_W


def test_with_plane_reads_the_fourth_line_of_training_planes(infos, tmp_path):
    assert np.array_equal(infos["train"]["data_list"][0]["plane"],
                          [-7.051729e-03, -9.997791e-01, -1.980151e-02, 1.680367e+00])
    assert np.array_equal(infos["val"]["data_list"][0]["plane"], [0.0, -1.0, 0.0, 1.7])
    assert "plane" not in infos["test"]["data_list"][0]
    root = tmp_path / "kitti"
    shutil.copytree(KITTI, root)
    (root / "training" / "planes" / "000001.txt").unlink()
    with pytest.raises(DatasetError, match=r"planes/000001\.txt.*--with-plane"):
        create_kitti_infos(root, with_plane=True)
    assert create_kitti_infos(root).files["val"][1] == 1


def test_test_split_comes_from_testing_without_labels(infos):
    frame = infos["test"]["data_list"][0]
    assert frame["sample_idx"] == 2 and frame["instances"] == [] and "cam_instances" not in frame
    assert frame["images"]["CAM2"]["img_path"] == "000002.png"


@pytest.mark.parametrize("height, occluded, truncated, expected", [
    (40.01, 0, 0.15, 0), (40.0, 0, 0.0, 1), (50.0, 1, 0.0, 1), (50.0, 0, 0.16, 1), (25.01, 1, 0.3, 1),
    (25.01, 2, 0.0, 2), (50.0, 0, 0.5, 2), (25.0, 0, 0.0, -1), (50.0, 3, 0.0, -1), (50.0, 0, 0.51, -1),
])
def test_difficulty_follows_the_kitti_benchmark_thresholds(height, occluded, truncated, expected):
    got = kitti_difficulty(np.array([[0.0, 100.0, 10.0, 100.0 + height]]), np.array([occluded]), np.array([truncated]))
    assert got.tolist() == [expected]


def test_image_box_is_the_clipped_hull_not_the_clipped_extent():
    # a diamond around (120, 50) cut by the image's right border x = 100: the part inside spans y 40-60
    diamond = np.array([[90.0, 50.0], [120.0, 20.0], [150.0, 50.0], [120.0, 80.0]])
    assert hull_box_in_image(diamond, 100, 100) == pytest.approx((90.0, 40.0, 100.0, 60.0))
    assert hull_box_in_image(diamond - [200.0, 0.0], 100, 100) is None                  # fully outside
    assert hull_box_in_image(np.array([[10.0, 10.0], [20.0, 20.0], [30.0, 30.0]]), 100, 100) is None   # a line
    assert hull_box_in_image(np.array([[-5.0, 10.0], [5.0, 10.0], [5.0, 20.0], [-5.0, 20.0]]), 100, 100) == \
        pytest.approx((0.0, 10.0, 5.0, 20.0))


def test_missing_frame_file_and_missing_image_sets_are_named(tmp_path):
    root = tmp_path / "kitti"
    shutil.copytree(KITTI, root)
    (root / "training" / "velodyne" / "000001.bin").unlink()
    with pytest.raises(DatasetError, match=r"velodyne/000001\.bin"):
        create_kitti_infos(root)
    (root / "ImageSets" / "val.txt").unlink()
    with pytest.raises(DatasetError, match=r"val\.txt"):
        create_kitti_infos(root)


def test_cli_writes_the_infos_and_prints_counts(tmp_path, capsys):
    with pytest.raises(SystemExit) as done:                          # click ends with SystemExit(0)
        main(["data", "kitti-infos", "--root", str(KITTI), "--out-dir", str(tmp_path)])
    assert done.value.code == 0
    printed = " ".join(capsys.readouterr().out.split())     # rich wraps long lines
    assert "train: 1 frames, 5 instances" in printed and "test: 1 frames" in printed
    assert sorted(p.name for p in tmp_path.glob("*.pkl")) == [f"kitti_infos_{s}.pkl" for s in
                                                             ("test", "train", "trainval", "val")]
