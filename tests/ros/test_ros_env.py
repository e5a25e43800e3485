"""Checks that the ROS 2 environment installed by ros2_ws/build.sh into this venv is real and usable.

Every test runs on its own DDS domain (derived from the pid) restricted to localhost, so parallel
test processes never see each other's topics; every rclpy context is shut down in a finally block
and every subprocess has a timeout, so nothing can hang the suite.
"""
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rclpy
from geometry_msgs.msg import TransformStamped
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.time import Time
from sensor_msgs.msg import PointCloud2, PointField
from sensor_msgs_py import point_cloud2
from std_msgs.msg import Header
from tf2_ros import Buffer, StaticTransformBroadcaster, TransformListener

# Domain IDs 1..101 keep every participant's ports below Linux's ephemeral range.
DOMAIN_ID = 1 + os.getpid() % 101
VENV_BIN = Path(sys.executable).parent
CLI_TIMEOUT_S = 60
SPIN_TIMEOUT_S = 20.0



@pytest.fixture
def context():
    """A fresh rclpy context on this process's domain, always shut down afterwards."""
    ctx = Context()
    rclpy.init(context=ctx, domain_id=DOMAIN_ID)
    try:
        yield ctx
    finally:
        rclpy.shutdown(context=ctx)


def _ros2(*args: str) -> subprocess.CompletedProcess:
    """Runs the venv's `ros2 ARGS...` as a user would, from an environment with nothing sourced."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("AMENT_PREFIX_PATH", "CMAKE_PREFIX_PATH", "COLCON_PREFIX_PATH", "PYTHONPATH",
                        "LD_LIBRARY_PATH", "_ROS_WHEELS_BOOTSTRAP_COMPLETE")}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(["ros2", *args], env=env, capture_output=True, text=True,
                          timeout=CLI_TIMEOUT_S, check=False)


def _spin_until(executor: SingleThreadedExecutor, done, step=None) -> bool:
    """Spins `executor` until `done()` is true or SPIN_TIMEOUT_S passes; calls `step()` between spins."""
    deadline = time.monotonic() + SPIN_TIMEOUT_S
    while not done():
        if time.monotonic() > deadline:
            return False
        if step is not None:
            step()
        executor.spin_once(timeout_sec=0.05)
    return True


def _quat_to_matrix(x: float, y: float, z: float, w: float) -> np.ndarray:
    """Rotation matrix (3, 3) float64 of a unit quaternion (x, y, z, w)."""
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def _transform(parent: str, child: str, translation, quat_xyzw) -> TransformStamped:
    msg = TransformStamped()
    msg.header.frame_id = parent
    msg.child_frame_id = child
    msg.transform.translation.x, msg.transform.translation.y, msg.transform.translation.z = translation
    rot = msg.transform.rotation
    rot.x, rot.y, rot.z, rot.w = quat_xyzw
    return msg


def test_interface_show_detection3darray():
    result = _ros2("interface", "show", "vision_msgs/msg/Detection3DArray")
    assert result.returncode == 0, result.stderr
    lines = {line.strip() for line in result.stdout.splitlines()}
    assert "Detection3D[] detections" in lines
    assert "BoundingBox3D bbox" in lines
    assert "ObjectHypothesisWithPose[] results" in lines


def test_pkg_prefix_of_project_is_this_venv():
    result = _ros2("pkg", "prefix", "v2xfusion_perception")
    assert result.returncode == 0, result.stderr
    prefix = Path(result.stdout.strip())
    assert prefix.resolve() == Path(sys.prefix).resolve()
    assert "<name>v2xfusion_perception</name>" in (prefix / "share/v2xfusion_perception/package.xml").read_text()


def test_pointcloud2_round_trip_is_exact(context):
    # A LiDAR-like layout: x, y, z, 4 bytes of padding, intensity, then padding up to 32 bytes.
    n_points, point_step = 1000, 32
    fields = [PointField(name=name, offset=offset, datatype=PointField.FLOAT32, count=1)
              for name, offset in (("x", 0), ("y", 4), ("z", 8), ("intensity", 16))]
    rng = np.random.default_rng(7)
    points = rng.uniform(-80.0, 80.0, size=(n_points, 4)).astype(np.float32)
    header = Header(frame_id="lidar")
    header.stamp.sec, header.stamp.nanosec = 1_700_000_000, 123_456_789
    sent = point_cloud2.create_cloud(header, fields, points, point_step=point_step)
    # Independent decoding of the wire layout: 8 float32 per point, fields at words 0, 1, 2 and 4.
    words = np.frombuffer(bytes(sent.data), dtype=np.float32).reshape(n_points, point_step // 4)
    np.testing.assert_array_equal(words[:, [0, 1, 2, 4]], points)

    received = []
    qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
    pub_node = rclpy.create_node("env_cloud_pub", context=context)
    sub_node = rclpy.create_node("env_cloud_sub", context=context)
    executor = SingleThreadedExecutor(context=context)
    try:
        publisher = pub_node.create_publisher(PointCloud2, "env_test/points", qos)
        sub_node.create_subscription(PointCloud2, "env_test/points", received.append, qos)
        executor.add_node(pub_node)
        executor.add_node(sub_node)
        # Publish until discovery has matched the pair and one message arrived.
        assert _spin_until(executor, lambda: received, step=lambda: publisher.publish(sent))
    finally:
        executor.shutdown()
        pub_node.destroy_node()
        sub_node.destroy_node()

    got = received[0]
    assert got == sent
    assert (got.width, got.height, got.point_step, got.row_step) == (n_points, 1, point_step, n_points * point_step)
    assert bytes(got.data) == bytes(sent.data)
    xyzi = point_cloud2.read_points_numpy(got, field_names=("x", "y", "z", "intensity"))
    assert xyzi.dtype == np.float32
    np.testing.assert_array_equal(xyzi, points)


def test_static_transform_chain_through_tf2(context):
    # base_link -> lidar and lidar -> camera, published once on /tf_static as a robot does.
    t_bl, q_bl = (1.2, 0.0, 1.6), (0.0, 0.0, np.sin(0.15), np.cos(0.15))
    half = 0.5 * np.array([-np.pi / 2, 0.0, -np.pi / 2])  # roll, pitch, yaw of a camera looking along +x
    cr, cp, cy = np.cos(half)
    sr, sp, sy = np.sin(half)
    q_lc = (sr * cp * cy - cr * sp * sy, cr * sp * cy + sr * cp * sy, cr * cp * sy - sr * sp * cy,
            cr * cp * cy + sr * sp * sy)
    t_lc = (0.27, -0.06, -0.08)

    broadcaster_node = rclpy.create_node("env_tf_broadcaster", context=context)
    listener_node = rclpy.create_node("env_tf_listener", context=context)
    executor = SingleThreadedExecutor(context=context)
    buffer = Buffer()
    try:
        broadcaster = StaticTransformBroadcaster(broadcaster_node)
        broadcaster.sendTransform([_transform("base_link", "lidar", t_bl, q_bl),
                                   _transform("lidar", "camera", t_lc, q_lc)])
        TransformListener(buffer, listener_node, spin_thread=False)
        executor.add_node(broadcaster_node)
        executor.add_node(listener_node)
        assert _spin_until(executor, lambda: buffer.can_transform("base_link", "camera", Time()))
        direct = buffer.lookup_transform("lidar", "camera", Time())
        chained = buffer.lookup_transform("base_link", "camera", Time())
    finally:
        executor.shutdown()
        broadcaster_node.destroy_node()
        listener_node.destroy_node()

    d = direct.transform
    assert (d.translation.x, d.translation.y, d.translation.z) == t_lc
    assert (d.rotation.x, d.rotation.y, d.rotation.z, d.rotation.w) == q_lc
    # p_base = R_bl (R_lc p + t_lc) + t_bl
    r_bl, r_lc = _quat_to_matrix(*q_bl), _quat_to_matrix(*q_lc)
    c = chained.transform
    assert chained.header.frame_id == "base_link" and chained.child_frame_id == "camera"
    np.testing.assert_allclose([c.translation.x, c.translation.y, c.translation.z],
                               r_bl @ np.array(t_lc) + np.array(t_bl), atol=1e-12)
    np.testing.assert_allclose(_quat_to_matrix(c.rotation.x, c.rotation.y, c.rotation.z, c.rotation.w),
                               r_bl @ r_lc, atol=1e-12)
