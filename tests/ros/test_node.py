"""The v2xfusion node (v2xfusion_perception/node.py): parameters, bad input, calibration sources, overload.

The node runs in this process with a test double for the pipeline (one box at the centroid of the cloud
it was given, recording what it got), so every assertion is about the node: what it hands the
pipeline, what it publishes, what it counts and logs. Each test process has its own ROS domain on
localhost; every executor thread is stopped and every context shut down in a finally block.
"""
import os
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path

import numpy as np
import pytest
import rclpy
import yaml
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import TransformStamped
from rcl_interfaces.msg import Log
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField
from sensor_msgs_py import point_cloud2
from std_msgs.msg import Header
from tf2_ros import StaticTransformBroadcaster
from vision_msgs.msg import Detection3DArray
from visualization_msgs.msg import MarkerArray

from v2xfusion_perception.config import CONFIG_ROOT
from v2xfusion_perception.frame import Detections
from v2xfusion_perception.node import (
    ParameterError,
    PipelineUnavailable,
    V2XFusionNode,
    make_pipeline,
    validate_parameters,
)

DOMAIN_ID = 102 + os.getpid() % 100
WAIT_S = 10.0
CLASS_NAMES = ("Car", "Pedestrian", "Cyclist")
K = np.array([[200.0, 0.0, 32.0], [0.0, 200.0, 16.0], [0.0, 0.0, 1.0]])
IMAGE_W, IMAGE_H = 64, 32



@pytest.fixture(scope="module")
def context():
    ctx = Context()
    rclpy.init(context=ctx, domain_id=DOMAIN_ID)
    try:
        yield ctx
    finally:
        rclpy.shutdown(context=ctx)


def yaml_params(preset: str) -> dict:
    """configs/ros/<preset>.param.yaml flattened to ROS parameter names (int8.head, ...)."""
    tree = yaml.safe_load((CONFIG_ROOT / "ros" / f"{preset}.param.yaml").read_text())["/**"]["ros__parameters"]
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update({f"{key}.{sub}": v for sub, v in value.items()})
        else:
            flat[key] = value
    return flat


def quat_matrix(x, y, z, w) -> np.ndarray:
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def quat_multiply(a, b):
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    return (aw * bx + ax * bw + ay * bz - az * by, aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw, aw * bw - ax * bx - ay * by - az * bz)


# The camera's pose in the LiDAR frame, as /tf_static carries it: optical axes (z forward = LiDAR x),
# turned by a small yaw, mounted 0.27 m ahead and 0.08 m below the LiDAR.
OPTICAL = quat_multiply((0.0, 0.0, -np.sqrt(0.5), np.sqrt(0.5)), (-np.sqrt(0.5), 0.0, 0.0, np.sqrt(0.5)))
CAMERA_QUAT = quat_multiply((0.0, 0.0, np.sin(0.025), np.cos(0.025)), OPTICAL)
CAMERA_POS = np.array([0.27, -0.06, -0.08])
CAM2LIDAR = np.eye(4)
CAM2LIDAR[:3, :3] = quat_matrix(*CAMERA_QUAT)
CAM2LIDAR[:3, 3] = CAMERA_POS
LIDAR2CAM = np.linalg.inv(CAM2LIDAR)


class CentroidPipeline:
    """Test double: a Car at the centroid of the cloud (score 0.9) and a Cyclist below the threshold."""

    class_names = CLASS_NAMES

    def __init__(self, delay_s: float = 0.0, keep_calls: int = 50):
        self.delay_s = delay_s
        self.calls = deque(maxlen=keep_calls)

    def infer(self, image, points, calibration):
        self.calls.append((image, points, calibration))
        time.sleep(self.delay_s)
        centre = points[:, :3].astype(np.float64).mean(axis=0)
        boxes = np.array([[*centre, 4.0, 1.8, 1.5, 0.3], [*(centre + 5.0), 1.0, 1.0, 1.0, 0.0]], np.float32)
        return Detections(boxes, np.array([0.9, 0.1], np.float32), np.array([0, 2], np.int32), CLASS_NAMES,
                          {"voxelize": 1.0, "head": 2.0})


