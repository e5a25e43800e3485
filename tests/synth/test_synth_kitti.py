"""The synthetic KITTI set, read back with plain parsing written here (not our readers)."""
import numpy as np
import pytest
from PIL import Image

from v2xfusion_perception.errors import ConfigError
from v2xfusion_tools.synth import camera, generate
from v2xfusion_tools.synth.frame import rig_for, simulate_frame

NOISE_TOLERANCE = 0.12     # 6 sigma of the presets' 2 cm range noise


def _calib(path) -> dict:
    values = {}
    for line in path.read_text().splitlines():
        if line.strip():
            key, rest = line.split(":", 1)
            values[key] = np.array([float(v) for v in rest.split()])
    r0 = np.eye(4)
    r0[:3, :3] = values["R0_rect"].reshape(3, 3)
    tr = np.eye(4)
    tr[:3, :] = values["Tr_velo_to_cam"].reshape(3, 4)
    return {"R0": r0, "Tr": tr, "P2": values["P2"].reshape(3, 4)}


def _labels(path) -> list[dict]:
    objects = []
    for line in path.read_text().splitlines():
        f = line.split()
        assert len(f) == 15, line
        objects.append({"type": f[0], "truncated": float(f[1]), "occluded": int(f[2]), "alpha": float(f[3]),
                        "bbox": np.array([float(v) for v in f[4:8]]), "hwl": np.array([float(v) for v in f[8:11]]),
                        "loc": np.array([float(v) for v in f[11:14]]), "ry": float(f[14])})
    return objects


def _to_rect(points: np.ndarray, lidar2cam: np.ndarray) -> np.ndarray:
    return points[:, :3] @ lidar2cam[:3, :3].T + lidar2cam[:3, 3]


def _in_kitti_box(rect: np.ndarray, obj: dict, grow: float) -> np.ndarray:
    """Points (camera-rect) inside the KITTI box grown by `grow`: devkit box frame, y from -h to 0."""
    h, w, l = obj["hwl"]
    c, s = np.cos(obj["ry"]), np.sin(obj["ry"])
    d = rect - obj["loc"]
    x = c * d[:, 0] - s * d[:, 2]          # R_y(ry)^T applied: box frame x (length)
    z = s * d[:, 0] + c * d[:, 2]          # box frame z (width)
    return (np.abs(x) <= l / 2 + grow) & (np.abs(z) <= w / 2 + grow) & (d[:, 1] >= -h - grow) & (d[:, 1] <= grow)


def _kitti_corners(obj: dict) -> np.ndarray:
    h, w, l = obj["hwl"]
    x = np.array([l, l, -l, -l, l, l, -l, -l]) / 2
    y = np.array([0, 0, 0, 0, -h, -h, -h, -h])
    z = np.array([w, -w, -w, w, w, -w, -w, w]) / 2
    c, s = np.cos(obj["ry"]), np.sin(obj["ry"])
    rot = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    return (rot @ np.stack([x, y, z])).T + obj["loc"]


def _frames(root):
    for index in range(3):
        name = f"{index:06d}"
        training = root / "training"
        yield (index, _calib(training / "calib" / f"{name}.txt"), _labels(training / "label_2" / f"{name}.txt"),
               np.fromfile(training / "velodyne" / f"{name}.bin", dtype="<f4").reshape(-1, 4),
               np.asarray(Image.open(training / "image_2" / f"{name}.png")))


def test_layout_image_sets_and_progress(kitti_set):
    root, summary, calls = kitti_set
    for folder in ("calib", "image_2", "label_2", "velodyne"):
        names = sorted(p.name for p in (root / "training" / folder).iterdir())
        assert [n.split(".")[0] for n in names] == ["000000", "000001", "000002"]
    for folder in ("calib", "image_2", "velodyne"):
        assert (root / "testing" / folder).is_dir() and not any((root / "testing" / folder).iterdir())
    sets = {name: (root / "ImageSets" / f"{name}.txt").read_text().split() for name in ("train", "val", "trainval", "test")}
    assert sets["test"] == [] and sets["train"] and sets["val"]
    assert not set(sets["train"]) & set(sets["val"])
    assert sets["trainval"] == sorted(sets["train"] + sets["val"]) == ["000000", "000001", "000002"]
    assert calls == [1, 1, 1] and summary.frames == 3 and sum(summary.class_counts.values()) > 0


def test_images_are_png_at_the_native_size(kitti_set, kitti_cfg):
    root, _, _ = kitti_set
    image = Image.open(root / "training" / "image_2" / "000001.png")
    assert image.format == "PNG" and image.mode == "RGB"
    assert list(image.size) == kitti_cfg["synthetic"]["image_native_size"]


