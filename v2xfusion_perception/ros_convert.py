"""Conversions between ROS 2 messages and the arrays a pipeline takes and gives (design.md §5).

Inputs: PointCloud2 -> (N, 4) float32 points for any field order, point_step, row_step, field type and
endianness (one numpy structured dtype, no Python loop over points); Image (rgb8 / bgr8) -> RGB uint8;
CameraInfo -> intrinsics; a tf Transform -> 4x4 matrix. Outputs: Detections -> Detection3DArray and
MarkerArray, counters -> DiagnosticArray. Bad messages raise `MessageError` whose `problem` is a short
stable key (the node counts and throttles by it) and whose text names the field and what is wrong.

Only message classes are imported here, never rclpy: everything is testable without a ROS context.
"""
from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass

import numpy as np
from builtin_interfaces.msg import Duration
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import Point, Pose, Quaternion, Transform, Vector3
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField
from std_msgs.msg import ColorRGBA, Header
from vision_msgs.msg import (
    Detection3D,
    Detection3DArray,
    ObjectHypothesisWithPose,
)
from visualization_msgs.msg import Marker, MarkerArray

from v2xfusion_perception.boxes import BOX_EDGES, box_corners
from v2xfusion_perception.errors import V2XError
from v2xfusion_perception.frame import Detections

CLOUD_FIELDS = ("x", "y", "z", "intensity")
# PointField datatype -> numpy type code (sensor_msgs/PointField constants)
POINT_FIELD_TYPES = {
    PointField.INT8: "i1", PointField.UINT8: "u1", PointField.INT16: "i2", PointField.UINT16: "u2",
    PointField.INT32: "i4", PointField.UINT32: "u4", PointField.FLOAT32: "f4", PointField.FLOAT64: "f8",
}
IMAGE_ENCODINGS = ("rgb8", "bgr8")
# An intensity this far above 1 after scaling means intensity_scale does not match the LiDAR.
INTENSITY_TOLERANCE = 1e-3
# Marker colours per class index (RGBA); classes beyond the table reuse it cyclically.
CLASS_COLOURS = ((0.1, 0.6, 1.0, 1.0), (1.0, 0.3, 0.2, 1.0), (1.0, 0.85, 0.1, 1.0), (0.5, 1.0, 0.3, 1.0))
LABEL_HEIGHT_M = 0.8


class MessageError(V2XError):
    """A ROS message the node cannot use. `problem` is the counter / throttle key (e.g. 'cloud_fields')."""

    def __init__(self, problem: str, message: str):
        super().__init__(message)
        self.problem = problem


# ---- PointCloud2 -------------------------------------------------------------------------------

@dataclass(frozen=True)
class CloudPoints:
    """A converted cloud.

    points: (N, 4) float32 x, y, z, intensity in [0, 1] (finite rows only, in message order);
    nonfinite: how many points had a NaN / inf coordinate or intensity and were dropped;
    intensity_max: the largest intensity after dividing by intensity_scale, before clipping to 1.
    """

    points: np.ndarray
    nonfinite: int
    intensity_max: float


