"""The ROS 2 node `v2xfusion`: thin plumbing between the sensors' topics and a runtime pipeline (design.md §5).

It declares and validates its parameters once at start-up (configs/ros/<preset>.param.yaml), subscribes
to image, camera info and cloud with the sensor-data QoS, pairs image and cloud by stamp
(`sync.ApproximateTimeSync`), and hands the newest pair to an inference thread through a one-item
mailbox (`sync.LatestSlot`): the subscriptions never wait for inference, and when inference is slower
than the sensors the newest pair wins and the displaced ones are counted. The inference thread converts
the messages (`ros_convert`), looks the LiDAR -> camera extrinsic up in tf2 (falling back to the
`lidar2cam` parameter or the `calibration_file`), calls `Pipeline.infer`, and publishes
Detection3DArray + MarkerArray with the cloud's header. Every rejected or dropped input is counted,
reported on /diagnostics and logged with a per-problem throttle; the node keeps running.
"""
from __future__ import annotations

import difflib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
import yaml
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.executors import ExternalShutdownException
from rclpy.logging import get_logger
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from rclpy.qos_overriding_options import QoSOverridingOptions
from rclpy.time import Time
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Header
from tf2_ros import Buffer, TransformException, TransformListener
from vision_msgs.msg import Detection3DArray
from visualization_msgs.msg import MarkerArray

from v2xfusion_perception import ros_convert
from v2xfusion_perception.allocator import keep_large_buffers
from v2xfusion_perception.config import PRESETS
from v2xfusion_perception.errors import V2XError
from v2xfusion_perception.frame import Calibration, Detections, Pipeline
from v2xfusion_perception.sync import (
    CLOUD,
    IMAGE,
    OUT_OF_ORDER,
    ApproximateTimeSync,
    LatestSlot,
    Pair,
    SyncResult,
)

NODE_NAME = "v2xfusion"
PIPELINES = ("A", "B")
PRECISIONS = ("fp32", "fp16", "int8")
DEVICES = ("CPU", "GPU", "AUTO")
# Pipeline A's four models (design.md §3: camera.backbone, lidar_pfe, fuser, head) by the names of their
# INT8 toggles (guide §4.2.7 --int8-camera / -pfe / -fuser / -head); pipeline B is one model.
INT8_STAGES = ("camera", "pfe", "fuser", "head")
MANIFEST = "manifest.json"
# How long the inference thread waits for a pair before checking whether the node is stopping.
TAKE_TIMEOUT_S = 0.2
JOIN_TIMEOUT_S = 10.0

# Every counter the node reports (all present from the start, so monitors see zeros).
COUNTERS = (
    "images", "clouds", "camera_infos", "pairs", "frames_published", "pairs_dropped_overload",
    "image_unpaired", "cloud_unpaired", "image_out_of_order", "cloud_out_of_order",
    "cloud_fields", "cloud_layout", "cloud_truncated", "cloud_empty", "cloud_nonfinite", "intensity_out_of_range",
    "image_encoding", "image_size", "camera_info_size", "camera_info", "transform", "no_camera_info",
    "no_extrinsic", "inference_errors", "internal_errors", "pairs_without_pipeline",
)
INPUT_COUNTERS = ("images", "clouds", "camera_infos", "pairs", "frames_published")
# Which input a MessageError's problem key (its first word) is about, for the log line.
_SOURCE_OF_PROBLEM = {"cloud": "pointcloud", "image": "image", "camera": "camera_info", "transform": "tf2"}


class ParameterError(V2XError):
    """A node parameter is missing or invalid; the message names it."""


class PipelineUnavailable(V2XError):
    """No pipeline can be built from `artifacts_dir` (missing folder, no manifest, unsupported build)."""


# ---- parameters --------------------------------------------------------------------------------