def header(stamp_ns: int, frame_id: str) -> Header:
    msg = Header(frame_id=frame_id)
    msg.stamp.sec, msg.stamp.nanosec = divmod(int(stamp_ns), 1_000_000_000)
    return msg


XYZI = [PointField(name=n, offset=4 * i, datatype=PointField.FLOAT32, count=1)
        for i, n in enumerate(("x", "y", "z", "intensity"))]


def make_cloud(points: np.ndarray, stamp_ns: int, frame_id: str = "lidar") -> PointCloud2:
    return point_cloud2.create_cloud(header(stamp_ns, frame_id), XYZI, points.astype(np.float32))


def make_image(bgr: np.ndarray, stamp_ns: int, frame_id: str = "camera", encoding: str = "bgr8") -> Image:
    h, w = bgr.shape[:2]
    return Image(header=header(stamp_ns, frame_id), height=h, width=w, encoding=encoding, step=3 * w,
                 data=bgr.tobytes())


def make_camera_info(stamp_ns: int, frame_id: str = "camera") -> CameraInfo:
    info = CameraInfo(header=header(stamp_ns, frame_id), width=IMAGE_W, height=IMAGE_H)
    info.k = K.reshape(-1).tolist()
    return info


def good_points(seed: int, n: int = 300) -> np.ndarray:
    rng = np.random.default_rng(seed)
    points = rng.uniform([5, -10, -2, 0], [40, 10, 2, 1], size=(n, 4))
    return points.astype(np.float32)


