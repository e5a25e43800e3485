"""End to end: `ros2 launch ... preset:=kitti` with a real exported model, a 20-frame synthetic bag played
into it, and the Detection3DArray it publishes checked against `v2xfusion run` on the same frames.

The model is the runtime tests' tiny kitti Pipeline A detector (tests/runtime/reference.py: a synthetic
set inside its range, the head fitted to the labels so that it detects the objects, exported to an
artifact folder). Its detections reach us twice: through the node (Image + CameraInfo + PointCloud2 +
/tf_static messages, approximate-time pairing, conversions) and through the offline runner reading the
files (--dump-pred KITTI txt). Same count per frame and centres within 1 cm, with the runner's txt
rounding (2 decimals) inside that.
"""
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy
from test_bag import read_bag
from test_launch import DOMAIN_ID, launch, stop  # the launch runs on test_launch's domain
from vision_msgs.msg import Detection3DArray

from v2xfusion_tools.datasets.raw import open_raw_dataset
from v2xfusion_tools.evaluation.io import read_predictions
from v2xfusion_tools.evaluation.lidar_detections import kitti_from_lidar_detections

REPO = Path(__file__).resolve().parents[2]
FRAMES = 20
CLASS_NAMES = ("Car", "Pedestrian", "Cyclist")
# the bag at a tenth of its 10 Hz, so that the node (100-300 ms a frame on two loaded cores) fuses every
# pair instead of keeping only the newest
RATE = 0.1
CENTRE_TOLERANCE_M = 0.01
# a box scoring this close to the 0.3 threshold may land on either side in the two paths (the
# calibration reaches the node as a tf quaternion, the runner reads the calib file): not counted
SCORE_MARGIN = 1e-3


def tool(*args, timeout: float) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, *map(str, args)], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, f"{args}:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def replay_inputs(tmp_path_factory):
    """(data set, artifact folder, bag, run's prediction folder)."""
    root = tmp_path_factory.mktemp("end_to_end")
    tool("-m", "tests.runtime.reference", root / "ref", "--pipeline", "A", "--preset", "kitti", "--frames", FRAMES,
         timeout=600)
    data, artifacts = root / "ref" / "data", root / "ref" / "artifacts" / "kitti" / "A"
    tool("-m", "v2xfusion_tools.cli", "bag", "make", data, "--preset", "kitti", "--out", root / "bag", timeout=300)
    tool("-m", "v2xfusion_tools.cli", "run", data, "--preset", "kitti", "--pipeline", "A", "--artifacts", artifacts,
         "--dump-pred", "--pred-dir", root / "pred", "--threads", "1", timeout=300)
    return data, artifacts, root / "bag", root / "pred"


class Probe:
    """A node recording the perception node's detections and diagnostics."""

    def __init__(self):
        self.context = Context()
        rclpy.init(context=self.context, domain_id=DOMAIN_ID)
        self.node = rclpy.create_node("end_to_end_probe", context=self.context)
        self.detections, self.states = [], []
        reliable = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        self.node.create_subscription(Detection3DArray, "/v2xfusion/output/objects", self.detections.append, reliable)
        self.node.create_subscription(
            DiagnosticArray, "/diagnostics",
            lambda m: self.states.extend({kv.key: kv.value for kv in s.values} for s in m.status
                                         if s.hardware_id == "/v2xfusion"), 10)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.stopping = threading.Event()
        self.spinner = threading.Thread(target=self._spin, daemon=True)
        self.spinner.start()

    def _spin(self):
        while not self.stopping.is_set():
            self.executor.spin_once(timeout_sec=0.05)

    def close(self):
        self.stopping.set()
        self.spinner.join(5.0)
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


def yaw_of(q) -> float:
    return float(np.arctan2(2.0 * (q.w * q.z + q.x * q.y), 1.0 - 2.0 * (q.y * q.y + q.z * q.z)))


