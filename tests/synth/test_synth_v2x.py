"""The synthetic DAIR-V2X-I set, read back with plain json / numpy parsing written here."""
import json

import numpy as np
from PIL import Image

from v2xfusion_tools.datasets import pcd

DESIGN_KEYS = {"image_path", "pointcloud_path", "calib_camera_intrinsic_path", "calib_virtuallidar_to_camera_path",
               "calib_virtuallidar_to_world_path", "label_camera_std_path", "label_lidar_std_path",
               "image_timestamp", "pointcloud_timestamp", "intersection_loc"}
NOISE_TOLERANCE = 0.12


def _read_pcd(path) -> np.ndarray:
    raw = path.read_bytes()
    header_end = raw.index(b"DATA binary\n") + len(b"DATA binary\n")
    header = dict(line.split(" ", 1) for line in raw[:header_end].decode().splitlines() if not line.startswith("#"))
    assert header["FIELDS"] == "x y z intensity" and header["TYPE"] == "F F F F" and header["SIZE"] == "4 4 4 4"
    count = int(header["POINTS"])
    assert len(raw) - header_end == 16 * count
    return np.frombuffer(raw[header_end:], dtype="<f4").reshape(count, 4)


def _boxes(objects: list[dict]) -> np.ndarray:
    """DAIR objects -> rows (x, y, z, l, w, h, yaw) straight from the JSON fields."""
    return np.array([[o["3d_location"]["x"], o["3d_location"]["y"], o["3d_location"]["z"], o["3d_dimensions"]["l"],
                      o["3d_dimensions"]["w"], o["3d_dimensions"]["h"], o["rotation"]] for o in objects]).reshape(-1, 7)


def _inside(points: np.ndarray, box: np.ndarray, grow: float) -> np.ndarray:
    c, s = np.cos(box[6]), np.sin(box[6])
    d = points[:, :3] - box[:3]
    along, across = c * d[:, 0] + s * d[:, 1], -s * d[:, 0] + c * d[:, 1]
    return (np.abs(along) <= box[3] / 2 + grow) & (np.abs(across) <= box[4] / 2 + grow) & \
        (np.abs(d[:, 2]) <= box[5] / 2 + grow)


def _frames(root):
    for entry in json.loads((root / "data_info.json").read_text()):
        yield entry, {key: json.loads((root / entry[path]).read_text()) for key, path in (
            ("intrinsic", "calib_camera_intrinsic_path"), ("to_camera", "calib_virtuallidar_to_camera_path"),
            ("to_world", "calib_virtuallidar_to_world_path"), ("camera", "label_camera_std_path"),
            ("lidar", "label_lidar_std_path"))}


def test_data_info_has_the_design_fields_and_every_file_exists(v2x_set, v2x_cfg):
    root, summary = v2x_set
    entries = json.loads((root / "data_info.json").read_text())
    assert len(entries) == 2 == summary.frames
    for index, entry in enumerate(entries):
        assert set(entry) == DESIGN_KEYS
        assert entry["image_path"] == f"image/{index:06d}.jpg"
        assert entry["pointcloud_path"] == f"velodyne/{index:06d}.pcd"
        for key in DESIGN_KEYS - {"image_timestamp", "pointcloud_timestamp", "intersection_loc"}:
            assert (root / entry[key]).is_file(), entry[key]
        assert entry["image_timestamp"].isdigit() and entry["pointcloud_timestamp"].isdigit()
    step = int(entries[1]["pointcloud_timestamp"]) - int(entries[0]["pointcloud_timestamp"])
    assert step == round(1e6 / v2x_cfg["synthetic"]["frame_rate"])
    split = json.loads((root / "split_data.json").read_text())
    assert sorted(split["train"] + split["val"]) == ["000000", "000001"] and split["test"] == []


def test_point_clouds_are_binary_pcd_with_0_to_255_intensity(v2x_set):
    root, _ = v2x_set
    points = _read_pcd(root / "velodyne" / "000000.pcd")
    assert len(points) > 50000 and np.all(np.isfinite(points))
    assert points[:, 3].min() >= 0 and 20 < points[:, 3].max() <= 255
    assert np.array_equal(pcd.read_pcd(root / "velodyne" / "000000.pcd"), points)


