"""What the ROS 2 node adds on top of inference: message conversion, pairing, publishing.

Run: .venv/bin/python benchmarks/node.py [--preset kitti v2x] [--frames 40] [--repeat 15]
     .venv/bin/python benchmarks/node.py --preset kitti --artifacts ART --data DATA [--frames 20] [--blocks 8]
     (add --default-allocator to see the node without keep_large_buffers)

Per preset, at the preset's sensor sizes (KITTI: 1242x375 image, ~100k points; DAIR-V2X-I:
1920x1080, ~170k points, as the synthetic sets):
1. conversions alone (median of --repeat after a warm-up): PointCloud2 -> (N, 4) for the packed
   16-byte layout and a padded 32-byte layout with the fields reordered, beside sensor_msgs_py's
   read_points_numpy on the packed one; Image bgr8 -> RGB; 50 detections -> Detection3DArray +
   MarkerArray.
2. end to end: the node in this process (set up as its main() does), the sensors in another one (as
   on a robot: a driver process with the large-data Fast DDS profile publishes camera info, image,
   cloud and the static LiDAR -> camera transform, and receives the Detection3DArray), over DDS on
   localhost in a ROS domain of their own. With a pipeline that costs nothing (it returns 50 fixed
   boxes) the latency from publishing the cloud to receiving the objects is all ROS: transport both
   ways, conversion, pairing, message building.
With --artifacts: an exported model on a data set's frames, called directly (the bare runtime) and
through the node, in alternating blocks (bare, node, bare, node, ..., bare) so that a machine drifting
faster or slower affects both alike:
- throughput: the sensors publish at the data set's rate (10 Hz), faster than the model; the node runs
  frames back to back (newest pair wins) and its output rate against the bare runtime's frames per
  second is the ROS overhead (conversion, sync, publish and the subscriptions' work beside
  inference), target <= 5% of the frame time;
- latency: frames published slowly enough that none waits; cloud publish -> objects received, split
  at the pipeline's infer call into the input side, inference and the output side.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

import numpy as np
import yaml

# neither imports ROS: the DDS environment below is set before rclpy loads
from v2xfusion_perception.allocator import keep_large_buffers
from v2xfusion_perception.dds import use_large_data_profile

os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
# The driver process (which inherits this environment) publishes megabyte messages: as a robot's drivers
# should, it uses the large-data profile, so that transport losses do not pass for the node's overhead.
TRANSPORT = use_large_data_profile()
DOMAIN_ID = int(os.environ.get("ROS_DOMAIN_ID", str(180 + os.getpid() % 50)))

import rclpy  # noqa: E402  (after the DDS environment is set)
from rclpy.context import Context  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField  # noqa: E402
from sensor_msgs_py import point_cloud2  # noqa: E402
from std_msgs.msg import Header  # noqa: E402
from vision_msgs.msg import Detection3DArray  # noqa: E402

from v2xfusion_perception import ros_convert  # noqa: E402
from v2xfusion_perception.config import CONFIG_ROOT  # noqa: E402
from v2xfusion_perception.frame import Detections  # noqa: E402
from v2xfusion_perception.node import V2XFusionNode  # noqa: E402

SENSORS = {"kitti": ((1242, 375), 100_000), "v2x": ((1920, 1080), 170_000)}
N_BOXES = 50
WARM_UP = 3
SENSOR_RATE_HZ = 10.0     # KITTI's camera and LiDAR rate
DISTINCT_FRAMES = 30      # data set frames the driver cycles through
BARE_BLOCK = 10           # frames in each block of bare runtime calls
# The driver's subscription to the node's output (the node publishes objects reliable, depth 10).
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
CLASS_NAMES = ("Car", "Pedestrian", "Cyclist")


def median_ms(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def stamped(stamp_ns: int, frame_id: str) -> Header:
    header = Header(frame_id=frame_id)
    header.stamp.sec, header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
    return header


def random_points(n_points: int, seed: int) -> np.ndarray:
    """(n, 4) float32: x, y, z uniform in +-50 m, intensity in [0, 1]."""
    points = np.random.default_rng(seed).uniform(-50, 50, (n_points, 4)).astype(np.float32)
    points[:, 3] = np.abs(points[:, 3]) / 50
    return points


def packed_cloud(points: np.ndarray) -> PointCloud2:
    fields = [PointField(name=n, offset=4 * i, datatype=PointField.FLOAT32, count=1)
              for i, n in enumerate(("x", "y", "z", "intensity"))]
    return point_cloud2.create_cloud(stamped(0, "lidar"), fields, points)


def padded_cloud(points: np.ndarray) -> PointCloud2:
    """32 bytes a point: intensity, ring, time, then x y z further on (a driver's own layout)."""
    layout = (("intensity", 0), ("z", 12), ("x", 16), ("y", 20))
    block = np.zeros((len(points), 8), np.float32)
    for name, offset in layout:
        block[:, offset // 4] = points[:, ("x", "y", "z", "intensity").index(name)]
    msg = PointCloud2(height=1, width=len(points), point_step=32, row_step=32 * len(points), is_dense=True)
    msg.fields = [PointField(name=n, offset=o, datatype=PointField.FLOAT32, count=1) for n, o in layout]
    msg.data = block.tobytes()
    return msg


def bgr_image(size: tuple[int, int]) -> Image:
    width, height = size
    pixels = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return Image(header=stamped(0, "camera"), height=height, width=width, encoding="bgr8", step=3 * width,
                 data=pixels.tobytes())


def fixed_detections() -> Detections:
    rng = np.random.default_rng(1)
    boxes = np.column_stack([rng.uniform(0, 70, N_BOXES), rng.uniform(-30, 30, N_BOXES), rng.uniform(-2, 0, N_BOXES),
                             rng.uniform(1, 5, (N_BOXES, 3)), rng.uniform(-np.pi, np.pi, N_BOXES)]).astype(np.float32)
    return Detections(boxes, rng.uniform(0.4, 1.0, N_BOXES).astype(np.float32),
                      rng.integers(0, 3, N_BOXES).astype(np.int32), CLASS_NAMES)


class FreePipeline:
    """Inference that costs nothing: the node's own work is all that is measured."""

    class_names = CLASS_NAMES

    def __init__(self):
        self.detections = fixed_detections()

    def infer(self, image, points, calibration):
        return self.detections


def conversions(preset: str, repeat: int) -> dict[str, float]:
    (width, height), n_points = SENSORS[preset]
    points = random_points(n_points, seed=2)
    packed, padded, image = packed_cloud(points), padded_cloud(points), bgr_image((width, height))
    detections, header = fixed_detections(), stamped(0, "lidar")
    return {
        "cloud packed (ours)": median_ms(lambda: ros_convert.cloud_to_points(packed, 1.0), repeat),
        "cloud packed (sensor_msgs_py: a view, no copy)": median_ms(
            lambda: point_cloud2.read_points_numpy(packed, field_names=("x", "y", "z", "intensity")), repeat),
        "cloud padded + reordered (ours)": median_ms(lambda: ros_convert.cloud_to_points(padded, 1.0), repeat),
        "image bgr8 -> RGB": median_ms(lambda: ros_convert.image_to_rgb(image), repeat),
        f"{N_BOXES} boxes -> Detection3DArray + markers": median_ms(
            lambda: (ros_convert.detections_to_msg(detections, header),
                     ros_convert.detections_to_markers(detections, header, 0.5)), repeat),
    }


@dataclass
class SensorFrame:
    """One camera + LiDAR pair as a driver publishes it: image (H, W, 3) uint8 RGB, points (N, 4),
    intrinsics (3, 3), lidar2cam (4, 4)."""

    image: np.ndarray
    points: np.ndarray
    intrinsics: np.ndarray
    lidar2cam: np.ndarray


def synthetic_frames(preset: str) -> list[SensorFrame]:
    """One random frame at the preset's sensor sizes, identity extrinsic (the driver repeats it)."""
    (width, height), n_points = SENSORS[preset]
    points = random_points(n_points, seed=3)
    pixels = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    intrinsics = np.array([[1000.0, 0.0, width / 2], [0.0, 1000.0, height / 2], [0.0, 0.0, 1.0]])
    return [SensorFrame(pixels, points, intrinsics, np.eye(4))]


def data_frames(data: str, count: int) -> list:
    """The first `count` frames of a raw data set (v2xfusion_tools.run.LoadedFrame)."""
    from v2xfusion_tools.run import data_set, frame_ids, load_frame

    dataset = data_set(data)
    return [load_frame(dataset, frame_id) for frame_id in frame_ids(dataset, None, count)]


def topic_prefix(preset: str) -> str:
    return f"/bench_{preset}/v2xfusion"


# ---- the driver process: publishes the sensors, receives the objects ----------------------------

def drive(spec: dict) -> dict:
    """Publish frames in phases [(name, rate_hz, count)], stamps 100 ms apart; record when each cloud
    went out and when its Detection3DArray came back (time.perf_counter: CLOCK_MONOTONIC, one clock
    for both processes)."""
    from geometry_msgs.msg import TransformStamped
    from tf2_ros import StaticTransformBroadcaster

    from v2xfusion_tools.bags.make import quaternion_from_matrix

    if spec["data"]:
        frames = [SensorFrame(f.image, f.points, f.calibration.intrinsics, f.calibration.lidar2cam)
                  for f in data_frames(spec["data"], spec["n_distinct"])]
    else:
        frames = synthetic_frames(spec["preset"])
    messages = []
    for frame in frames:
        height, width = frame.image.shape[:2]
        info = CameraInfo(header=stamped(0, "camera"), width=width, height=height)
        info.k = frame.intrinsics.reshape(-1).tolist()
        image = Image(header=stamped(0, "camera"), height=height, width=width, encoding="rgb8", step=3 * width,
                      data=frame.image.tobytes())
        messages.append((info, image, packed_cloud(frame.points)))

    keep_large_buffers()      # as the node's process: a driver written in Python should do the same
    context = Context()
    rclpy.init(context=context, domain_id=spec["domain"])
    driver = rclpy.create_node("bench_driver", context=context)
    prefix = topic_prefix(spec["preset"])
    # the sensor-data QoS (best effort) drivers commonly offer and the node subscribes with by default
    pubs = {kind: driver.create_publisher(msg_type, f"{prefix}/input/{kind}", qos_profile_sensor_data)
            for kind, msg_type in (("camera_info", CameraInfo), ("image", Image), ("pointcloud", PointCloud2))}
    extrinsic = TransformStamped(header=stamped(0, "camera"), child_frame_id="lidar")
    t = frames[0].lidar2cam
    extrinsic.transform.translation.x, extrinsic.transform.translation.y, extrinsic.transform.translation.z = \
        (float(v) for v in t[:3, 3])
    q = extrinsic.transform.rotation
    q.x, q.y, q.z, q.w = quaternion_from_matrix(t[:3, :3])
    StaticTransformBroadcaster(driver).sendTransform(extrinsic)
    received: dict[int, float] = {}
    driver.create_subscription(Detection3DArray, f"{prefix}/output/objects",
                               lambda msg: received.setdefault(ros_convert.stamp_ns(msg.header), time.perf_counter()),
                               RELIABLE)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(driver)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    phases = []
    try:
        deadline = time.monotonic() + 30
        while (any(p.get_subscription_count() < 1 for p in pubs.values())
               or driver.count_publishers(f"{prefix}/output/objects") < 1) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        index = 0
        for name, rate_hz, count in spec["phases"]:
            print(f"ready {name}", flush=True)      # the node's process answers "go" when it is ready for it
            sys.stdin.readline()
            sent: dict[int, float] = {}
            cpu_start = time.process_time()
            start = time.perf_counter()
            for k in range(count):
                stamp = 1_700_000_000_000_000_000 + index * 100_000_000
                info, image, cloud = messages[index % len(messages)]
                index += 1
                for msg in (info, image, cloud):
                    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp, 1_000_000_000)
                pubs["camera_info"].publish(info)
                pubs["image"].publish(image)
                sent[stamp] = time.perf_counter()
                pubs["pointcloud"].publish(cloud)
                time.sleep(max(0.0, start + (k + 1) / rate_hz - time.perf_counter()))
            cpu_ms = (time.process_time() - cpu_start) * 1e3
            time.sleep(spec["settle_s"])
            phases.append({"name": name, "rate_hz": rate_hz, "sent": sent, "cpu_ms_per_pair": cpu_ms / count})
    finally:
        executor.shutdown()
        spinner.join(5.0)
        driver.destroy_node()
        rclpy.shutdown(context=context)
    return {"phases": phases, "received": dict(received)}


# ---- this process: the node ----------------------------------------------------------------------

def through_node(preset: str, pipeline, phases: list[tuple[str, float, int]], data: str | None, n_distinct: int,
                 lidar2cam: np.ndarray, settle_s: float, artifacts: str | None = None,
                 before_phase=lambda name: None) -> tuple[dict, dict]:
    """Run the node on `pipeline` here and the driver process against it; (per-phase figures, counters).

    before_phase(name) runs here before the driver starts each phase (the node is idle then)."""
    params = yaml.safe_load((CONFIG_ROOT / "ros" / f"{preset}.param.yaml").read_text())["/**"]["ros__parameters"]
    flat = {f"int8.{k}": v for k, v in params.pop("int8").items()}
    # lidar2cam: the tf2 fallback (the driver also publishes it on /tf_static)
    flat.update(params, lidar2cam=np.asarray(lidar2cam, np.float64).reshape(-1).tolist(), diagnostics_period=1.0)
    if artifacts is not None:
        flat["artifacts_dir"] = artifacts
    context = Context()
    rclpy.init(context=context, domain_id=DOMAIN_ID)
    node = V2XFusionNode(lambda p: pipeline, context=context, namespace=f"bench_{preset}",
                         parameter_overrides=[Parameter(k, value=v) for k, v in flat.items()])
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    spec = {"domain": DOMAIN_ID, "preset": preset, "data": data, "n_distinct": n_distinct, "phases": phases,
            "settle_s": settle_s}
    try:
        child = subprocess.Popen([sys.executable, __file__, "--drive", json.dumps(spec)], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True)
        last = ""
        for line in child.stdout:
            if line.startswith("ready "):
                before_phase(line.split(maxsplit=1)[1].strip())
                child.stdin.write("go\n")
                child.stdin.flush()
            else:
                last = line
        child.wait()
        counters = node.counters()
    finally:
        executor.shutdown()
        spinner.join(5.0)
        node.destroy_node()
        rclpy.shutdown(context=context)
    if child.returncode != 0:
        raise SystemExit(f"the driver process failed (exit {child.returncode})")
    result = json.loads(last)
    received = {int(k): v for k, v in result["received"].items()}
    figures = {}
    for phase in result["phases"]:
        sent = {int(k): v for k, v in phase["sent"].items()}
        answered = sorted(received[s] for s in sent if s in received)
        latencies = np.array([received[s] - t for s, t in sent.items() if s in received]) * 1e3
        figures[phase["name"]] = {
            "sent": sent, "received": received, "answered": len(answered),
            "driver cpu ms": phase["cpu_ms_per_pair"],
            "span s": answered[-1] - answered[0] if len(answered) > 1 else float("nan"),
            "latency median ms": float(np.median(latencies)) if len(latencies) else float("nan"),
            "latency mean ms": float(np.mean(latencies)) if len(latencies) else float("nan"),
            "latency p95 ms": float(np.percentile(latencies, 95)) if len(latencies) else float("nan"),
        }
    return figures, counters


class TimedPipeline:
    """A pipeline that notes when each `infer` call started and ended (time.perf_counter)."""

    def __init__(self, inner):
        self.inner, self.class_names, self.calls = inner, inner.class_names, []

    def infer(self, image, points, calibration):
        start = time.perf_counter()
        detections = self.inner.infer(image, points, calibration)
        self.calls.append((start, time.perf_counter()))
        return detections


def latency_split(phase: dict, calls: list[tuple[float, float]]) -> tuple[float, float, float]:
    """Mean ms of (cloud publish -> infer starts, infer, infer ends -> objects received) over a phase's
    answered frames, each matched with the one infer call between its publish and its answer."""
    parts = []
    for stamp, sent in phase["sent"].items():
        answer = phase["received"].get(stamp)
        inside = [(a, b) for a, b in calls if answer is not None and sent < a and b < answer]
        if len(inside) == 1:
            (a, b), = inside
            parts.append((a - sent, b - a, answer - b))
    return tuple(float(v) for v in np.mean(parts, axis=0) * 1e3) if parts else (float("nan"),) * 3


def bare_ms(pipeline, loaded: list) -> float:
    """Mean time of Pipeline.infer over the frames."""
    times = []
    for frame in loaded:
        start = time.perf_counter()
        pipeline.infer(frame.image, frame.points, frame.calibration)
        times.append(time.perf_counter() - start)
    return float(np.mean(times)) * 1e3


def real_pipeline(preset: str, artifacts: str, data: str, count: int, blocks: int) -> None:
    """The exported model through the node vs the same pipeline called directly, on a data set's frames.

    Short bare and through-the-node blocks alternate (bare, node, bare, ..., node, bare); each node
    block is compared with the mean of the bare blocks either side of it, and the median of those
    ratios is the figure: this machine is shared, and its speed drifts by 10-20% within a minute."""
    from v2xfusion_perception.pipeline_options import PipelineOptions
    from v2xfusion_perception.pipelines import open_pipeline

    loaded = data_frames(data, DISTINCT_FRAMES)
    pipeline = open_pipeline(artifacts, PipelineOptions(score_threshold=0.3), preset=preset)
    for frame in loaded[:WARM_UP]:
        pipeline.infer(frame.image, frame.points, frame.calibration)
    bare: list[float] = []

    def bare_block() -> None:      # BARE_BLOCK frames, moving through the data set block by block
        start = len(bare) * BARE_BLOCK
        bare.append(bare_ms(pipeline, [loaded[(start + i) % len(loaded)] for i in range(BARE_BLOCK)]))

    bare_block()
    slow_hz = min(2.0, 500.0 / bare[0])      # a frame period of at least twice the inference time: nothing waits
    phases = [("warm-up", slow_hz, WARM_UP), ("latency", slow_hz, 20),
              *((f"throughput-{i}", SENSOR_RATE_HZ, count) for i in range(blocks))]

    def before_phase(name: str) -> None:
        if name.startswith("throughput-") and name != "throughput-0":
            bare_block()

    timed = TimedPipeline(pipeline)
    figures, counters = through_node(preset, timed, phases, data, len(loaded), loaded[0].calibration.lidar2cam,
                                     settle_s=3 * bare[0] / 1e3, artifacts=artifacts, before_phase=before_phase)
    bare_block()
    through = [figures[f"throughput-{i}"] for i in range(blocks)]
    node_ms = [1e3 * t["span s"] / (t["answered"] - 1) for t in through]
    reference = [(bare[i] + bare[i + 1]) / 2 for i in range(blocks)]
    shares = [(n - b) / n for n, b in zip(node_ms, reference)]
    print(f"  bare runtime ({artifacts}), {blocks + 1} blocks of {BARE_BLOCK} frames: "
          f"{', '.join(f'{b:.0f}' for b in bare)} ms a frame (mean {np.mean(bare):.1f} ms = "
          f"{1e3 / np.mean(bare):.2f} frames/s)")
    print(f"  through the node, sensors at {SENSOR_RATE_HZ:g} Hz in another process, {blocks} blocks of {count} pairs: "
          f"{', '.join(f'{n:.0f}' for n in node_ms)} ms a frame (mean {np.mean(node_ms):.1f} ms = "
          f"{1e3 / np.mean(node_ms):.2f} frames/s; {sum(t['answered'] for t in through)} of "
          f"{sum(len(t['sent']) for t in through)} pairs answered, {counters['pairs_dropped_overload']} displaced "
          f"by newer ones as designed); the driver process took "
          f"{np.mean([t['driver cpu ms'] for t in through]):.1f} ms of CPU per pair published")
    print(f"  ROS overhead on throughput (conversion, sync, publish, subscriptions), each node block against the "
          f"bare blocks beside it: {', '.join(f'{100 * x:+.1f}' for x in shares)} %; median "
          f"{100 * float(np.median(shares)):.1f}% of the frame time (target <= 5%)")
    latency = figures["latency"]
    into, infer, out = latency_split(latency, timed.calls)
    print(f"  latency at {slow_hz:.2f} Hz (nothing waits), cloud publish -> objects received: mean "
          f"{latency['latency mean ms']:.1f} ms, p95 {latency['latency p95 ms']:.1f} ms "
          f"({latency['answered']} / {len(latency['sent'])}): publish -> inference starts {into:.1f} ms (DDS, pairing, "
          f"hand-off, conversion), inference {infer:.1f} ms, inference ends -> received {out:.1f} ms (messages, "
          f"publish, DDS, the receiver's decoding): ROS adds {into + out:.1f} ms "
          f"= {100 * (into + out) / (into + infer + out):.1f}% to a frame's latency")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", nargs="+", default=["kitti", "v2x"], choices=sorted(SENSORS))
    parser.add_argument("--frames", type=int, default=40, help="pairs sent (free pipeline; --artifacts: a block)")
    parser.add_argument("--blocks", type=int, default=8, help="--artifacts: through-the-node blocks between bare ones")
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--artifacts", help="also: this exported artifact folder (first --preset) through the node "
                                            "vs called directly, on --data's frames")
    parser.add_argument("--data", help="data set for --artifacts (raw KITTI / DAIR layout)")
    parser.add_argument("--default-allocator", action="store_true",
                        help="leave glibc's allocator as it is (the node's main sets keep_large_buffers)")
    parser.add_argument("--drive", help=argparse.SUPPRESS)     # the driver process's entry (JSON spec)
    args = parser.parse_args()
    if args.drive:
        print(json.dumps(drive(json.loads(args.drive))))
        return
    # The node's process, as v2xfusion_perception.node.main sets it up (the driver process does its own).
    allocator = "allocator: glibc defaults" if args.default_allocator else keep_large_buffers()
    print(f"transport: {TRANSPORT}; {allocator}")
    if args.artifacts:
        if not args.data:
            parser.error("--artifacts needs --data")
        print(f"\n== {args.preset[0]}: exported model")
        real_pipeline(args.preset[0], args.artifacts, args.data, min(args.frames, 20), args.blocks)
        return
    for preset in args.preset:
        (width, height), n_points = SENSORS[preset]
        print(f"\n== {preset}: image {width}x{height}, {n_points} points")
        for name, ms in conversions(preset, args.repeat).items():
            print(f"  {name:<48s} {ms:8.2f} ms")
        figures, _ = through_node(preset, FreePipeline(), [("warm-up", SENSOR_RATE_HZ, WARM_UP),
                                                           ("free", SENSOR_RATE_HZ, args.frames)],
                                  None, 1, np.eye(4), settle_s=0.5)
        free = figures["free"]
        print(f"  end to end, free pipeline, {SENSOR_RATE_HZ:g} Hz: {free['answered']} / {len(free['sent'])} frames, "
              f"cloud publish -> objects received median {free['latency median ms']:.1f} ms, "
              f"p95 {free['latency p95 ms']:.1f} ms")


if __name__ == "__main__":
    main()
