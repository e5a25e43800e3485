"""Bags of our data sets (v2xfusion_tools/bags): `v2xfusion bag make` and `v2xfusion bag play`.

Bags are read back with rosbags and checked against the data set files parsed here independently
(velodyne .bin bytes, calib.txt lines, data_info.json timestamps); the player runs as the CLI in its
own process, and a subscriber in this process receives the raw CDR it publishes.
"""
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import rclpy
from PIL import Image as PILImage
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rosbags.rosbag2 import Reader
from rosbags.typesys import Stores, get_typestore
from rosidl_runtime_py.utilities import get_message

from v2xfusion_perception.config import load_config, preset_config_path
from v2xfusion_tools.bags import BagError, make_bag, play_bag
from v2xfusion_tools.bags.make import KITTI_START_NS
from v2xfusion_tools.synth import generate

DOMAIN_ID = 150 + os.getpid() % 50
TOPICS = {"/tf_static": "tf2_msgs/msg/TFMessage", "/camera/camera_info": "sensor_msgs/msg/CameraInfo",
          "/camera/image_raw": "sensor_msgs/msg/Image", "/lidar/points": "sensor_msgs/msg/PointCloud2"}
KITTI_FRAMES = 5
CLI = "import sys; from v2xfusion_tools.cli import main; sys.exit(main())"


@pytest.fixture(scope="module")
def data_sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("sets")
    for preset, frames in (("kitti", KITTI_FRAMES), ("v2x", 2)):
        generate(load_config(preset_config_path(preset)), preset, frames, root / preset, seed=4, workers=1)
    return root


def read_bag(path: Path):
    """[(topic, log time, message, raw bytes)] in log order, and the reader's topic -> type map."""
    typestore = get_typestore(Stores.ROS2_KILTED)
    with Reader(path) as reader:
        types = {c.topic: c.msgtype for c in reader.connections}
        messages = [(c.topic, t, typestore.deserialize_cdr(raw, c.msgtype), bytes(raw))
                    for c, t, raw in reader.messages()]
    return messages, types


def stamp_of(msg) -> int:
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


def quat_matrix(x, y, z, w) -> np.ndarray:
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def lidar2cam_from_tf(tf_message) -> np.ndarray:
    (transform,) = tf_message.transforms
    assert (transform.header.frame_id, transform.child_frame_id) == ("lidar", "camera")
    cam2lidar = np.eye(4)
    r, t = transform.transform.rotation, transform.transform.translation
    cam2lidar[:3, :3] = quat_matrix(r.x, r.y, r.z, r.w)
    cam2lidar[:3, 3] = (t.x, t.y, t.z)
    return np.linalg.inv(cam2lidar)


def kitti_calib(path: Path) -> dict:
    rows = dict(line.split(":", 1) for line in path.read_text().splitlines() if ":" in line)
    values = {key: np.array(text.split(), dtype=np.float64) for key, text in rows.items()}
    pad = np.eye(4)
    r0, tr = pad.copy(), pad.copy()
    r0[:3, :3] = values["R0_rect"].reshape(3, 3)
    tr[:3, :] = values["Tr_velo_to_cam"].reshape(3, 4)
    return {"P2": values["P2"].reshape(3, 4), "lidar2cam": r0 @ tr, "lidar2img": values["P2"].reshape(3, 4) @ r0 @ tr}


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_kitti_bag_holds_every_frame_at_10_hz(data_sets, tmp_path, storage):
    summary = make_bag(data_sets / "kitti", tmp_path / "bag", storage=storage)
    assert summary.frames == KITTI_FRAMES and summary.preset == "kitti"
    messages, types = read_bag(tmp_path / "bag")
    assert types == TOPICS
    by_topic = {topic: [m for m in messages if m[0] == topic] for topic in TOPICS}
    assert [len(by_topic[t]) for t in TOPICS] == [1, KITTI_FRAMES, KITTI_FRAMES, KITTI_FRAMES]
    # the static transform comes first, one frame period before the first frame
    assert messages[0][0] == "/tf_static" and messages[0][1] == KITTI_START_NS - 100_000_000
    assert [t for _, t, _, _ in messages] == sorted(t for _, t, _, _ in messages)
    training = data_sets / "kitti" / "training"
    for i in range(KITTI_FRAMES):
        expected_ns = KITTI_START_NS + i * 100_000_000
        frame = f"{i:06d}"
        info, image, cloud = (by_topic[t][i] for t in ("/camera/camera_info", "/camera/image_raw", "/lidar/points"))
        for _, log_time, msg, _ in (info, image, cloud):
            assert stamp_of(msg) == expected_ns == log_time
        assert cloud[2].header.frame_id == "lidar" and image[2].header.frame_id == "camera"
        # the cloud is the velodyne file, byte for byte
        assert [(f.name, f.offset, f.datatype, f.count) for f in cloud[2].fields] == \
            [("x", 0, 7, 1), ("y", 4, 7, 1), ("z", 8, 7, 1), ("intensity", 12, 7, 1)]
        assert (cloud[2].point_step, cloud[2].height, cloud[2].is_bigendian) == (16, 1, False)
        assert cloud[2].data.tobytes() == (training / "velodyne" / f"{frame}.bin").read_bytes()
        pixels = np.asarray(PILImage.open(training / "image_2" / f"{frame}.png").convert("RGB"))
        assert (image[2].encoding, image[2].height, image[2].width) == ("rgb8", *pixels.shape[:2])
        np.testing.assert_array_equal(image[2].data.reshape(pixels.shape), pixels)
        calib = kitti_calib(training / "calib" / f"{frame}.txt")
        np.testing.assert_array_equal(info[2].k.reshape(3, 3), calib["P2"][:, :3])
        assert (info[2].width, info[2].height) == (pixels.shape[1], pixels.shape[0])
    # the transform is the training data's lidar2cam = R0_rect @ Tr_velo_to_cam, and P (P2 itself) with it
    # gives back the data set's projection P2 @ R0_rect @ Tr_velo_to_cam
    lidar2cam = lidar2cam_from_tf(by_topic["/tf_static"][0][2])
    np.testing.assert_allclose(lidar2cam, calib["lidar2cam"], rtol=1e-9, atol=1e-9)
    camera_info = by_topic["/camera/camera_info"][0][2]
    np.testing.assert_allclose(camera_info.p.reshape(3, 4), calib["P2"], rtol=1e-9, atol=1e-6)
    np.testing.assert_allclose(camera_info.p.reshape(3, 4) @ lidar2cam, calib["lidar2img"], rtol=1e-9, atol=1e-6)