def cloud_dtype(cloud: PointCloud2) -> np.dtype:
    """The structured dtype (itemsize point_step) of x, y, z, intensity in `cloud`'s layout.

    Checks only the message's metadata (fields, steps, data length), so it is cheap enough for a
    subscription callback. Raises MessageError: 'cloud_empty', 'cloud_fields', 'cloud_layout',
    'cloud_truncated'.
    """
    width, height = int(cloud.width), int(cloud.height)
    point_step, row_step = int(cloud.point_step), int(cloud.row_step)
    if width * height == 0:
        raise MessageError("cloud_empty", f"PointCloud2 has no points (width {width} x height {height})")
    by_name = {f.name: f for f in cloud.fields}
    missing = [name for name in CLOUD_FIELDS if name not in by_name]
    if missing:
        found = ", ".join(f.name for f in cloud.fields) or "none"
        raise MessageError("cloud_fields", f"PointCloud2 has no {', '.join(repr(m) for m in missing)} field "
                                           f"(fields: {found}); x, y, z and intensity are required")
    order = ">" if cloud.is_bigendian else "<"
    formats, offsets = [], []
    for name in CLOUD_FIELDS:
        field = by_name[name]
        code = POINT_FIELD_TYPES.get(field.datatype)
        if code is None:
            raise MessageError("cloud_fields", f"PointCloud2 field {name!r} has unknown datatype {field.datatype}")
        if field.count != 1:
            raise MessageError("cloud_fields", f"PointCloud2 field {name!r} has count {field.count}, expected 1")
        size = int(code[1])
        if field.offset + size > point_step:
            raise MessageError("cloud_layout", f"PointCloud2 field {name!r} at offset {field.offset} ({size} bytes) "
                                               f"does not fit in point_step {point_step}")
        formats.append(order + code)
        offsets.append(int(field.offset))
    spans = sorted((offset, offset + int(fmt[2])) for offset, fmt in zip(offsets, formats))
    if any(end > next_start for (_, end), (next_start, _) in itertools.pairwise(spans)):
        raise MessageError("cloud_layout", f"PointCloud2 fields x, y, z, intensity overlap (offsets {offsets})")
    if row_step < width * point_step:
        raise MessageError("cloud_layout", f"PointCloud2 row_step {row_step} is less than width x point_step "
                                           f"= {width} x {point_step}")
    needed = (height - 1) * row_step + width * point_step
    if len(cloud.data) < needed:
        raise MessageError("cloud_truncated", f"PointCloud2 data is {len(cloud.data)} bytes, expected "
                                              f"row_step x height = {row_step} x {height} = {row_step * height}")
    return np.dtype({"names": list(CLOUD_FIELDS), "formats": formats, "offsets": offsets, "itemsize": point_step})


