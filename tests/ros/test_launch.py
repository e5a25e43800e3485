"""`ros2 launch v2xfusion_perception v2xfusion.launch.py preset:=...` starts the node with its preset.

The launch runs as a user would start it (the venv's `ros2`, nothing sourced) in its own process group
on this test process's ROS domain; it is always stopped with SIGINT to the group, then SIGKILL.
"""
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor

from v2xfusion_tools.bags.replay import stop_launch as stop

DOMAIN_ID = 203 + os.getpid() % 29
VENV_BIN = Path(sys.executable).parent
WAIT_S = 30.0


def launch(*arguments: str, log: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items()
           if k not in ("AMENT_PREFIX_PATH", "CMAKE_PREFIX_PATH", "COLCON_PREFIX_PATH", "PYTHONPATH",
                        "LD_LIBRARY_PATH", "_ROS_WHEELS_BOOTSTRAP_COMPLETE")}
    env.update(PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}", ROS_DOMAIN_ID=str(DOMAIN_ID),
               ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    with log.open("w") as out:
        return subprocess.Popen(["ros2", "launch", "v2xfusion_perception", "v2xfusion.launch.py", *arguments],
                                stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)


@pytest.mark.parametrize("preset, scale", [("kitti", "1.000"), ("v2x", "255.000")])
def test_launch_with_preset_runs_the_node_with_that_presets_parameters(tmp_path, preset, scale):
    artifacts = tmp_path / "no_artifacts"
    process = launch(f"preset:={preset}", "pipeline:=B", f"artifacts_dir:={artifacts}",
                     "image_topic:=/front/image", log=tmp_path / "launch.log")
    context = Context()
    rclpy.init(context=context, domain_id=DOMAIN_ID)
    statuses = []
    stopping = threading.Event()
    node = rclpy.create_node("launch_probe", context=context)
    executor = SingleThreadedExecutor(context=context)

    def spin():
        while not stopping.is_set():
            executor.spin_once(timeout_sec=0.05)

    spinner = threading.Thread(target=spin, daemon=True)
    try:
        node.create_subscription(DiagnosticArray, "/diagnostics",
                                 lambda msg: statuses.extend(s for s in msg.status if s.hardware_id == "/v2xfusion"),
                                 10)
        executor.add_node(node)
        spinner.start()
        deadline = time.monotonic() + WAIT_S
        while not statuses and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.1)
        assert statuses, (tmp_path / "launch.log").read_text()
        values = {kv.key: kv.value for kv in statuses[-1].values}
        # from the launch arguments
        assert values["preset"] == preset and values["pipeline"] == "B"
        assert values["artifacts_dir"] == str(artifacts)
        # from configs/ros/<preset>.param.yaml
        assert values["precision"] == "fp32" and values["device"] == "CPU"
        assert values["intensity_scale"] == scale
        # no model there: the node says so and keeps running
        assert statuses[-1].level == b"\x02" and "folder not found" in statuses[-1].message
        assert values["pipeline_state"] == "error"
        # topics: remapped image, default cloud and camera info
        for topic in ("/front/image", "/lidar/points", "/camera/camera_info"):
            while node.count_subscribers(topic) < 1 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert node.count_subscribers(topic) >= 1, topic
        assert node.count_publishers("/v2xfusion/output/objects") >= 1
        assert process.poll() is None
    finally:
        stopping.set()
        spinner.join(5.0)
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=context)
        stop(process)
    assert process.returncode is not None
