"""What the ROS 2 node adds on top of inference: message conversion and the trip through DDS.

Run: .venv/bin/python benchmarks/node.py [--preset kitti v2x] [--frames 60] [--repeat 15]
     .venv/bin/python benchmarks/node.py --preset kitti --artifacts ART --data DATA [--frames 30] [--rate 2]

Two parts, per preset, at the preset's sensor sizes (KITTI: 1242x375 image, ~100k points; DAIR-V2X-I:
1920x1080, ~170k points, as the synthetic sets):
1. conversions alone (median of --repeat after a warm-up): PointCloud2 -> (N, 4) for the packed
   16-byte layout and a padded 32-byte layout with the fields reordered, beside sensor_msgs_py's
   read_points_numpy on the packed one; Image bgr8 -> RGB; 50 detections -> Detection3DArray +
   MarkerArray.
2. end to end: the node in this process with a pipeline that costs nothing (it returns 50 fixed boxes),
   fed pairs at 10 Hz over DDS (localhost, its own ROS domain); the latency from publishing the cloud
   to receiving the Detection3DArray is the ROS overhead a real pipeline's inference time adds to.
With --artifacts: an exported model on a data set's frames, called directly (the bare runtime) and
through the node (frames published at --rate, slow enough that none is dropped); the difference of the
mean latencies is the ROS overhead, printed as a share of the frame time (target <= 5%).
"""
from __future__ import annotations

import argparse
import os
import statistics
import threading
import time
from dataclasses import dataclass

import numpy as np
import yaml

os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
DOMAIN_ID = int(os.environ.get("ROS_DOMAIN_ID", str(180 + os.getpid() % 50)))

import rclpy  # noqa: E402  (after the DDS environment is set)
from rclpy.context import Context  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import qos_profile_sensor_data  # noqa: E402
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


def packed_cloud(points: np.ndarray, stamp_ns: int = 0) -> PointCloud2:
    fields = [PointField(name=n, offset=4 * i, datatype=PointField.FLOAT32, count=1)
              for i, n in enumerate(("x", "y", "z", "intensity"))]
    return point_cloud2.create_cloud(stamped(stamp_ns, "lidar"), fields, points)


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


