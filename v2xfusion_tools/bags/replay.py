"""Replay a bag through the launched perception node and collect what it publishes (the main job's last step).

`replay_through_node(bag, preset, artifacts)` starts `ros2 launch v2xfusion_perception v2xfusion.launch.py
preset:=... artifacts_dir:=...` in its own process group on a private ROS domain, waits until the node
reports its pipeline ready, plays the bag (bags.play_bag) and returns one FrameOutput per
Detection3DArray it received, with the cloud stamps the bag published. The launch is always stopped.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from v2xfusion_perception.dds import use_large_data_profile
from v2xfusion_tools.bags.layout import BagError
from v2xfusion_tools.bags.play import play_bag

READY_TIMEOUT_S = 120.0
# after the last message, how long to wait for the node's last outputs
DRAIN_S = 15.0
OBJECTS_TOPIC = "/v2xfusion/output/objects"
CLOUD_TOPIC = "/lidar/points"


@dataclass(frozen=True)
class FrameOutput:
    """One Detection3DArray: its stamp (ns), frame id and the detected class names with their scores."""

    stamp_ns: int
    frame_id: str
    objects: tuple[tuple[str, float], ...]

    def format(self) -> str:
        counts = Counter(name for name, _ in self.objects)
        listed = ", ".join(f"{n} {name}" for name, n in sorted(counts.items())) or "nothing"
        best = max((score for _, score in self.objects), default=0.0)
        return f"{self.stamp_ns / 1e9:14.3f}  {self.frame_id:>8}  {len(self.objects):2d} objects ({listed})" + (
            f", best score {best:.2f}" if self.objects else "")


@dataclass(frozen=True)
class ReplaySummary:
    """clouds: cloud stamps the bag published; outputs: the node's detections in arrival order; log: the launch log."""

    clouds: int
    outputs: tuple[FrameOutput, ...]
    log: Path

    def format(self) -> str:
        lines = [output.format() for output in self.outputs]
        lines.append(f"{len(self.outputs)} Detection3DArray messages for {self.clouds} clouds "
                     f"({sum(len(o.objects) for o in self.outputs)} objects); node log: {self.log}")
        return "\n".join(lines)


def _launch_env(domain_id: int) -> dict[str, str]:
    """This environment's ROS set-up for a child `ros2`: the venv's bin first, the domain private, discovery local."""
    bin_dir = str(Path(sys.executable).parent)
    env = dict(os.environ)
    env.update(PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", ROS_DOMAIN_ID=str(domain_id),
               ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    return env


def stop_launch(process: subprocess.Popen) -> None:
    """Stop a launch started in its own session: SIGINT to its process group, SIGKILL after 15 s."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


def replay_through_node(bag: str | Path, preset: str, artifacts: str | Path, log: str | Path, pipeline: str = "A",
                        rate: float = 0.5, domain_id: int | None = None) -> ReplaySummary:
    """Launch the node on `artifacts`, play `bag` at `rate`, return what the node published.

    Raises BagError naming the bag or the launch log when the node never becomes ready or exits.
    """
    use_large_data_profile()     # this process publishes the bag's megabyte messages (bags.play_bag)
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import PointCloud2
    from vision_msgs.msg import Detection3DArray

    domain = domain_id if domain_id is not None else 100 + os.getpid() % 100
    log = Path(log)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        process = subprocess.Popen(
            ["ros2", "launch", "v2xfusion_perception", "v2xfusion.launch.py", f"preset:={preset}",
             f"pipeline:={pipeline}", f"artifacts_dir:={Path(artifacts).resolve()}", "input_reliability:=reliable"],
            stdout=out, stderr=subprocess.STDOUT, env=_launch_env(domain), start_new_session=True)
    context = Context()
    rclpy.init(context=context, domain_id=domain)
    node = rclpy.create_node("v2xfusion_replay", context=context)
    clouds: list[int] = []
    outputs: list[FrameOutput] = []
    states: list[tuple[str, str]] = []
    reliable = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)

    def on_objects(msg: Detection3DArray) -> None:
        objects = tuple((d.results[0].hypothesis.class_id, d.results[0].hypothesis.score) for d in msg.detections
                        if d.results)
        stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        outputs.append(FrameOutput(stamp, msg.header.frame_id, objects))

    def on_diagnostics(msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.hardware_id == "/v2xfusion":
                values = {kv.key: kv.value for kv in status.values}
                states.append((values.get("pipeline_state", ""), status.message))

    node.create_subscription(Detection3DArray, OBJECTS_TOPIC, on_objects, reliable)
    node.create_subscription(PointCloud2, CLOUD_TOPIC, lambda m: clouds.append(m.header.stamp.sec), reliable)
    node.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, 10)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    stopping = threading.Event()

    def spin() -> None:
        while not stopping.is_set():
            executor.spin_once(timeout_sec=0.05)

    spinner = threading.Thread(target=spin, daemon=True)
    spinner.start()
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while process.poll() is None and time.monotonic() < deadline and not any(
                state in ("ready", "error") for state, _ in states):
            time.sleep(0.2)
        final = [(state, text) for state, text in states if state in ("ready", "error")]
        if not final or final[-1][0] != "ready":
            reason = final[-1][1] if final else "no diagnostics from the node"
            raise BagError(f"the node did not become ready ({reason}); see {log}")
        played = play_bag(bag, rate=rate, delay=0.5, wait_for_subscribers=1, domain_id=domain)
        deadline = time.monotonic() + DRAIN_S
        expected = played.messages.get(CLOUD_TOPIC, 0)
        while len(outputs) < expected and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.2)
        if process.poll() is not None:
            raise BagError(f"the node exited with code {process.returncode} during the replay; see {log}")
    finally:
        stopping.set()
        spinner.join(5.0)
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=context)
        stop_launch(process)
    return ReplaySummary(len(clouds), tuple(outputs), log)