@dataclass(frozen=True)
class NodeParams:
    """The validated parameters (design.md §5). Durations in seconds.

    fallback_lidar2cam: (4, 4) float64 or None, used when tf2 has no LiDAR -> camera transform;
    fallback_intrinsics: (3, 3) float64 or None, overrides CameraInfo K when set (calibration_file);
    fallback_source: where the fallback came from, for logs and diagnostics.
    """

    preset: str
    pipeline: str
    precision: str
    int8_stages: tuple[str, ...]
    device: str
    artifacts_dir: Path
    score_threshold: float
    intensity_scale: float
    max_camera_lidar_delay: float
    queue_size: int
    diagnostics_period: float
    log_throttle_period: float
    marker_lifetime: float
    fallback_lidar2cam: np.ndarray | None
    fallback_intrinsics: np.ndarray | None
    fallback_source: str


# name -> description; all required (the params YAML supplies them: no code defaults, style.md §6)
REQUIRED_PARAMETERS = {
    "preset": f"data set preset: {' | '.join(PRESETS)}",
    "pipeline": "runtime pipeline: A (PointPillars split, 4 models) | B (SECOND unified, 1 model)",
    "precision": f"inference precision: {' | '.join(PRECISIONS)}",
    **{f"int8.{stage}": f"pipeline A, precision int8: run the {stage} model in INT8 (else FP32)"
       for stage in INT8_STAGES},
    "device": f"OpenVINO device: {' | '.join(DEVICES)}",
    "artifacts_dir": "folder holding the artifact manifest.json and the models (artifacts/<preset>/<pipeline>)",
    "score_threshold": "publish only boxes scoring at least this, 0-1",
    "intensity_scale": "divide the cloud's intensity by this to get 0-1 (1.0 for 0-1 LiDARs, 255.0 for 0-255)",
    "max_camera_lidar_delay": "seconds: image and cloud further apart than this are not fused",
    "queue_size": "messages per stream waiting for a partner before the oldest is dropped",
    "diagnostics_period": "seconds between /diagnostics messages",
    "log_throttle_period": "seconds between two log lines about the same input problem",
    "marker_lifetime": "seconds a box marker stays when no newer frame replaces it (0: forever)",
}
OPTIONAL_PARAMETERS = {
    "lidar2cam": "fallback LiDAR -> camera transform, 16 numbers row-major, used when tf2 has none",
    "calibration_file": "fallback calibration YAML: lidar2cam (4x4) and optional intrinsics (3x3, overrides "
                        "CameraInfo)",
}