def test_dair_bag_keeps_the_data_sets_timestamps_and_intensity_scale(data_sets, tmp_path):
    make_bag(data_sets / "v2x", tmp_path / "bag", storage="mcap")
    messages, _ = read_bag(tmp_path / "bag")
    info = sorted(json.loads((data_sets / "v2x" / "data_info.json").read_text()),
                  key=lambda f: int(f["pointcloud_timestamp"]))
    images = [m for _, _, m, _ in messages if m.__class__.__name__.endswith("Image")]
    clouds = [m for _, _, m, _ in messages if m.__class__.__name__.endswith("PointCloud2")]
    cams = [m for _, _, m, _ in messages if m.__class__.__name__.endswith("CameraInfo")]
    assert [stamp_of(m) for m in images] == [int(f["image_timestamp"]) * 1000 for f in info]
    assert [stamp_of(m) for m in clouds] == [int(f["pointcloud_timestamp"]) * 1000 for f in info]
    assert [stamp_of(m) for m in cams] == [stamp_of(m) for m in images]
    for frame, cloud, cam in zip(info, clouds, cams):
        points = np.frombuffer(cloud.data.tobytes(), dtype="<f4").reshape(-1, 4)
        pcd_intensity = read_pcd_intensity(data_sets / "v2x" / frame["pointcloud_path"])
        np.testing.assert_array_equal(points[:, 3], pcd_intensity)   # the LiDAR's own 0-255 scale
        assert points[:, 3].max() > 1.0
        intrinsic = json.loads((data_sets / "v2x" / frame["calib_camera_intrinsic_path"]).read_text())
        np.testing.assert_array_equal(cam.k, intrinsic["cam_K"])
        np.testing.assert_array_equal(cam.d, intrinsic["cam_D"])
    extrinsic = json.loads((data_sets / "v2x" / info[0]["calib_virtuallidar_to_camera_path"]).read_text())
    tf = next(m for topic, _, m, _ in messages if topic == "/tf_static")
    lidar2cam = lidar2cam_from_tf(tf)
    np.testing.assert_allclose(lidar2cam[:3, :3], np.array(extrinsic["rotation"]), atol=1e-9)
    np.testing.assert_allclose(lidar2cam[:3, 3], np.array(extrinsic["translation"]).reshape(3), atol=1e-9)