class Rig:
    """The node under test plus a driver node that feeds it and records everything it publishes."""

    def __init__(self, context, namespace: str, pipeline_factory, overrides: dict | None = None,
                 preset: str = "kitti", publish_tf: bool = True, keep_messages: bool = True):
        params = {**yaml_params(preset), "diagnostics_period": 0.2, "log_throttle_period": 30.0,
                  **(overrides or {})}
        self.namespace = namespace
        self.keep_messages = keep_messages   # off: only stamps and arrival times (memory measurements)
        self.node = V2XFusionNode(pipeline_factory, context=context, namespace=namespace,
                                  parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])
        self.driver = rclpy.create_node("driver", namespace=namespace, context=context)
        prefix = f"/{namespace}/v2xfusion"
        self.image_pub = self.driver.create_publisher(Image, f"{prefix}/input/image", qos_profile_sensor_data)
        self.info_pub = self.driver.create_publisher(CameraInfo, f"{prefix}/input/camera_info",
                                                     qos_profile_sensor_data)
        self.cloud_pub = self.driver.create_publisher(PointCloud2, f"{prefix}/input/pointcloud",
                                                      qos_profile_sensor_data)
        self.lock = threading.RLock()
        self.objects, self.markers, self.logs = [], [], []
        self.diagnostics: dict[str, str] = {}
        self.diagnostic_level = None
        self.diagnostic_message = ""
        self.received_at: dict[int, float] = {}
        self.arrivals: list[int] = []
        self.driver.create_subscription(Detection3DArray, f"{prefix}/output/objects", self._on_objects, 50)
        self.driver.create_subscription(MarkerArray, f"{prefix}/output/markers", self._keep(self.markers), 50)
        self.driver.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 50)
        self.driver.create_subscription(Log, "/rosout", self._on_log, QoSProfile(depth=1000))
        if publish_tf:
            self.broadcaster = StaticTransformBroadcaster(self.driver)
            tf = TransformStamped(header=header(0, "lidar"), child_frame_id="camera")
            tf.transform.translation.x, tf.transform.translation.y, tf.transform.translation.z = CAMERA_POS.tolist()
            r = tf.transform.rotation
            r.x, r.y, r.z, r.w = CAMERA_QUAT
            self.broadcaster.sendTransform(tf)
        self.stopping = threading.Event()
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self.executor.add_node(self.driver)
        self.spinner = threading.Thread(target=self._spin, daemon=True)
        self.spinner.start()
        assert self.wait(lambda: all(p.get_subscription_count() >= 1
                                     for p in (self.image_pub, self.info_pub, self.cloud_pub))
                         and self.diagnostics), "node did not come up"

    def _spin(self):
        while not self.stopping.is_set():
            self.executor.spin_once(timeout_sec=0.05)

    def close(self):
        self.stopping.set()
        self.spinner.join(5.0)
        self.executor.shutdown(timeout_sec=2.0)
        self.node.destroy_node()
        self.driver.destroy_node()

    def _keep(self, store):
        def callback(msg):
            with self.lock:
                if self.keep_messages:
                    store.append(msg)
        return callback

    def _on_objects(self, msg):
        stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        with self.lock:
            if self.keep_messages:
                self.objects.append(msg)
            self.received_at[stamp] = time.monotonic()
            self.arrivals.append(stamp)

    def _on_diagnostics(self, msg):
        for status in msg.status:
            if status.hardware_id == self.node.get_fully_qualified_name():
                with self.lock:
                    self.diagnostics = {kv.key: kv.value for kv in status.values}
                    self.diagnostic_level = status.level
                    self.diagnostic_message = status.message

    def _on_log(self, msg):
        if msg.name == f"{self.namespace}.v2xfusion":
            with self.lock:
                self.logs.append(msg.msg)

    def wait(self, predicate, timeout: float = WAIT_S) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if predicate():
                    return True
            time.sleep(0.02)
        with self.lock:
            return bool(predicate())

    def counter(self, key: str) -> int:
        with self.lock:
            return int(self.diagnostics.get(key, -1))

    def detections_at(self, stamp_ns: int):
        sec, nanosec = divmod(stamp_ns, 1_000_000_000)
        return [m for m in self.objects if (m.header.stamp.sec, m.header.stamp.nanosec) == (sec, nanosec)]

    def send_pair(self, stamp_ns: int, points: np.ndarray, bgr: np.ndarray | None = None,
                  cloud_frame: str = "lidar", camera_frame: str = "camera"):
        bgr = np.zeros((IMAGE_H, IMAGE_W, 3), np.uint8) if bgr is None else bgr
        self.info_pub.publish(make_camera_info(stamp_ns, camera_frame))
        self.image_pub.publish(make_image(bgr, stamp_ns, camera_frame))
        self.cloud_pub.publish(make_cloud(points, stamp_ns, cloud_frame))

    def good_pair_detected(self, stamp_ns: int, seed: int, **kwargs) -> Detection3DArray:
        """Send a good pair (again, with newer stamps, if lost on the way); return the detections."""
        points = good_points(seed)
        for attempt in range(5):
            stamp = stamp_ns + attempt * 1_000_000
            self.send_pair(stamp, points, **kwargs)
            if self.wait(lambda s=stamp: self.detections_at(s), timeout=2.0):
                (msg,) = self.detections_at(stamp)
                assert_centroid_box(msg, points)
                return msg
        raise AssertionError(f"no detections for the good pair at {stamp_ns}")


def assert_centroid_box(msg: Detection3DArray, points: np.ndarray):
    finite = points[np.isfinite(points).all(axis=1)]
    assert len(msg.detections) == 1    # the 0.1-score box is below score_threshold 0.3
    det = msg.detections[0]
    centre = det.bbox.center.position
    np.testing.assert_allclose([centre.x, centre.y, centre.z], finite[:, :3].astype(np.float64).mean(axis=0),
                               rtol=0, atol=1e-4)
    assert det.results[0].hypothesis.class_id == "Car"
    assert det.results[0].hypothesis.score == pytest.approx(0.9)