def bgr_image(size: tuple[int, int], stamp_ns: int = 0) -> Image:
    width, height = size
    pixels = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return Image(header=stamped(stamp_ns, "camera"), height=height, width=width, encoding="bgr8", step=3 * width,
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
    points = np.random.default_rng(2).uniform(-50, 50, (n_points, 4)).astype(np.float32)
    points[:, 3] = np.abs(points[:, 3]) / 50
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
    """One camera + LiDAR pair as a driver would publish it: image (H, W, 3) uint8 RGB, points (N, 4)."""

    image: np.ndarray
    points: np.ndarray
    intrinsics: np.ndarray


def synthetic_frames(preset: str, count: int) -> tuple[list[SensorFrame], np.ndarray]:
    """Random frames at the preset's sensor sizes, with an identity extrinsic."""
    (width, height), n_points = SENSORS[preset]
    points = np.random.default_rng(3).uniform(-50, 50, (n_points, 4)).astype(np.float32)
    points[:, 3] = np.abs(points[:, 3]) / 50
    pixels = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    intrinsics = np.array([[1000.0, 0.0, width / 2], [0.0, 1000.0, height / 2], [0.0, 0.0, 1.0]])
    return [SensorFrame(pixels, points, intrinsics)] * count, np.eye(4)


def node_latency(preset: str, pipeline, frames: list[SensorFrame], lidar2cam: np.ndarray, rate_hz: float,
                 artifacts: str | None = None) -> dict[str, float]:
    """Latency cloud publish -> Detection3DArray received, node in this process, pairs at rate_hz.

    The first WARM_UP frames pay for discovery and warm-up and are left out."""
    params = yaml.safe_load((CONFIG_ROOT / "ros" / f"{preset}.param.yaml").read_text())["/**"]["ros__parameters"]
    flat = {f"int8.{k}": v for k, v in params.pop("int8").items()}
    flat.update(params, lidar2cam=np.asarray(lidar2cam, np.float64).reshape(-1).tolist(), diagnostics_period=1.0)
    if artifacts is not None:
        flat["artifacts_dir"] = artifacts
    context = Context()
    rclpy.init(context=context, domain_id=DOMAIN_ID)
    node = V2XFusionNode(lambda p: pipeline, context=context, namespace=f"bench_{preset}",
                         parameter_overrides=[Parameter(k, value=v) for k, v in flat.items()])
    driver = rclpy.create_node("bench_driver", namespace=f"bench_{preset}", context=context)
    prefix = f"/bench_{preset}/v2xfusion"
    pubs = {kind: driver.create_publisher(msg_type, f"{prefix}/input/{kind}", qos_profile_sensor_data)
            for kind, msg_type in (("image", Image), ("camera_info", CameraInfo), ("pointcloud", PointCloud2))}
    sent, latencies, lock = {}, [], threading.Lock()

    def on_objects(msg):
        stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        with lock:
            if stamp in sent:
                latencies.append(time.perf_counter() - sent[stamp])

    driver.create_subscription(Detection3DArray, f"{prefix}/output/objects", on_objects, 10)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    executor.add_node(driver)
    stopping = threading.Event()

    def spin():
        while not stopping.is_set():
            executor.spin_once(timeout_sec=0.05)

    spinner = threading.Thread(target=spin, daemon=True)
    spinner.start()
    try:
        deadline = time.monotonic() + 20
        while any(p.get_subscription_count() < 1 for p in pubs.values()) and time.monotonic() < deadline:
            time.sleep(0.05)
        for i, frame in enumerate([frames[0]] * WARM_UP + frames):
            stamp = 1_700_000_000_000_000_000 + i * 100_000_000
            height, width = frame.image.shape[:2]
            info = CameraInfo(header=stamped(stamp, "camera"), width=width, height=height)
            info.k = frame.intrinsics.reshape(-1).tolist()
            image = Image(header=stamped(stamp, "camera"), height=height, width=width, encoding="rgb8",
                          step=3 * width, data=frame.image.tobytes())
            cloud = packed_cloud(frame.points, stamp)
            pubs["camera_info"].publish(info)
            pubs["image"].publish(image)
            with lock:
                sent[stamp] = time.perf_counter()
            pubs["pointcloud"].publish(cloud)
            time.sleep(1.0 / rate_hz)
        time.sleep(0.5)
        counters = node.counters()
    finally:
        stopping.set()
        spinner.join(5.0)
        executor.shutdown()
        node.destroy_node()
        driver.destroy_node()
        rclpy.shutdown(context=context)
    kept = np.array(latencies[WARM_UP:]) * 1e3
    return {"frames sent": len(frames), "frames published": counters["frames_published"] - min(WARM_UP, len(latencies)),
            "median ms": float(np.median(kept)) if len(kept) else float("nan"),
            "mean ms": float(np.mean(kept)) if len(kept) else float("nan"),
            "p95 ms": float(np.percentile(kept, 95)) if len(kept) else float("nan")}


def real_pipeline(preset: str, artifacts: str, data: str, count: int, rate_hz: float) -> None:
    """The exported model through the node vs the same pipeline called directly, on a data set's frames."""
    from v2xfusion_perception.pipeline_options import PipelineOptions
    from v2xfusion_perception.pipelines import open_pipeline
    from v2xfusion_tools.run import data_set, frame_ids, load_frame

    dataset = data_set(data)
    loaded = [load_frame(dataset, frame_id) for frame_id in frame_ids(dataset, None, count)]
    frames = [SensorFrame(f.image, f.points, f.calibration.intrinsics) for f in loaded]
    pipeline = open_pipeline(artifacts, PipelineOptions(score_threshold=0.3), preset=preset)
    for frame in loaded[:WARM_UP]:
        pipeline.infer(frame.image, frame.points, frame.calibration)
    bare = []
    for frame in loaded:
        start = time.perf_counter()
        pipeline.infer(frame.image, frame.points, frame.calibration)
        bare.append((time.perf_counter() - start) * 1e3)
    through = node_latency(preset, pipeline, frames, loaded[0].calibration.lidar2cam, rate_hz, artifacts)
    bare_ms = float(np.mean(bare))
    overhead = (through["mean ms"] - bare_ms) / through["mean ms"]
    print(f"  real pipeline ({artifacts}), {len(frames)} frames at {rate_hz:g} Hz: bare runtime mean {bare_ms:.1f} ms "
          f"({1e3 / bare_ms:.2f} frames/s); through the node {through['frames published']} / {through['frames sent']} "
          f"frames, cloud publish -> objects mean {through['mean ms']:.1f} ms ({1e3 / through['mean ms']:.2f} "
          f"frames/s), p95 {through['p95 ms']:.1f} ms")
    print(f"  ROS overhead (conversion, sync, publish, DDS): {through['mean ms'] - bare_ms:.1f} ms = "
          f"{100 * overhead:.1f}% of the frame time (target <= 5%)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", nargs="+", default=["kitti", "v2x"], choices=sorted(SENSORS))
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--artifacts", help="also: this exported artifact folder (first --preset) through the node "
                                            "vs called directly, on --data's frames")
    parser.add_argument("--data", help="data set for --artifacts (raw KITTI / DAIR layout)")
    parser.add_argument("--rate", type=float, default=2.0, help="Hz at which --artifacts frames are published")
    args = parser.parse_args()
    if args.artifacts:
        if not args.data:
            parser.error("--artifacts needs --data")
        print(f"\n== {args.preset[0]}: exported model")
        real_pipeline(args.preset[0], args.artifacts, args.data, min(args.frames, 30), args.rate)
        return
    for preset in args.preset:
        (width, height), n_points = SENSORS[preset]
        print(f"\n== {preset}: image {width}x{height}, {n_points} points")
        for name, ms in conversions(preset, args.repeat).items():
            print(f"  {name:<48s} {ms:8.2f} ms")
        frames, lidar2cam = synthetic_frames(preset, args.frames)
        result = node_latency(preset, FreePipeline(), frames, lidar2cam, 10.0)
        print(f"  end to end, free pipeline, 10 Hz: {result['frames published']} / {result['frames sent']} frames, "
              f"cloud publish -> objects received median {result['median ms']:.1f} ms, p95 {result['p95 ms']:.1f} ms")


if __name__ == "__main__":
    main()