def test_label_fields_are_consistent(kitti_set, kitti_cfg):
    root, _, _ = kitti_set
    width, height = kitti_cfg["synthetic"]["image_native_size"]
    seen = set()
    for _, _, labels, _, _ in _frames(root):
        for obj in labels:
            seen.add(obj["type"])
            left, top, right, bottom = obj["bbox"]
            assert 0 <= left < right <= width - 1 and 0 <= top < bottom <= height - 1
            if obj["type"] == "DontCare":
                assert obj["occluded"] == -1 and obj["ry"] == -10 and list(obj["loc"]) == [-1000.0] * 3
                continue
            assert 0.0 <= obj["truncated"] <= 1.0 and obj["occluded"] in (0, 1, 2)
            expected_alpha = obj["ry"] - np.arctan2(obj["loc"][0], obj["loc"][2])
            assert abs((obj["alpha"] - expected_alpha + np.pi) % (2 * np.pi) - np.pi) <= 0.0051
            assert np.isclose(obj["loc"][1], kitti_cfg["synthetic"]["camera"]["mount_height"], atol=0.011)
    assert {"Car", "Pedestrian"} <= seen <= set(kitti_cfg["class_names"]) | {"DontCare"}


def test_lidar2cam_maps_each_objects_points_onto_its_label_box(kitti_set):
    root, _, _ = kitti_set
    gained = []
    for _, calib, labels, points, _ in _frames(root):
        lidar2cam = calib["R0"] @ calib["Tr"]
        rect = _to_rect(points, lidar2cam)
        rect_without_r0 = _to_rect(points, calib["Tr"])
        for obj in (o for o in labels if o["type"] != "DontCare"):
            near = _in_kitti_box(rect, obj, NOISE_TOLERANCE)
            assert near.sum() >= 1, obj                       # labelled objects have LiDAR points
            deep = _in_kitti_box(rect, obj, -NOISE_TOLERANCE)
            assert deep.sum() == 0, obj                       # ... on the surface, not inside
            gained.append(near.sum() - _in_kitti_box(rect_without_r0, obj, NOISE_TOLERANCE).sum())
    assert sum(gained) > 0       # leaving R0_rect out loses points: the rig really rotates camera-rect


def test_2d_boxes_are_the_projected_3d_boxes(kitti_set, kitti_cfg):
    root, _, _ = kitti_set
    width, height = kitti_cfg["synthetic"]["image_native_size"]
    checked = 0
    for _, calib, labels, _, _ in _frames(root):
        for obj in (o for o in labels if o["type"] != "DontCare"):
            corners = _kitti_corners(obj)
            if np.any(corners[:, 2] <= 0.1):
                continue
            projected = np.hstack([corners, np.ones((8, 1))]) @ calib["P2"].T
            uv = projected[:, :2] / projected[:, 2:]
            expected = [max(uv[:, 0].min(), 0), max(uv[:, 1].min(), 0), min(uv[:, 0].max(), width - 1),
                        min(uv[:, 1].max(), height - 1)]
            assert np.allclose(obj["bbox"], expected, atol=0.011), obj
            full_area = np.ptp(uv[:, 0]) * np.ptp(uv[:, 1])
            clipped_area = (expected[2] - expected[0]) * (expected[3] - expected[1])
            assert abs(obj["truncated"] - (1 - clipped_area / full_area)) <= 0.0051
            checked += 1
    assert checked >= 5


def test_image_shows_objects_where_their_boxes_project(kitti_set, kitti_cfg, synth_seed):
    """Against the same frame rendered without objects: pixels change inside visible objects' 2-D
    boxes and (nearly) nowhere else."""
    root, _, _ = kitti_set
    rig = rig_for(kitti_cfg["synthetic"], "kitti", synth_seed)
    checked = 0
    for index, _, labels, _, image in _frames(root):
        frame = simulate_frame(rig, kitti_cfg["synthetic"]["scene"], kitti_cfg["class_names"], synth_seed, index)
        empty = camera.render(frame.scene.without_objects(), rig.lidar2img, rig.image_size, np.random.default_rng(5))
        changed = np.abs(image.astype(int) - empty.image.astype(int)).max(axis=2) > 20
        covered = np.zeros_like(changed)
        for obj in labels:
            left, top, right, bottom = np.round(obj["bbox"]).astype(int)
            covered[max(top - 8, 0):bottom + 9, max(left - 8, 0):right + 9] = True
            area = (bottom - top + 1) * (right - left + 1)
            if obj["type"] != "DontCare" and obj["occluded"] == 0 and area >= 60:
                assert changed[top:bottom + 1, left:right + 1].mean() >= 0.5, obj
                checked += 1
        assert changed[~covered].mean() < 0.005
    assert checked >= 5