_clock = iter(range(10_000))


def next_stamp() -> int:
    """Increasing stamps, one second apart, so every test's messages are newer than the last pair."""
    return 1_700_000_000_000_000_000 + next(_clock) * 1_000_000_000


# ---- parameters ----------------------------------------------------------------------------------

@pytest.mark.parametrize("preset, scale", [("kitti", 1.0), ("v2x", 255.0)])
def test_param_files_validate(preset, scale):
    params = validate_parameters(yaml_params(preset))
    assert params.preset == preset and params.pipeline == "A" and params.precision == "fp32"
    assert params.intensity_scale == scale
    assert params.int8_stages == ("camera", "pfe", "fuser", "head")
    assert params.artifacts_dir == Path(f"artifacts/{preset}/A")
    assert params.fallback_lidar2cam is None and params.fallback_source == "none"


@pytest.mark.parametrize("name, value, words", [
    ("preset", "nuscenes", ["'preset'", "'nuscenes'", "kitti, v2x"]),
    ("pipeline", "C", ["'pipeline'", "A, B"]),
    ("precision", "int4", ["'precision'", "fp32, fp16, int8"]),
    ("device", "NPU", ["'device'", "CPU, GPU, AUTO"]),
    ("score_threshold", 1.5, ["'score_threshold'", "<= 1"]),
    ("intensity_scale", 0.0, ["'intensity_scale'", "> 0"]),
    ("intensity_scale", "255", ["'intensity_scale'", "finite number"]),
    ("max_camera_lidar_delay", -0.1, ["'max_camera_lidar_delay'", "> 0"]),
    ("queue_size", 0, ["'queue_size'", ">= 1"]),
    ("queue_size", 2.5, ["'queue_size'", "integer"]),
    ("int8.head", "yes", ["'int8.head'", "true or false"]),
    ("artifacts_dir", "", ["'artifacts_dir'", "empty"]),
    ("intensity_scale", None, ["'intensity_scale'", "not set"]),
    ("intensity_scal", 255.0, ["unknown parameter 'intensity_scal'", "did you mean 'intensity_scale'"]),
    ("lidar2cam", [1.0] * 15, ["'lidar2cam'", "4x4"]),
    ("lidar2cam", [2.0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1], ["'lidar2cam'", "not a rigid transform"]),
])
def test_bad_parameter_is_one_error_naming_it(name, value, words):
    values = {**yaml_params("kitti"), name: value}
    with pytest.raises(ParameterError) as info:
        validate_parameters(values)
    for word in words:
        assert word in str(info.value), str(info.value)


def test_int_for_a_float_parameter_is_accepted_and_int8_needs_a_stage():
    params = validate_parameters({**yaml_params("kitti"), "intensity_scale": 255, "precision": "int8",
                                  "int8.fuser": False})
    assert params.intensity_scale == 255.0 and isinstance(params.intensity_scale, float)
    assert params.int8_stages == ("camera", "pfe", "head")
    no_stage = {**yaml_params("kitti"), "precision": "int8", **{f"int8.{s}": False for s in
                                                                ("camera", "pfe", "fuser", "head")}}
    with pytest.raises(ParameterError, match="'precision' is int8 but every int8"):
        validate_parameters(no_stage)


def write_calibration(path: Path, data) -> Path:
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def test_fallback_calibration_from_parameter_or_file(tmp_path):
    params = validate_parameters({**yaml_params("kitti"), "lidar2cam": LIDAR2CAM.reshape(-1).tolist()})
    np.testing.assert_array_equal(params.fallback_lidar2cam, LIDAR2CAM)
    assert params.fallback_intrinsics is None and params.fallback_source == "parameter lidar2cam"
    path = write_calibration(tmp_path / "calib.yaml", {"lidar2cam": LIDAR2CAM.tolist(), "intrinsics": K.tolist()})
    params = validate_parameters({**yaml_params("kitti"), "calibration_file": str(path)})
    np.testing.assert_array_equal(params.fallback_lidar2cam, LIDAR2CAM)
    np.testing.assert_array_equal(params.fallback_intrinsics, K)
    assert str(path) in params.fallback_source
    with pytest.raises(ParameterError, match="both set"):
        validate_parameters({**yaml_params("kitti"), "calibration_file": str(path),
                             "lidar2cam": LIDAR2CAM.reshape(-1).tolist()})