def cloud_to_points(cloud: PointCloud2, intensity_scale: float) -> CloudPoints:
    """PointCloud2 -> (N, 4) float32 x, y, z, intensity / intensity_scale clipped to [0, 1].

    Any field order and type, padding inside a point (point_step) or at row ends (row_step), either
    byte order. Points with a non-finite value are dropped and counted. Raises MessageError as
    `cloud_dtype`, and 'cloud_empty' when no finite point is left.
    """
    dtype = cloud_dtype(cloud)
    width, height = int(cloud.width), int(cloud.height)
    raw = np.frombuffer(cloud.data, dtype=np.uint8)
    if _leading_float32_xyzi(dtype) and int(cloud.row_step) == width * int(cloud.point_step):
        # the common driver layout (x, y, z, intensity float32 first in each point): one copy, never a view
        # of the message (the steps below work in place)
        floats = raw[:width * height * dtype.itemsize].view(np.float32).reshape(width * height, dtype.itemsize // 4)
        points = floats[:, :4].copy()
    else:
        view = np.ndarray(shape=(height, width), dtype=dtype, buffer=raw,
                          strides=(int(cloud.row_step), int(cloud.point_step))).reshape(-1)
        points = np.empty((width * height, 4), dtype=np.float32)
        for column, name in enumerate(CLOUD_FIELDS):
            points[:, column] = view[name]
    if intensity_scale != 1.0:
        points[:, 3] /= np.float32(intensity_scale)
    nonfinite = 0
    if not np.isfinite(points.reshape(-1)).all():     # one flat pass settles the usual all-finite cloud
        # column by column: numpy's reduction over a length-4 axis is ~50x slower than four passes
        finite = np.isfinite(points[:, 0])
        for column in range(1, 4):
            finite &= np.isfinite(points[:, column])
        nonfinite = int(finite.size - np.count_nonzero(finite))
        points = points[finite]
    if len(points) == 0:
        raise MessageError("cloud_empty", f"PointCloud2 has no finite points ({nonfinite} NaN / inf points dropped)")
    intensity_max = float(points[:, 3].max())
    np.clip(points[:, 3], 0.0, 1.0, out=points[:, 3])
    return CloudPoints(points, nonfinite, intensity_max)


def _leading_float32_xyzi(dtype: np.dtype) -> bool:
    """x, y, z, intensity are native float32 at byte offsets 0, 4, 8, 12 and point_step is whole floats."""
    native = np.dtype(np.float32)
    return dtype.itemsize % 4 == 0 and all(
        dtype.fields[name][0] == native and dtype.fields[name][1] == 4 * column
        for column, name in enumerate(CLOUD_FIELDS))


# ---- Image and calibration ---------------------------------------------------------------------

def check_image(image: Image) -> None:
    """Cheap checks of an Image's metadata (callback-safe). Raises MessageError 'image_encoding',
    'image_size'."""
    if image.encoding not in IMAGE_ENCODINGS:
        raise MessageError("image_encoding", f"Image encoding {image.encoding!r} is not supported "
                                             f"(supported: {', '.join(IMAGE_ENCODINGS)})")
    width, height, step = int(image.width), int(image.height), int(image.step)
    if width == 0 or height == 0:
        raise MessageError("image_size", f"Image is empty ({width} x {height})")
    if step < 3 * width:
        raise MessageError("image_size", f"Image step {step} is less than 3 x width = {3 * width} ({image.encoding})")
    if len(image.data) < step * height:
        raise MessageError("image_size", f"Image data is {len(image.data)} bytes, expected step x height = "
                                         f"{step} x {height} = {step * height} for a {width} x {height} "
                                         f"{image.encoding} image")


def image_to_rgb(image: Image) -> np.ndarray:
    """Image (rgb8 or bgr8, any step) -> (H, W, 3) uint8 RGB, a copy that owns its memory."""
    check_image(image)
    width, height = int(image.width), int(image.height)
    raw = np.frombuffer(image.data, dtype=np.uint8)
    pixels = np.ndarray(shape=(height, width, 3), dtype=np.uint8, buffer=raw, strides=(int(image.step), 3, 1))
    if image.encoding == "rgb8":
        return pixels.copy()     # C order: drops any row padding
    # channel by channel: a reversed-stride copy (pixels[..., ::-1]) is ~5x slower
    rgb = np.empty((height, width, 3), dtype=np.uint8)
    for channel in range(3):
        rgb[..., channel] = pixels[..., 2 - channel]
    return rgb


def camera_info_intrinsics(info: CameraInfo) -> np.ndarray:
    """CameraInfo -> (3, 3) float64 K. Raises MessageError 'camera_info' for an uncalibrated K."""
    k = np.asarray(info.k, dtype=np.float64).reshape(3, 3)
    if not np.isfinite(k).all() or k[0, 0] <= 0 or k[1, 1] <= 0 or k[2, 2] != 1.0 or np.any(k[2, :2] != 0):
        raise MessageError("camera_info", f"CameraInfo K is not a pinhole matrix ({k.reshape(-1).tolist()}): "
                                          f"is the camera calibrated?")
    if info.width == 0 or info.height == 0:
        raise MessageError("camera_info", f"CameraInfo has no image size ({info.width} x {info.height})")
    return k


def quaternion_to_matrix(x: float, y: float, z: float, w: float) -> np.ndarray:
    """(3, 3) float64 rotation of a quaternion (normalized here)."""
    q = np.array([x, y, z, w], dtype=np.float64)
    norm = np.linalg.norm(q)
    if not np.isfinite(norm) or norm < 1e-9:
        raise MessageError("transform", f"rotation quaternion {q.tolist()} has no direction")
    x, y, z, w = q / norm
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def transform_to_matrix(transform: Transform) -> np.ndarray:
    """geometry_msgs/Transform -> (4, 4) float64 (maps points of the child frame into the parent)."""
    matrix = np.eye(4)
    r = transform.rotation
    matrix[:3, :3] = quaternion_to_matrix(r.x, r.y, r.z, r.w)
    t = transform.translation
    matrix[:3, 3] = (t.x, t.y, t.z)
    return matrix


def stamp_ns(header: Header) -> int:
    """A header's stamp in integer nanoseconds."""
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


# ---- outputs -----------------------------------------------------------------------------------

def detections_to_msg(detections: Detections, header: Header) -> Detection3DArray:
    """Detection3DArray in the cloud's frame: one hypothesis (class name, score) per box.

    The bbox centre is the box's geometric centre and size is (dx, dy, dz) = (length, width, height)
    (design.md §2); the hypothesis pose repeats the centre, as vision_msgs asks.
    """
    # Filling the sub-messages a default-constructed message already holds costs half of building each
    # one with keyword arguments (every keyword default is constructed anyway, then replaced).
    out = Detection3DArray(header=header)
    boxes = detections.boxes.astype(np.float64)
    half_yaw = boxes[:, 6] / 2.0
    for box, qz, qw, score, label in zip(boxes.tolist(), np.sin(half_yaw).tolist(), np.cos(half_yaw).tolist(),
                                         detections.scores.tolist(), detections.labels.tolist()):
        detection = Detection3D(header=header)
        pose = detection.bbox.center
        pose.position.x, pose.position.y, pose.position.z = box[0], box[1], box[2]
        pose.orientation.z, pose.orientation.w = qz, qw
        size = detection.bbox.size
        size.x, size.y, size.z = box[3], box[4], box[5]
        hypothesis = ObjectHypothesisWithPose()
        hypothesis.hypothesis.class_id = detections.class_names[int(label)]
        hypothesis.hypothesis.score = float(score)
        hypothesis.pose.pose = pose
        detection.results.append(hypothesis)
        out.detections.append(detection)
    return out


def detections_to_markers(detections: Detections, header: Header, lifetime_s: float) -> MarkerArray:
    """MarkerArray for RViz / Foxglove: a DELETEALL, one LINE_LIST per class holding the 12 edges of each
    of its boxes (namespace 'boxes', id = class index), and a text label per box ('labels', id = index).

    lifetime_s: how long a marker stays if no newer frame replaces it (0: until deleted).
    """
    lifetime = Duration(sec=int(lifetime_s), nanosec=round((lifetime_s % 1.0) * 1e9))
    markers = [Marker(header=header, action=Marker.DELETEALL)]
    labels = detections.labels.astype(np.int64)
    edges = box_corners(detections.boxes)[:, BOX_EDGES.reshape(-1)]          # (N, 24, 3)
    colours = {label: ColorRGBA(**dict(zip("rgba", CLASS_COLOURS[label % len(CLASS_COLOURS)])))
               for label in np.unique(labels).tolist()}
    for label, colour in colours.items():
        lines = Marker(header=header, ns="boxes", id=label, type=Marker.LINE_LIST, action=Marker.ADD,
                       scale=Vector3(x=0.1), color=colour, lifetime=lifetime)
        lines.pose.orientation.w = 1.0
        lines.points = [Point(x=x, y=y, z=z) for x, y, z in edges[labels == label].reshape(-1, 3).tolist()]
        markers.append(lines)
    # A Marker costs ~60 us to construct; shallow copies of one template cost a tenth of that. Each
    # copy gets new pose / text / id / colour objects; the shared header, scale, lifetime are never mutated.
    template = Marker(header=header, ns="labels", type=Marker.TEXT_VIEW_FACING, action=Marker.ADD,
                      scale=Vector3(z=LABEL_HEIGHT_M), lifetime=lifetime)
    for index, (box, score, label) in enumerate(zip(detections.boxes.astype(np.float64).tolist(),
                                                    detections.scores.tolist(), labels.tolist())):
        text = copy.copy(template)
        text.id = index
        text.color = colours[label]
        text.text = f"{detections.class_names[label]} {score:.2f}"
        text.pose = Pose(position=Point(x=box[0], y=box[1], z=box[2] + box[5] / 2.0 + LABEL_HEIGHT_M),
                         orientation=Quaternion(w=1.0))
        markers.append(text)
    return MarkerArray(markers=markers)


DIAGNOSTIC_LEVELS = {"ok": DiagnosticStatus.OK, "warn": DiagnosticStatus.WARN, "error": DiagnosticStatus.ERROR}


def diagnostics_to_msg(header: Header, name: str, hardware_id: str, level: str, message: str,
                       values: dict[str, object]) -> DiagnosticArray:
    """One DiagnosticStatus (level 'ok' | 'warn' | 'error') with `values` as key/value strings."""
    status = DiagnosticStatus(level=DIAGNOSTIC_LEVELS[level], name=name, message=message, hardware_id=hardware_id,
                              values=[KeyValue(key=str(k), value=_format_value(v)) for k, v in values.items()])
    return DiagnosticArray(header=header, status=[status])


def _format_value(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)