def validate_parameters(values: dict[str, Any]) -> NodeParams:
    """Check raw parameter values (None = not set) and return NodeParams; ParameterError names the parameter."""
    known = [*REQUIRED_PARAMETERS, *OPTIONAL_PARAMETERS]
    for name in sorted(set(values) - set(known)):
        hint = difflib.get_close_matches(name, known, n=1)
        raise ParameterError(f"unknown parameter {name!r}" + (f" (did you mean {hint[0]!r}?)" if hint else ""))
    for name in REQUIRED_PARAMETERS:
        if values.get(name) is None:
            raise ParameterError(f"parameter {name!r} is not set: pass a params file "
                                 f"(configs/ros/<preset>.param.yaml) or launch v2xfusion.launch.py")

    preset = _choice(values, "preset", PRESETS)
    pipeline = _choice(values, "pipeline", PIPELINES)
    precision = _choice(values, "precision", PRECISIONS)
    device = _choice(values, "device", DEVICES)
    int8 = {stage: _bool(values, f"int8.{stage}") for stage in INT8_STAGES}
    if precision == "int8" and pipeline == "A" and not any(int8.values()):
        raise ParameterError("parameter 'precision' is int8 but every int8.* stage is false: "
                             "enable a stage or choose fp32 / fp16")
    artifacts_dir = _string(values, "artifacts_dir")
    if not artifacts_dir:
        raise ParameterError("parameter 'artifacts_dir' is empty")
    params = dict(
        score_threshold=_number(values, "score_threshold", low=0.0, high=1.0),
        intensity_scale=_number(values, "intensity_scale", low=0.0, low_open=True),
        max_camera_lidar_delay=_number(values, "max_camera_lidar_delay", low=0.0, low_open=True),
        diagnostics_period=_number(values, "diagnostics_period", low=0.0, low_open=True),
        log_throttle_period=_number(values, "log_throttle_period", low=0.0),
        marker_lifetime=_number(values, "marker_lifetime", low=0.0),
    )
    queue_size = values["queue_size"]
    if isinstance(queue_size, bool) or not isinstance(queue_size, int) or queue_size < 1:
        raise ParameterError(f"parameter 'queue_size' must be an integer >= 1, got {queue_size!r}")

    lidar2cam, intrinsics, source = None, None, "none"
    if values.get("lidar2cam") is not None and values.get("calibration_file"):
        raise ParameterError("parameters 'lidar2cam' and 'calibration_file' are both set: set one fallback")
    if values.get("lidar2cam") is not None:
        lidar2cam = _rigid(values["lidar2cam"], "parameter 'lidar2cam'")
        source = "parameter lidar2cam"
    elif values.get("calibration_file"):
        lidar2cam, intrinsics = read_calibration_file(Path(_string(values, "calibration_file")))
        source = f"calibration_file {values['calibration_file']}"
    return NodeParams(preset=preset, pipeline=pipeline, precision=precision,
                      int8_stages=tuple(s for s in INT8_STAGES if int8[s]), device=device,
                      artifacts_dir=Path(artifacts_dir), queue_size=queue_size, fallback_lidar2cam=lidar2cam,
                      fallback_intrinsics=intrinsics, fallback_source=source, **params)