def test_calibration_matches_the_preset(v2x_set, v2x_cfg):
    root, _ = v2x_set
    camera = v2x_cfg["synthetic"]["camera"]
    width, height = v2x_cfg["synthetic"]["image_native_size"]
    for _, files in _frames(root):
        k = np.array(files["intrinsic"]["cam_K"]).reshape(3, 3)
        assert np.allclose(k, [[camera["focal"], 0, width / 2], [0, camera["focal"], height / 2], [0, 0, 1]])
        rotation = np.array(files["to_camera"]["rotation"])
        translation = np.array(files["to_camera"]["translation"])[:, 0]
        assert np.allclose(rotation @ rotation.T, np.eye(3)) and np.isclose(np.linalg.det(rotation), 1.0)
        assert np.allclose(-rotation.T @ translation, camera["lidar_to_camera_offset"])   # camera centre
        optical_axis = rotation[2]                       # camera z seen from the LiDAR
        assert np.isclose(optical_axis[2], -np.sin(np.deg2rad(camera["pitch_deg"])))
        to_world = np.array(files["to_world"]["rotation"])
        assert np.allclose(to_world @ to_world.T, np.eye(3))


def test_lidar_labels_sit_on_their_points(v2x_set):
    root, _ = v2x_set
    for entry, files in _frames(root):
        points = _read_pcd(root / entry["pointcloud_path"])
        boxes = _boxes(files["lidar"])
        assert len(boxes) >= 3
        for box in boxes:
            assert _inside(points, box, NOISE_TOLERANCE).sum() >= 1
            assert _inside(points, box, -NOISE_TOLERANCE).sum() == 0    # on the surface, not inside
            assert box[3] > box[4]                                      # l (along the heading) > w
        # box bottoms rest on the ground plane
        ground = np.percentile(points[:, 2], 5)
        assert np.allclose(boxes[:, 2] - boxes[:, 5] / 2, ground, atol=0.05)


def test_camera_labels_project_to_their_2d_boxes(v2x_set, v2x_cfg):
    root, _ = v2x_set
    width, height = v2x_cfg["synthetic"]["image_native_size"]
    checked = 0
    for entry, files in _frames(root):
        k = np.array(files["intrinsic"]["cam_K"]).reshape(3, 3)
        rotation = np.array(files["to_camera"]["rotation"])
        translation = np.array(files["to_camera"]["translation"])[:, 0]
        camera_types = [o["type"] for o in files["camera"]]
        assert camera_types and set(camera_types) <= set(v2x_cfg["class_names"])
        for obj, box in zip(files["camera"], _boxes(files["camera"])):
            signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)])
            local = signs * box[3:6] / 2
            c, s = np.cos(box[6]), np.sin(box[6])
            corners = np.stack([c * local[:, 0] - s * local[:, 1], s * local[:, 0] + c * local[:, 1], local[:, 2]],
                               axis=1) + box[:3]
            cam = corners @ rotation.T + translation
            if np.any(cam[:, 2] <= 0.1):
                continue
            uv = (cam @ k.T)[:, :2] / cam[:, 2:]
            expected = [max(uv[:, 0].min(), 0), max(uv[:, 1].min(), 0), min(uv[:, 0].max(), width - 1),
                        min(uv[:, 1].max(), height - 1)]
            got = [obj["2d_box"][key] for key in ("xmin", "ymin", "xmax", "ymax")]
            assert np.allclose(got, expected, atol=1e-6)
            inside_image = uv[:, 0].min() >= 0 and uv[:, 0].max() <= width - 1 and \
                uv[:, 1].min() >= 0 and uv[:, 1].max() <= height - 1
            assert obj["truncated_state"] == 0 if inside_image else obj["truncated_state"] in (1, 2)
            assert obj["occluded_state"] in (0, 1, 2)
            checked += 1
        # objects only the LiDAR sees carry a zero 2d_box
        camera_centres = {tuple(np.round(b[:3], 6)) for b in _boxes(files["camera"])}
        for obj, box in zip(files["lidar"], _boxes(files["lidar"])):
            if tuple(np.round(box[:3], 6)) not in camera_centres:
                assert all(v == 0.0 for v in obj["2d_box"].values())
    assert checked >= 5


def test_images_are_jpeg_at_the_native_size(v2x_set, v2x_cfg):
    root, _ = v2x_set
    image = Image.open(root / "image" / "000001.jpg")
    assert image.format == "JPEG" and list(image.size) == v2x_cfg["synthetic"]["image_native_size"]