@pytest.mark.parametrize("content, words", [
    (None, ["file not found"]),
    ("lidar2cam: [1, 2", ["malformed YAML"]),
    ({"intrinsics": K.tolist()}, ["'lidar2cam'"]),
    ({"lidar2cam": np.eye(4).tolist(), "distortion": [0]}, ["unknown key", "'distortion'"]),
    ({"lidar2cam": np.eye(4).tolist(), "intrinsics": np.zeros((3, 3)).tolist()}, ["not a pinhole"]),
    ({"lidar2cam": np.eye(3).tolist()}, ["key 'lidar2cam'", "4x4"]),
])
def test_bad_calibration_file_names_file_and_key(tmp_path, content, words):
    path = tmp_path / "calib.yaml"
    if content is not None:
        write_calibration(path, content)
    with pytest.raises(ParameterError) as info:
        validate_parameters({**yaml_params("kitti"), "calibration_file": str(path)})
    assert "'calibration_file'" in str(info.value) and str(path) in str(info.value)
    for word in words:
        assert word in str(info.value), str(info.value)


def test_make_pipeline_says_what_is_missing(tmp_path):
    def params(folder):
        return validate_parameters({**yaml_params("v2x"), "artifacts_dir": str(folder), "pipeline": "B"})

    with pytest.raises(PipelineUnavailable, match="folder not found") as info:
        make_pipeline(params(tmp_path / "nothing"))
    assert "artifacts/v2x/B" in str(info.value) and "'artifacts_dir'" in str(info.value)
    with pytest.raises(PipelineUnavailable, match="no manifest.json"):
        make_pipeline(params(tmp_path))
    (tmp_path / "manifest.json").write_text("{}")
    with pytest.raises(PipelineUnavailable, match="pipeline B .*cannot start") as info:
        make_pipeline(params(tmp_path))
    assert "manifest" in str(info.value)