def read_calibration_file(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """The fallback calibration YAML: `lidar2cam` 4x4 (required), `intrinsics` 3x3 (optional).

    Returns (lidar2cam (4, 4) float64, intrinsics (3, 3) float64 or None); ParameterError names the
    file and the key.
    """
    where = f"parameter 'calibration_file' {path}"
    if not path.is_file():
        raise ParameterError(f"{where}: file not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ParameterError(f"{where}: malformed YAML: {exc}") from None
    if not isinstance(data, dict) or "lidar2cam" not in data:
        raise ParameterError(f"{where}: expected a mapping with key 'lidar2cam' (4x4) and optional 'intrinsics' (3x3)")
    unknown = sorted(set(data) - {"lidar2cam", "intrinsics"})
    if unknown:
        raise ParameterError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}")
    lidar2cam = _rigid(data["lidar2cam"], f"{where}: key 'lidar2cam'")
    intrinsics = None
    if data.get("intrinsics") is not None:
        intrinsics = _matrix(data["intrinsics"], (3, 3), f"{where}: key 'intrinsics'")
        if intrinsics[0, 0] <= 0 or intrinsics[1, 1] <= 0 or not np.allclose(intrinsics[2], (0, 0, 1)):
            raise ParameterError(f"{where}: key 'intrinsics' is not a pinhole matrix [[fx,0,cx],[0,fy,cy],[0,0,1]]")
    return lidar2cam, intrinsics


def _choice(values: dict, name: str, choices: tuple[str, ...]) -> str:
    value = values[name]
    if value not in choices:
        raise ParameterError(f"parameter {name!r} is {value!r}: choose one of {', '.join(choices)}")
    return value


def _bool(values: dict, name: str) -> bool:
    if not isinstance(values[name], bool):
        raise ParameterError(f"parameter {name!r} must be true or false, got {values[name]!r}")
    return values[name]


def _string(values: dict, name: str) -> str:
    if not isinstance(values[name], str):
        raise ParameterError(f"parameter {name!r} must be a string, got {values[name]!r}")
    return values[name]


def _number(values: dict, name: str, low: float | None = None, high: float | None = None,
            low_open: bool = False) -> float:
    value = values[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        raise ParameterError(f"parameter {name!r} must be a finite number, got {value!r}")
    if low is not None and (value < low or (low_open and value == low)):
        raise ParameterError(f"parameter {name!r} must be {'>' if low_open else '>='} {low:g}, got {value!r}")
    if high is not None and value > high:
        raise ParameterError(f"parameter {name!r} must be <= {high:g}, got {value!r}")
    return float(value)


def _matrix(value: Any, shape: tuple[int, int], where: str) -> np.ndarray:
    try:
        matrix = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ParameterError(f"{where}: expected {shape[0]}x{shape[1]} numbers, got {value!r}") from None
    if matrix.size != shape[0] * shape[1] or not np.isfinite(matrix).all():
        raise ParameterError(f"{where}: expected {shape[0]}x{shape[1]} finite numbers, got {matrix.size} values")
    return matrix.reshape(shape)


def _rigid(value: Any, where: str) -> np.ndarray:
    matrix = _matrix(value, (4, 4), where)
    rotation = matrix[:3, :3]
    if not np.allclose(matrix[3], (0, 0, 0, 1)) or not np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-4) \
            or np.linalg.det(rotation) <= 0:
        raise ParameterError(f"{where}: not a rigid transform (rotation must be orthonormal, last row 0 0 0 1)")
    return matrix


# ---- pipeline factory --------------------------------------------------------------------------

def make_pipeline(params: NodeParams) -> Pipeline:
    """Build the runtime pipeline (PipelineA / PipelineB) of `params.artifacts_dir`.

    Raises PipelineUnavailable naming the folder and what is missing or does not fit (no manifest, a
    manifest of another preset or pipeline, a missing model file, a bad option); the node then keeps
    running and publishes diagnostics only.
    """
    folder = params.artifacts_dir
    if not folder.is_dir():
        raise PipelineUnavailable(f"parameter 'artifacts_dir' {folder}: folder not found (export a model to "
                                  f"artifacts/{params.preset}/{params.pipeline} first)")
    if not (folder / MANIFEST).is_file():
        raise PipelineUnavailable(f"parameter 'artifacts_dir' {folder}: no {MANIFEST}, not an artifact folder")
    # The runtime pulls in OpenVINO and the kernels: imported here so that parameter checks stay light.
    from v2xfusion_perception.pipeline_options import PipelineOptions
    from v2xfusion_perception.pipelines import open_pipeline

    stages = params.int8_stages if params.precision == "int8" and params.pipeline == "A" else ()
    if params.precision == "int8" and params.pipeline == "A" and not stages:
        raise PipelineUnavailable("parameters 'int8.*': precision int8 with every stage false; set at least one "
                                  "of " + ", ".join(f"'int8.{s}'" for s in INT8_STAGES) + " (or precision fp32)")
    try:
        options = PipelineOptions(device=params.device, precision=params.precision, int8_stages=stages,
                                  score_threshold=params.score_threshold)
        return open_pipeline(folder, options, preset=params.preset, pipeline=params.pipeline)
    except V2XError as exc:
        raise PipelineUnavailable(f"parameter 'artifacts_dir' {folder}: pipeline {params.pipeline} "
                                  f"({params.precision}, {params.device}) cannot start: {exc}") from exc


# ---- the node ----------------------------------------------------------------------------------

class ThrottledLog:
    """Logs a warning per problem key at most once per `period` seconds, saying how many were held back."""

    def __init__(self, logger, period: float, clock: Callable[[], float] = time.monotonic):
        self._logger, self._period, self._clock = logger, period, clock
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()

    def warn(self, key: str, text: str) -> None:
        with self._lock:
            now = self._clock()
            if key in self._last and now - self._last[key] < self._period:
                self._held[key] = self._held.get(key, 0) + 1
                return
            held = self._held.pop(key, 0)
            self._last[key] = now
        suffix = f" ({held} more since the last such line)" if held else ""
        self._logger.warning(f"[{key}] {text}{suffix}")


class _Window:
    """Per-frame figures of the current diagnostics period (inference thread writes, timer reads)."""

    def __init__(self) -> None:
        self.latency_ms: list[float] = []
        self.inference_ms: list[float] = []
        self.stage_ms: dict[str, list[float]] = {}


class V2XFusionNode(Node):
    """Camera + LiDAR 3D detection node (design.md §5). `pipeline_factory` builds the pipeline from the
    validated parameters (tests pass their own); node keyword arguments (context, parameter_overrides,
    cli_args, namespace) go to rclpy's Node."""

    def __init__(self, pipeline_factory: Callable[[NodeParams], Pipeline] = make_pipeline, **node_kwargs):
        super().__init__(NODE_NAME, **node_kwargs)
        self.params = self._read_parameters()
        self._log = ThrottledLog(self.get_logger(), self.params.log_throttle_period)
        self._lock = threading.Lock()
        self._counters = dict.fromkeys(COUNTERS, 0)
        self._reported_problems = 0
        self._window = _Window()
        self._window_started = time.monotonic()
        self._calibration_source = "none yet"
        self._camera_info: tuple[np.ndarray, int, int, str] | None = None
        self._pipeline_state = ("loading", "loading the pipeline")

        self._sync = ApproximateTimeSync(round(self.params.max_camera_lidar_delay * 1e9), self.params.queue_size)
        self._slot: LatestSlot[Pair] = LatestSlot()
        self._tf_buffer = Buffer()
        self._tf_listener = TransformListener(self._tf_buffer, self, spin_thread=False)

        self._objects_pub = self.create_publisher(Detection3DArray, "~/output/objects", 10)
        self._markers_pub = self.create_publisher(MarkerArray, "~/output/markers", 10)
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        # Sensor-data QoS (best effort), overridable per topic with the standard parameters
        # qos_overrides.<topic>.subscription.reliability etc. (the launch file's input_reliability):
        # best effort loses megabyte images and clouds whenever the transport drops one fragment.
        overridable = QoSOverridingOptions.with_default_policies()
        self.create_subscription(Image, "~/input/image", self._on_image, qos_profile_sensor_data,
                                 qos_overriding_options=overridable)
        self.create_subscription(CameraInfo, "~/input/camera_info", self._on_camera_info, qos_profile_sensor_data,
                                 qos_overriding_options=overridable)
        self.create_subscription(PointCloud2, "~/input/pointcloud", self._on_cloud, qos_profile_sensor_data,
                                 qos_overriding_options=overridable)
        self.create_timer(self.params.diagnostics_period, self._publish_diagnostics)

        p = self.params
        self.get_logger().info(
            f"preset {p.preset}, pipeline {p.pipeline} {p.precision} on {p.device}, artifacts {p.artifacts_dir}; "
            f"fusing image and cloud within {p.max_camera_lidar_delay:.3f} s; "
            f"fallback calibration: {p.fallback_source}")
        self._worker = threading.Thread(target=self._run_inference, args=(pipeline_factory,),
                                        name="v2xfusion-inference", daemon=True)
        self._worker.start()

    def destroy_node(self) -> None:
        """Stop the inference thread, then the node."""
        self._slot.close()
        if self._worker.is_alive() and self._worker is not threading.current_thread():
            self._worker.join(JOIN_TIMEOUT_S)
        super().destroy_node()

    def counters(self) -> dict[str, int]:
        """A snapshot of every counter (the same values /diagnostics reports)."""
        with self._lock:
            return dict(self._counters)

    # ---- parameters ----
    def _read_parameters(self) -> NodeParams:
        values = {}
        for name, description in {**REQUIRED_PARAMETERS, **OPTIONAL_PARAMETERS}.items():
            descriptor = ParameterDescriptor(description=description, read_only=True, dynamic_typing=True)
            values[name] = self.declare_parameter(name, None, descriptor).value
        # A misspelt key in the params file would otherwise be ignored without a word.
        unknown = {name for name in getattr(self, "_parameter_overrides", {})
                   if not self.has_parameter(name) and not name.startswith("qos_overrides.")}
        return validate_parameters({**values, **dict.fromkeys(unknown)})

    # ---- subscriptions (executor thread: short, never wait for inference) ----
    def _count(self, key: str, amount: int = 1) -> None:
        with self._lock:
            self._counters[key] += amount

    def _reject(self, error: ros_convert.MessageError, topic: str) -> None:
        self._count(error.problem)
        self._log.warn(error.problem, f"{topic}: {error}")

    def _on_camera_info(self, msg: CameraInfo) -> None:
        self._count("camera_infos")
        try:
            intrinsics = ros_convert.camera_info_intrinsics(msg)
        except ros_convert.MessageError as error:
            self._reject(error, "camera_info")
            return
        with self._lock:
            self._camera_info = (intrinsics, int(msg.width), int(msg.height), msg.header.frame_id)

    def _on_image(self, msg: Image) -> None:
        self._count("images")
        try:
            ros_convert.check_image(msg)
            with self._lock:
                info = self._camera_info
            if info is not None and (msg.width, msg.height) != (info[1], info[2]):
                raise ros_convert.MessageError("camera_info_size", f"Image is {msg.width} x {msg.height} but "
                                                                   f"CameraInfo says {info[1]} x {info[2]}")
        except ros_convert.MessageError as error:
            self._reject(error, "image")
            return
        self._handle(self._sync.add_image(ros_convert.stamp_ns(msg.header), msg, time.monotonic()))

    def _on_cloud(self, msg: PointCloud2) -> None:
        self._count("clouds")
        try:
            ros_convert.cloud_dtype(msg)
        except ros_convert.MessageError as error:
            self._reject(error, "pointcloud")
            return
        self._handle(self._sync.add_cloud(ros_convert.stamp_ns(msg.header), msg, time.monotonic()))

    def _handle(self, result: SyncResult) -> None:
        for drop in result.drops:
            key = f"{drop.stream}_{drop.reason}"
            self._count(key)
            seconds = drop.stamp_ns * 1e-9
            if drop.reason == OUT_OF_ORDER:
                self._log.warn(key, f"{drop.stream} at {seconds:.3f} s is out of order (not newer than the last "
                                    f"paired {drop.stream}): dropped")
            else:
                other = CLOUD if drop.stream == IMAGE else IMAGE
                self._log.warn(key, f"{drop.stream} at {seconds:.3f} s has no {other} within max_camera_lidar_delay "
                                    f"{self.params.max_camera_lidar_delay:.3f} s: dropped")
        if result.pair is not None:
            self._count("pairs")
            displaced = self._slot.put(result.pair)
            if displaced is not None:
                self._count("pairs_dropped_overload")
                self._log.warn("pairs_dropped_overload",
                               f"inference is slower than the sensors: pair at "
                               f"{displaced.cloud.stamp_ns * 1e-9:.3f} s replaced by a newer one")

    # ---- inference thread ----
    def _run_inference(self, pipeline_factory: Callable[[NodeParams], Pipeline]) -> None:
        try:
            pipeline = pipeline_factory(self.params)
        except Exception as exc:  # a pipeline that cannot load leaves the node up, reporting why
            text = str(exc) if isinstance(exc, V2XError) else f"{type(exc).__name__}: {exc}"
            self._pipeline_state = ("error", f"pipeline not available: {text}")
            self.get_logger().error(f"pipeline not available: {text}; publishing diagnostics only")
            pipeline = None
        else:
            self._pipeline_state = ("ready", "pipeline ready")
        while not self._slot.closed:
            pair = self._slot.take(TAKE_TIMEOUT_S)
            if pair is None:
                continue
            if pipeline is None:
                self._count("pairs_without_pipeline")
                continue
            try:
                self._process(pipeline, pair)
            except ros_convert.MessageError as error:
                self._reject(error, _SOURCE_OF_PROBLEM.get(error.problem.split("_")[0], "input"))
            except Exception as exc:  # a bug must not stop the thread: count it, say what, go on
                self._count("internal_errors")
                self._log.warn("internal_errors", f"processing the pair at {pair.cloud.stamp_ns * 1e-9:.3f} s failed: "
                                                  f"{type(exc).__name__}: {exc}")

    def _process(self, pipeline: Pipeline, pair: Pair) -> None:
        image_msg: Image = pair.image.payload
        cloud_msg: PointCloud2 = pair.cloud.payload
        cloud = ros_convert.cloud_to_points(cloud_msg, self.params.intensity_scale)
        if cloud.nonfinite:
            self._count("cloud_nonfinite")
            self._log.warn("cloud_nonfinite", f"pointcloud: dropped {cloud.nonfinite} points with NaN / inf values")
        if cloud.intensity_max > 1.0 + ros_convert.INTENSITY_TOLERANCE:
            self._count("intensity_out_of_range")
            self._log.warn("intensity_out_of_range",
                           f"pointcloud: intensity reaches {cloud.intensity_max * self.params.intensity_scale:g}, "
                           f"{cloud.intensity_max:g} after dividing by intensity_scale "
                           f"{self.params.intensity_scale:g}; "
                           f"clipped to 1: set intensity_scale to the LiDAR's maximum (e.g. 255.0)")
        image = ros_convert.image_to_rgb(image_msg)
        calibration = self._calibration(image_msg, cloud_msg, image)
        if calibration is None:
            return
        started = time.monotonic()
        try:
            detections = pipeline.infer(image, cloud.points, calibration)
        except Exception as exc:  # one bad frame in the runtime must not end the node
            self._count("inference_errors")
            self._log.warn("inference_errors", f"inference failed on the pair at {pair.cloud.stamp_ns * 1e-9:.3f} s: "
                                               f"{type(exc).__name__}: {exc}")
            return
        inference_ms = (time.monotonic() - started) * 1e3
        keep = detections.scores >= self.params.score_threshold
        detections = Detections(detections.boxes[keep], detections.scores[keep], detections.labels[keep],
                                detections.class_names, detections.timings)
        header = Header(stamp=cloud_msg.header.stamp, frame_id=cloud_msg.header.frame_id)
        self._objects_pub.publish(ros_convert.detections_to_msg(detections, header))
        if self._markers_pub.get_subscription_count() > 0:  # ~10 ms of message building for 50 boxes
            self._markers_pub.publish(ros_convert.detections_to_markers(detections, header,
                                                                        self.params.marker_lifetime))
        latency_ms = (time.monotonic() - pair.received) * 1e3
        with self._lock:
            self._counters["frames_published"] += 1
            self._window.latency_ms.append(latency_ms)
            self._window.inference_ms.append(inference_ms)
            for stage, ms in detections.timings.items():
                self._window.stage_ms.setdefault(stage, []).append(float(ms))

    def _calibration(self, image_msg: Image, cloud_msg: PointCloud2, image: np.ndarray) -> Calibration | None:
        """Intrinsics (calibration_file, else CameraInfo) and extrinsic (tf2, else the fallback), or None."""
        with self._lock:
            info = self._camera_info
        intrinsics = self.params.fallback_intrinsics
        if intrinsics is None:
            if info is None:
                self._count("no_camera_info")
                self._log.warn("no_camera_info", "no valid CameraInfo received yet and no calibration_file "
                                                 "intrinsics: pair skipped")
                return None
            intrinsics = info[0]
        camera_frame = image_msg.header.frame_id or (info[3] if info is not None else "")
        lidar_frame = cloud_msg.header.frame_id
        lidar2cam, source, why = None, "", "frame ids missing"
        if camera_frame and lidar_frame:
            try:
                transform = self._tf_buffer.lookup_transform(camera_frame, lidar_frame, Time())
                lidar2cam = ros_convert.transform_to_matrix(transform.transform)
                source = f"tf2 {lidar_frame} -> {camera_frame}"
            except TransformException as exc:
                why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if lidar2cam is None and self.params.fallback_lidar2cam is not None:
            lidar2cam, source = self.params.fallback_lidar2cam, self.params.fallback_source
        if lidar2cam is None:
            self._count("no_extrinsic")
            self._log.warn("no_extrinsic", f"no LiDAR -> camera transform ({lidar_frame!r} -> {camera_frame!r}: {why}) "
                                           f"and no lidar2cam / calibration_file fallback: pair skipped")
            return None
        if source != self._calibration_source:
            self.get_logger().info(f"LiDAR -> camera extrinsic from {source}")
            self._calibration_source = source
        height, width = image.shape[:2]
        return Calibration(intrinsics=intrinsics, lidar2cam=lidar2cam, image_size=(width, height))

    # ---- diagnostics (timer, executor thread) ----
    def _publish_diagnostics(self) -> None:
        now = time.monotonic()
        with self._lock:
            counters = dict(self._counters)
            window, self._window = self._window, _Window()
            elapsed, self._window_started = now - self._window_started, now
        problems = sum(v for k, v in counters.items() if k not in INPUT_COUNTERS)
        new_problems, self._reported_problems = problems - self._reported_problems, problems
        state, state_text = self._pipeline_state
        rate = len(window.latency_ms) / elapsed if elapsed > 0 else 0.0
        if state == "error":
            level, message = "error", state_text
        elif state == "loading":
            level, message = "warn", state_text
        elif new_problems:
            level, message = "warn", f"{new_problems} inputs dropped or rejected in the last {elapsed:.1f} s"
        elif window.latency_ms:
            level, message = "ok", f"{rate:.1f} Hz, latency {np.mean(window.latency_ms):.0f} ms"
        else:
            level, message = "ok", "waiting for image + pointcloud pairs"
        p = self.params
        values: dict[str, object] = {
            "preset": p.preset, "pipeline": p.pipeline, "precision": p.precision, "device": p.device,
            "artifacts_dir": str(p.artifacts_dir), "intensity_scale": p.intensity_scale,
            "max_camera_lidar_delay": p.max_camera_lidar_delay, "pipeline_state": state,
            "calibration_source": self._calibration_source,
            "output_rate_hz": rate,
            "latency_ms_mean": float(np.mean(window.latency_ms)) if window.latency_ms else 0.0,
            "latency_ms_max": float(np.max(window.latency_ms)) if window.latency_ms else 0.0,
            "inference_ms_mean": float(np.mean(window.inference_ms)) if window.inference_ms else 0.0,
            **{f"stage_ms.{stage}": float(np.mean(ms)) for stage, ms in window.stage_ms.items()},
            **counters,
        }
        header = Header(stamp=self.get_clock().now().to_msg())
        self._diagnostics_pub.publish(ros_convert.diagnostics_to_msg(
            header, f"{self.get_name()}: camera + lidar 3D detection", self.get_fully_qualified_name(), level,
            message, values))


def main(args: list[str] | None = None) -> int:
    """`ros2 run v2xfusion_perception v2xfusion_node --ros-args --params-file configs/ros/kitti.param.yaml`."""
    allocator = keep_large_buffers()     # before the first message: each would otherwise cost page faults
    try:
        with rclpy.init(args=args):
            try:
                node = V2XFusionNode()
            except V2XError as exc:
                get_logger(NODE_NAME).fatal(str(exc))
                return 2
            node.get_logger().info(allocator)
            try:
                rclpy.spin(node)
            finally:
                node.destroy_node()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    return 0