@pytest.mark.parametrize("preset", ["kitti", "v2x"])
def test_points_lie_on_the_ground_or_on_box_surfaces(preset, kitti_cfg, v2x_cfg, synth_seed):
    cfg = kitti_cfg if preset == "kitti" else v2x_cfg
    rig = rig_for(cfg["synthetic"], preset, synth_seed)
    frame = simulate_frame(rig, cfg["synthetic"]["scene"], cfg["class_names"], synth_seed, 4)
    points = frame.scan.points.astype(np.float64)
    ground_z = -cfg["synthetic"]["lidar"]["mount_height"]
    distance = np.abs(points[:, 2] - ground_z)
    on_box = np.zeros(len(points), dtype=bool)
    for box in frame.scene.boxes:
        c, s = np.cos(box[6]), np.sin(box[6])
        d = points[:, :3] - box[:3]
        local = np.stack([c * d[:, 0] + s * d[:, 1], -s * d[:, 0] + c * d[:, 1], d[:, 2]], axis=1)
        excess = np.abs(local) - box[3:6] / 2
        outside = np.linalg.norm(np.maximum(excess, 0), axis=1)
        inside = np.where(np.all(excess < 0, axis=1), -excess.max(axis=1), 0.0)
        surface = outside + inside
        on_box |= surface <= NOISE_TOLERANCE
        distance = np.minimum(distance, surface)
        # the face a point lies on must face the sensor (a ray that went through to the far side, or
        # a box that did not occlude, would show as points on faces turned away); ground points
        # beside the box are left out
        here = (surface <= NOISE_TOLERANCE) & (points[:, 2] > ground_z + NOISE_TOLERANCE)
        ratio = np.abs(local[here]) / (box[3:6] / 2)
        axis = np.argmax(ratio, axis=1)
        rows = np.arange(here.sum())
        # only points clear of the face's edges: there noise can make another face look nearer
        clear = (box[3:6] / 2 - np.abs(local[here]) > NOISE_TOLERANCE)
        clear[rows, axis] = True
        outward = np.sign(local[here][rows, axis])
        sensor = -np.array([c * box[0] + s * box[1], -s * box[0] + c * box[1], box[2]])
        facing = outward * (sensor - local[here])[rows, axis] > 0
        assert np.all(facing[clear.all(axis=1)])
    assert np.all(distance <= NOISE_TOLERANCE)
    assert 0.005 < on_box.mean() < 0.5
    assert np.all((points[:, 3] >= 0) & (points[:, 3] <= 1))
    ranges = np.linalg.norm(points[:, :3], axis=1)
    assert ranges.max() <= cfg["synthetic"]["lidar"]["max_range"] + NOISE_TOLERANCE


def test_same_seed_gives_the_same_bytes_whatever_the_workers(tmp_path, kitti_set, kitti_cfg, synth_seed):
    root, _, _ = kitti_set
    again = tmp_path / "again"
    generate(kitti_cfg, "kitti", 2, again, seed=synth_seed, workers=1)
    for folder, suffix in (("calib", "txt"), ("image_2", "png"), ("label_2", "txt"), ("velodyne", "bin")):
        for name in ("000000", "000001"):
            first = (root / "training" / folder / f"{name}.{suffix}").read_bytes()
            assert (again / "training" / folder / f"{name}.{suffix}").read_bytes() == first
    other = tmp_path / "other"
    generate(kitti_cfg, "kitti", 1, other, seed=synth_seed + 1, workers=1)
    assert (other / "training/velodyne/000000.bin").read_bytes() != (root / "training/velodyne/000000.bin").read_bytes()


def test_inconsistent_sensor_heights_and_wrong_preset_are_config_errors(tmp_path, kitti_cfg):
    with pytest.raises(ConfigError, match="preset 'kitti', asked for 'v2x'"):
        generate(kitti_cfg, "v2x", 1, tmp_path, seed=0)
    broken = {**kitti_cfg, "synthetic": {**kitti_cfg["synthetic"],
                                         "camera": {**kitti_cfg["synthetic"]["camera"], "mount_height": 2.0}}}
    with pytest.raises(ConfigError, match="synthetic.camera.mount_height"):
        generate(broken, "kitti", 1, tmp_path, seed=0)