def test_node_main_exits_with_an_error_naming_the_parameter(tmp_path):
    code = ("import sys; from v2xfusion_perception.node import main; "
            "sys.exit(main(['v2xfusion_node', '--ros-args', '--params-file', sys.argv[1], "
            "'-p', 'intensity_scale:=0.0']))")
    env = {**os.environ, "ROS_DOMAIN_ID": str(DOMAIN_ID), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    result = subprocess.run([sys.executable, "-c", code, str(CONFIG_ROOT / "ros" / "kitti.param.yaml")],
                            capture_output=True, text=True, timeout=60, env=env, check=False)
    assert result.returncode == 2, result.stderr
    assert "parameter 'intensity_scale' must be > 0" in result.stderr
    assert "Traceback" not in result.stderr


# ---- behaviour on the wire ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def rig(context):
    pipeline = CentroidPipeline()
    rig = Rig(context, "rig", lambda params: pipeline)
    rig.pipeline = pipeline
    try:
        yield rig
    finally:
        rig.close()


def test_good_pair_reaches_the_pipeline_converted_and_comes_back_in_the_cloud_frame(rig):
    stamp = next_stamp()
    rgb = np.random.default_rng(1).integers(0, 256, (IMAGE_H, IMAGE_W, 3), dtype=np.uint8)
    msg = rig.good_pair_detected(stamp, seed=11, bgr=np.ascontiguousarray(rgb[..., ::-1]))
    image, points, calibration = rig.pipeline.calls[-1]
    np.testing.assert_array_equal(image, rgb)
    np.testing.assert_array_equal(points, good_points(11))
    np.testing.assert_array_equal(calibration.intrinsics, K)
    np.testing.assert_allclose(calibration.lidar2cam, LIDAR2CAM, atol=1e-12)
    assert calibration.image_size == (IMAGE_W, IMAGE_H)
    assert msg.header.frame_id == "lidar"
    assert msg.detections[0].header == msg.header
    assert rig.wait(lambda: any(m.markers and m.markers[1].header == msg.header for m in rig.markers))
    assert rig.wait(lambda: rig.diagnostics.get("calibration_source") == "tf2 lidar -> camera")
    assert rig.wait(lambda: float(rig.diagnostics.get("stage_ms.head", 0)) == pytest.approx(2.0))


def cloud_without_intensity(rig, stamp):
    cloud = make_cloud(good_points(1), stamp)
    cloud.fields = cloud.fields[:3]
    rig.cloud_pub.publish(cloud)


def cloud_with_nan(rig, stamp):
    points = good_points(2)
    points[::7, 0] = np.nan
    rig.info_pub.publish(make_camera_info(stamp))
    rig.image_pub.publish(make_image(np.zeros((IMAGE_H, IMAGE_W, 3), np.uint8), stamp))
    rig.cloud_pub.publish(make_cloud(points, stamp))
    assert rig.wait(lambda: rig.detections_at(stamp))
    assert_centroid_box(rig.detections_at(stamp)[0], points)


def cloud_with_zero_points(rig, stamp):
    rig.cloud_pub.publish(make_cloud(np.zeros((0, 4), np.float32), stamp))


def cloud_truncated(rig, stamp):
    cloud = make_cloud(good_points(3), stamp)
    cloud.data = bytes(cloud.data)[:-10]
    rig.cloud_pub.publish(cloud)


def intensity_0_255_with_scale_1(rig, stamp):
    points = good_points(4)
    points[:, 3] *= 255.0
    rig.send_pair(stamp, points)
    assert rig.wait(lambda: rig.detections_at(stamp))


def image_mono8(rig, stamp):
    rig.image_pub.publish(make_image(np.zeros((IMAGE_H, IMAGE_W, 3), np.uint8), stamp, encoding="mono8"))


def image_other_size_than_camera_info(rig, stamp):
    rig.info_pub.publish(make_camera_info(stamp))
    rig.image_pub.publish(make_image(np.zeros((IMAGE_H + 8, IMAGE_W + 16, 3), np.uint8), stamp))


def image_truncated(rig, stamp):
    image = make_image(np.zeros((IMAGE_H, IMAGE_W, 3), np.uint8), stamp)
    image.data = bytes(image.data)[:-3]
    rig.image_pub.publish(image)


def pair_out_of_order(rig, stamp):
    rig.send_pair(stamp - 5_000_000_000, good_points(5))


def image_without_cloud(rig, stamp):
    """An image, then half a second later a pair: only then is it sure that no cloud will match the image."""
    rig.image_pub.publish(make_image(np.zeros((IMAGE_H, IMAGE_W, 3), np.uint8), stamp - 500_000_000))
    time.sleep(0.05)
    rig.send_pair(stamp, good_points(10))


def cloud_in_a_frame_without_transform(rig, stamp):
    rig.send_pair(stamp, good_points(6), cloud_frame="velodyne_unknown")


BAD_INPUTS = [
    (cloud_without_intensity, "cloud_fields", ["no 'intensity' field", "fields: x, y, z"]),
    (cloud_with_nan, "cloud_nonfinite", ["NaN"]),
    (cloud_with_zero_points, "cloud_empty", ["no points"]),
    (cloud_truncated, "cloud_truncated", ["PointCloud2 data is", "bytes"]),
    (intensity_0_255_with_scale_1, "intensity_out_of_range", ["intensity_scale 1", "255"]),
    (image_mono8, "image_encoding", ["'mono8'"]),
    (image_other_size_than_camera_info, "camera_info_size", ["80 x 40", "CameraInfo says 64 x 32"]),
    (image_truncated, "image_size", ["Image data is", "bytes"]),
    (pair_out_of_order, "cloud_out_of_order", ["out of order"]),
    (image_without_cloud, "image_unpaired", ["has no cloud within max_camera_lidar_delay"]),
    (cloud_in_a_frame_without_transform, "no_extrinsic", ["'velodyne_unknown'", "no lidar2cam"]),
]


@pytest.mark.parametrize("send_bad, key, words", BAD_INPUTS, ids=[case[0].__name__ for case in BAD_INPUTS])
def test_bad_input_is_counted_logged_and_the_next_good_pair_is_right(rig, send_bad, key, words):
    before = rig.counter(key)
    assert before >= 0
    stamp = next_stamp()
    for _ in range(3):  # sensor-data QoS is best effort: send again if it was lost
        send_bad(rig, stamp)
        if rig.wait(lambda: rig.counter(key) > before, timeout=3.0):
            break
    assert rig.counter(key) > before, f"diagnostics counter {key} did not grow"
    assert rig.wait(lambda: any(f"[{key}]" in line and all(w in line for w in words) for line in rig.logs)), \
        [line for line in rig.logs if key in line]
    rig.good_pair_detected(next_stamp(), seed=20)
    assert rig.node.counters()["internal_errors"] == 0


def test_same_problem_is_logged_once_per_throttle_period(rig):
    lines_before = sum("[cloud_fields]" in line for line in rig.logs)
    before = rig.counter("cloud_fields")
    for _ in range(6):
        cloud_without_intensity(rig, next_stamp())
        time.sleep(0.02)
    assert rig.wait(lambda: rig.counter("cloud_fields") >= before + 5)
    time.sleep(0.3)
    assert sum("[cloud_fields]" in line for line in rig.logs) - lines_before <= 1


def test_missing_pipeline_leaves_the_node_up_reporting_why(context, tmp_path):
    rig = Rig(context, "nopipe", make_pipeline, {"artifacts_dir": str(tmp_path)}, publish_tf=False)
    try:
        assert rig.wait(lambda: rig.diagnostic_level == b"\x02")
        assert "manifest.json" in rig.diagnostic_message and str(tmp_path) in rig.diagnostic_message
        assert rig.diagnostics["pipeline_state"] == "error"
        for _ in range(3):
            rig.send_pair(next_stamp(), good_points(7))
            if rig.wait(lambda: rig.counter("pairs_without_pipeline") >= 1, timeout=2.0):
                break
        assert rig.counter("pairs_without_pipeline") >= 1
        assert rig.objects == []
    finally:
        rig.close()


@pytest.mark.parametrize("source", ["parameter", "file"])
def test_fallback_extrinsic_is_used_when_tf_has_none(context, tmp_path, source):
    other_k = K * np.array([[1.5], [1.5], [1.0]])
    if source == "parameter":
        overrides = {"lidar2cam": LIDAR2CAM.reshape(-1).tolist()}
    else:
        path = write_calibration(tmp_path / "calib.yaml", {"lidar2cam": LIDAR2CAM.tolist(),
                                                            "intrinsics": other_k.tolist()})
        overrides = {"calibration_file": str(path)}
    pipeline = CentroidPipeline()
    rig = Rig(context, f"fallback_{source}", lambda params: pipeline, overrides, publish_tf=False)
    try:
        rig.good_pair_detected(next_stamp(), seed=8, cloud_frame="lidar_no_tf", camera_frame="camera_no_tf")
        _, _, calibration = pipeline.calls[-1]
        np.testing.assert_array_equal(calibration.lidar2cam, LIDAR2CAM)
        np.testing.assert_array_equal(calibration.intrinsics, K if source == "parameter" else other_k)
        expected = "parameter lidar2cam" if source == "parameter" else f"calibration_file {path}"
        assert rig.wait(lambda: rig.diagnostics.get("calibration_source") == expected)
    finally:
        rig.close()


# ---- overload ------------------------------------------------------------------------------------

def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_overload_keeps_memory_flat_and_latency_bounded(context):
    """Pairs at 5x the rate inference can take (50 Hz against 100 ms) for 30 s: newest pair wins."""
    inference_s, publish_hz, duration_s, warmup_s = 0.1, 50.0, 30.0, 10.0
    pipeline = CentroidPipeline(delay_s=inference_s, keep_calls=1)
    rig = Rig(context, "overload", lambda params: pipeline, {"diagnostics_period": 1.0}, keep_messages=False)
    sent_at: dict[int, float] = {}
    rng = np.random.default_rng(9)
    bgr = rng.integers(0, 256, (96, 320, 3), dtype=np.uint8)
    points = good_points(9, n=10_000)
    info = CameraInfo(width=320, height=96)
    info.k = K.reshape(-1).tolist()
    stop = threading.Event()

    def publish():
        start = time.monotonic()
        for i in range(int(duration_s * publish_hz)):
            due = start + i / publish_hz
            while not stop.is_set() and time.monotonic() < due:
                time.sleep(max(0.0, min(0.005, due - time.monotonic())))
            if stop.is_set():
                return
            stamp = next_stamp()
            info.header = header(stamp, "camera")
            rig.info_pub.publish(info)
            rig.image_pub.publish(make_image(bgr, stamp))
            sent_at[stamp] = time.monotonic()
            rig.cloud_pub.publish(make_cloud(points, stamp))

    samples = []
    publisher = threading.Thread(target=publish, daemon=True)
    started = time.monotonic()
    try:
        publisher.start()
        while publisher.is_alive() and time.monotonic() - started < duration_s + 15:
            samples.append((time.monotonic() - started, rss_bytes()))
            time.sleep(0.25)
        elapsed = time.monotonic() - started
        assert not publisher.is_alive()
        time.sleep(0.5)
        counters = rig.node.counters()
    finally:
        stop.set()
        publisher.join(5.0)
        rig.close()

    published_rate = len(sent_at) / elapsed
    with rig.lock:
        latencies = [(sent_at[s] - started, rig.received_at[s] - sent_at[s]) for s in rig.received_at if s in sent_at]
        stamps = list(rig.arrivals)
    output_rate = counters["frames_published"] / elapsed
    after = [lat for t, lat in latencies if t >= warmup_s]
    base = np.median([rss for t, rss in samples if warmup_s - 1.0 <= t <= warmup_s])
    peak = max(rss for t, rss in samples if t >= warmup_s)
    report = (f"sent {published_rate:.1f} pairs/s, output {output_rate:.1f} Hz, "
              f"dropped {counters['pairs_dropped_overload']}"
              f", latency after warm-up p50 {np.median(after) * 1e3:.0f} ms p95 {np.percentile(after, 95) * 1e3:.0f} ms"
              f" max {max(after) * 1e3:.0f} ms, RSS {base / 2**20:.1f} -> peak {peak / 2**20:.1f} MiB "
              f"({(peak / base - 1) * 100:+.2f}%)")
    print(report)
    assert published_rate >= 0.8 * publish_hz, report
    assert output_rate >= 0.6 / inference_s, report            # inference kept busy
    assert counters["pairs_dropped_overload"] >= 0.5 * len(sent_at), report
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps), "outputs out of order"
    assert peak <= 1.05 * base, report
    # newest wins: a pair waits at most one inference before its own (~2 x 100 ms), plus transport
    assert np.percentile(after, 95) <= 0.4, report
    assert max(after) <= 1.0, report