def lidar_boxes(msg: Detection3DArray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(K, 7) boxes, (K,) scores, (K,) class indices of a Detection3DArray."""
    boxes = [(d.bbox.center.position.x, d.bbox.center.position.y, d.bbox.center.position.z, d.bbox.size.x,
              d.bbox.size.y, d.bbox.size.z, yaw_of(d.bbox.center.orientation)) for d in msg.detections]
    scores = [d.results[0].hypothesis.score for d in msg.detections]
    labels = [CLASS_NAMES.index(d.results[0].hypothesis.class_id) for d in msg.detections]
    return np.array(boxes, np.float64).reshape(-1, 7), np.array(scores), np.array(labels, np.int64)


def test_launched_node_detects_what_the_offline_runner_detects(replay_inputs, tmp_path):
    data, artifacts, bag, pred_dir = replay_inputs
    # reliable inputs: over best effort a megabyte image or cloud is lost whenever one of its fragments is
    process = launch("preset:=kitti", "pipeline:=A", f"artifacts_dir:={artifacts}", "input_reliability:=reliable",
                     log=tmp_path / "launch.log")
    probe = Probe()
    try:
        deadline = time.monotonic() + 120.0
        while process.poll() is None and time.monotonic() < deadline and not any(
                s.get("pipeline_state") in ("ready", "error") for s in probe.states):
            time.sleep(0.2)
        state = [s for s in probe.states if s.get("pipeline_state") in ("ready", "error")]
        assert state and state[-1]["pipeline_state"] == "ready", (tmp_path / "launch.log").read_text()[-3000:]
        env = {**os.environ, "ROS_DOMAIN_ID": str(DOMAIN_ID), "PYTHONPATH": str(REPO)}
        played = subprocess.run([sys.executable, "-m", "v2xfusion_tools.cli", "bag", "play", str(bag), "--rate",
                                 str(RATE), "--wait-for-subscribers", "1"], env=env, capture_output=True, text=True,
                                timeout=300)
        assert played.returncode == 0, played.stderr[-2000:]
        # every pair is published or, when inference fell behind, replaced by a newer one and counted
        deadline = time.monotonic() + 30.0
        while time.monotonic() < deadline and (not probe.states or int(probe.states[-1]["pairs"]) < FRAMES or len(
                probe.detections) + int(probe.states[-1]["pairs_dropped_overload"]) < FRAMES):
            time.sleep(0.2)
        assert process.poll() is None, (tmp_path / "launch.log").read_text()[-3000:]
    finally:
        probe.close()
        stop(process)

    counters = probe.states[-1]
    assert int(counters["pairs"]) == FRAMES, counters
    assert len(probe.detections) + int(counters["pairs_dropped_overload"]) == FRAMES, counters
    assert len(probe.detections) >= FRAMES // 2, counters
    clouds = {(h.stamp.sec, h.stamp.nanosec): h for topic, _, message, _ in read_bag(bag)[0]
              if topic == "/lidar/points" for h in (message.header,)}
    assert len(clouds) == FRAMES
    # outputs in stamp order, each with the stamp and frame id of its cloud
    stamps = [(m.header.stamp.sec, m.header.stamp.nanosec) for m in probe.detections]
    assert stamps == sorted(set(stamps)) and all(s in clouds for s in stamps)
    assert all(m.header.frame_id == clouds[s].frame_id for m, s in zip(probe.detections, stamps))
    dataset = open_raw_dataset(data)
    frame_ids = sorted(dataset.frame_ids)
    frame_of = {stamp: frame_id for stamp, frame_id in zip(sorted(clouds), frame_ids)}
    published = [frame_of[s] for s in stamps]
    compared = 0
    for frame_id, msg, runner in zip(published, probe.detections, read_predictions(pred_dir, published)):
        raw = dataset.read(frame_id)
        boxes, scores, labels = lidar_boxes(msg)
        node = kitti_from_lidar_detections(boxes, scores, labels, CLASS_NAMES, raw.lidar2cam, raw.lidar2img,
                                           _image_size(raw.image_path))
        sure_node = node.score > 0.3 + SCORE_MARGIN
        sure_runner = runner.score > 0.3 + SCORE_MARGIN
        assert sure_node.sum() == sure_runner.sum(), (frame_id, node.score, runner.score)
        for location, kind in zip(runner.location[sure_runner], np.array(runner.types)[sure_runner]):
            distance = np.linalg.norm(node.location - location, axis=1)
            best = int(np.argmin(distance))
            assert distance[best] <= CENTRE_TOLERANCE_M and node.types[best] == kind, (frame_id, location)
        compared += int(sure_runner.sum())
    assert compared >= len(published)  # the tiny detector finds several objects in most frames


def _image_size(path: Path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as image:
        return image.size