def read_pcd_intensity(path: Path) -> np.ndarray:
    """The intensity column of a PCD (ascii or binary, x y z intensity float32), parsed here."""
    raw = path.read_bytes()
    header_end = raw.index(b"DATA")
    header = dict(line.split(" ", 1) for line in raw[:header_end].decode().splitlines() if " " in line)
    assert header["FIELDS"].split() == ["x", "y", "z", "intensity"], header
    kind_end = raw.index(b"\n", header_end)
    kind = raw[header_end:kind_end].decode().split()[1]
    body = raw[kind_end + 1:]
    if kind == "ascii":
        return np.array([float(line.split()[3]) for line in body.decode().splitlines() if line.strip()], np.float32)
    assert kind == "binary", kind
    return np.frombuffer(body[:int(header["POINTS"]) * 16], dtype="<f4").reshape(-1, 4)[:, 3]


def test_bad_bag_requests_are_clear_errors(data_sets, tmp_path):
    (tmp_path / "taken").mkdir()
    with pytest.raises(BagError, match="already exists"):
        make_bag(data_sets / "kitti", tmp_path / "taken")
    with pytest.raises(BagError, match="storage 'rosbag1'"):
        make_bag(data_sets / "kitti", tmp_path / "b", storage="rosbag1")
    result = subprocess.run([sys.executable, "-c", CLI, "bag", "make", str(tmp_path / "nowhere"), "--out",
                             str(tmp_path / "c")], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "nowhere" in result.stderr and "not found" in result.stderr
    result = subprocess.run([sys.executable, "-c", CLI, "bag", "play", str(tmp_path / "nothing")],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 2 and "bag not found" in result.stderr


def test_play_publishes_the_recorded_bytes(data_sets, tmp_path):
    bag = tmp_path / "bag"
    make_bag(data_sets / "kitti", bag, storage="mcap")
    recorded, _ = read_bag(bag)
    context = Context()
    rclpy.init(context=context, domain_id=DOMAIN_ID)
    received = {topic: [] for topic in TOPICS}
    stopping = threading.Event()
    node = rclpy.create_node("bag_probe", context=context)
    executor = SingleThreadedExecutor(context=context)

    def spin():
        while not stopping.is_set():
            executor.spin_once(timeout_sec=0.05)

    def keep(topic):
        return received[topic].append

    env = {**os.environ, "ROS_DOMAIN_ID": str(DOMAIN_ID), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
           "COLUMNS": "200"}
    spinner = threading.Thread(target=spin, daemon=True)
    try:
        for topic, msgtype in TOPICS.items():
            latched = topic == "/tf_static"
            qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE)
            node.create_subscription(get_message(msgtype), topic, keep(topic), qos, raw=True)
        executor.add_node(node)
        spinner.start()
        player = subprocess.run([sys.executable, "-c", CLI, "bag", "play", str(bag), "--rate", "2", "--delay", "0.5",
                                 "--wait-for-subscribers", "1"],
                                capture_output=True, text=True, timeout=60, env=env, check=False)
        assert player.returncode == 0, player.stderr
        assert "played" in player.stdout and "preset kitti" in player.stdout
        deadline = time.monotonic() + 5.0
        while sum(map(len, received.values())) < len(recorded) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stopping.set()
        spinner.join(5.0)
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=context)
    for topic in TOPICS:
        sent = [raw for t, _, _, raw in recorded if t == topic]
        got = received[topic]
        assert len(got) == len(sent), topic
        for raw_got, raw_sent in zip(got, sent):
            # the recorded CDR, which DDS may pad with zeros to a multiple of 4 bytes on the way
            extra = raw_got[len(raw_sent):]
            assert raw_got[:len(raw_sent)] == raw_sent and extra == bytes(len(extra)) and len(extra) < 4, topic


def test_play_keeps_the_recorded_timing_scaled_by_rate(data_sets, tmp_path):
    """Publish times, taken in the player (arrival times would add the transport's retransmissions)."""
    bag = tmp_path / "bag"
    make_bag(data_sets / "kitti", bag, storage="sqlite3")
    recorded, _ = read_bag(bag)
    published = []
    summary = play_bag(bag, rate=2.0, delay=0.1, domain_id=DOMAIN_ID,
                       on_published=lambda topic, stamp: published.append((time.monotonic(), topic, stamp)))
    assert [(topic, stamp) for _, topic, stamp in published] == [(topic, t) for topic, t, _, _ in recorded]
    first_wall, _, first_stamp = published[0]
    offsets = np.array([wall - first_wall for wall, _, _ in published])
    due = np.array([(stamp - first_stamp) * 1e-9 / 2.0 for _, _, stamp in published])
    assert np.all(offsets >= due - 1e-3)                 # never early
    assert np.median(offsets - due) < 0.02               # and on time, as a rule
    assert offsets[-1] == pytest.approx(0.25, abs=0.05)   # 0.5 s of bag at rate 2
    assert summary.bag_duration_s == pytest.approx(0.5)
    assert sum(summary.messages.values()) == len(recorded)
