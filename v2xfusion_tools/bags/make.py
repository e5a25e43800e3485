"""Write a raw data set (KITTI or DAIR-V2X-I layout) as a rosbag2 bag a robot would have recorded.

Per frame: CameraInfo and Image (rgb8, the file's pixels) stamped with the camera time, PointCloud2
(x, y, z, intensity float32, the LiDAR's own intensity scale: 0-1 KITTI, 0-255 DAIR) stamped with the
LiDAR time, each logged at its stamp. Times: DAIR's `image_timestamp` / `pointcloud_timestamp`; KITTI
frames carry none, so frame i is stamped start + i / frame_rate for both sensors (its Velodyne spins
at 10 Hz and triggers the cameras). The LiDAR -> camera transform goes on /tf_static, latched, one
frame period before the first frame (a robot's static transforms precede its sensor data) and again
whenever the calibration changes.

The calibration is the one the training data uses (design.md §6, guide §2.2.2), so that the node sees
what the model was trained with and detects what `v2xfusion run` detects on the files: the transform
is `lidar2cam` (KITTI: R0_rect @ Tr_velo_to_cam) and CameraInfo.K the 3x3 intrinsics (KITTI: P2's left
3x3). CameraInfo.P is the data set's full projection: for KITTI it keeps P2's fourth column (camera 2
sits beside the rectified camera 0), as ROS does for a camera of a rectified stereo pair, so
`P @ lidar2cam == lidar2img` exactly.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image as PILImage
from rosbags.rosbag2 import Writer
from rosbags.typesys import get_typestore

from v2xfusion_perception.boxes import rigid_inverse
from v2xfusion_perception.errors import DatasetError
from v2xfusion_tools.bags.layout import (
    BAG_VERSION,
    CAMERA_FRAME,
    CAMERA_INFO_TOPIC,
    IMAGE_TOPIC,
    LIDAR_FRAME,
    POINTCLOUD_TOPIC,
    PRESET_KEY,
    SENSOR_QOS,
    STORAGES,
    TF_STATIC_QOS,
    TF_STATIC_TOPIC,
    TOPIC_TYPES,
    TYPESTORE,
    BagError,
)
from v2xfusion_tools.datasets import dair_format, kitti_format
from v2xfusion_tools.datasets.check import PRESET_OF_LAYOUT
from v2xfusion_tools.datasets.pcd import read_pcd
from v2xfusion_tools.datasets.raw import RawDataset, open_raw_dataset
from v2xfusion_tools.progress import ProgressFactory, stage

KITTI_FRAME_RATE_HZ = 10.0
# KITTI frames carry no time of day: stamp them from this instant (2011-09-26, the KITTI raw drives).
KITTI_START_NS = 1_317_000_000 * 1_000_000_000
POINT_FIELDS = ("x", "y", "z", "intensity")
FLOAT32 = 7  # sensor_msgs/PointField.FLOAT32


@dataclass(frozen=True)
class FrameTimes:
    """One frame's id and its camera and LiDAR stamps (ns)."""

    frame_id: str
    image_ns: int
    cloud_ns: int


@dataclass
class BagSummary:
    """What `make_bag` wrote."""

    path: Path
    storage: str
    preset: str
    frames: int
    messages: dict[str, int] = field(default_factory=dict)
    start_ns: int = 0
    end_ns: int = 0

    def format(self) -> str:
        topics = ", ".join(f"{topic} {count}" for topic, count in self.messages.items())
        return (f"{self.frames} frames of preset {self.preset} in {self.path} ({self.storage}), "
                f"{(self.end_ns - self.start_ns) * 1e-9:.2f} s; messages: {topics}")


def frame_times(dataset: RawDataset, frame_rate: float = KITTI_FRAME_RATE_HZ,
                start_ns: int = KITTI_START_NS) -> list[FrameTimes]:
    """Every frame of `dataset` with its stamps, in time order (see the module docstring)."""
    if dataset.layout == "dair":
        info = dair_format.read_data_info(dataset.root / "data_info.json")
        where = dataset.root / "data_info.json"
        times = [FrameTimes(Path(f["pointcloud_path"]).stem, _microseconds(f["image_timestamp"], where),
                            _microseconds(f["pointcloud_timestamp"], where)) for f in info]
        return sorted(times, key=lambda t: (t.cloud_ns, t.frame_id))
    if frame_rate <= 0:
        raise BagError(f"frame rate must be > 0, got {frame_rate}")
    period_ns = round(1e9 / frame_rate)
    return [FrameTimes(frame_id, start_ns + i * period_ns, start_ns + i * period_ns)
            for i, frame_id in enumerate(dataset.frame_ids)]


def camera_projection(lidar2cam: np.ndarray, lidar2img: np.ndarray) -> np.ndarray:
    """The (3, 4) projection P with P @ lidar2cam == lidar2img (module docstring).

    lidar2cam: (4, 4) rigid LiDAR -> camera; lidar2img: (4, 4) or (3, 4) LiDAR -> pixels.
    """
    return np.asarray(lidar2img, np.float64)[:3, :] @ np.linalg.inv(np.asarray(lidar2cam, np.float64))


def quaternion_from_matrix(rotation: np.ndarray) -> tuple[float, float, float, float]:
    """(x, y, z, w) of a (3, 3) rotation, w >= 0 (Shepperd's method: stable for every angle)."""
    m = np.asarray(rotation, dtype=np.float64)
    trace = np.trace(m)
    i = int(np.argmax([trace, m[0, 0], m[1, 1], m[2, 2]]))
    if i == 0:
        s = 2.0 * np.sqrt(1.0 + trace)
        q = np.array([m[2, 1] - m[1, 2], m[0, 2] - m[2, 0], m[1, 0] - m[0, 1], 0.25 * s * s]) / s
    elif i == 1:
        s = 2.0 * np.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = np.array([0.25 * s * s, m[0, 1] + m[1, 0], m[0, 2] + m[2, 0], m[2, 1] - m[1, 2]]) / s
    elif i == 2:
        s = 2.0 * np.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = np.array([m[0, 1] + m[1, 0], 0.25 * s * s, m[1, 2] + m[2, 1], m[0, 2] - m[2, 0]]) / s
    else:
        s = 2.0 * np.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = np.array([m[0, 2] + m[2, 0], m[1, 2] + m[2, 1], 0.25 * s * s, m[1, 0] - m[0, 1]]) / s
    q /= np.linalg.norm(q)
    if q[3] < 0:
        q = -q
    return float(q[0]), float(q[1]), float(q[2]), float(q[3])


def make_bag(data_root: str | Path, out: str | Path, *, preset: str | None = None, storage: str = "mcap",
             max_frames: int | None = None, frame_rate: float = KITTI_FRAME_RATE_HZ, start_ns: int = KITTI_START_NS,
             progress: ProgressFactory | None = None) -> BagSummary:
    """Write the frames of the data set at `data_root` as the bag `out` (a folder, which must not exist).

    preset: recorded in the bag's metadata (default: from the layout, kitti / v2x); storage: mcap or
    sqlite3; max_frames: only the first frames in time order; frame_rate, start_ns: stamps of KITTI
    frames. Raises BagError / DatasetError naming the bag or the file.
    """
    out = Path(out)
    if storage not in STORAGES:
        raise BagError(f"storage {storage!r}: choose one of {', '.join(STORAGES)}")
    if out.exists():
        raise BagError(f"{out}: already exists (a bag is a new folder; remove it or choose another --out)")
    dataset = open_raw_dataset(data_root)
    preset = preset or PRESET_OF_LAYOUT[dataset.layout]
    times = frame_times(dataset, frame_rate, start_ns)
    if max_frames is not None:
        times = times[:max_frames]
    if not times:
        raise DatasetError(f"{data_root}: no frames to write")
    tf_lead_ns = round(1e9 / frame_rate)

    typestore = get_typestore(TYPESTORE)
    summary = BagSummary(path=out, storage=storage, preset=preset, frames=len(times),
                         messages=dict.fromkeys(TOPIC_TYPES, 0))
    with Writer(out, version=BAG_VERSION, storage_plugin=STORAGES[storage]) as writer:
        writer.set_custom_data(PRESET_KEY, preset)
        connections = {topic: writer.add_connection(topic, msgtype, typestore=typestore,
                                                    offered_qos_profiles=[TF_STATIC_QOS if topic == TF_STATIC_TOPIC
                                                                          else SENSOR_QOS])
                       for topic, msgtype in TOPIC_TYPES.items()}
        last_lidar2cam, last_ns = None, None
        with stage(progress, f"bag {out.name}", len(times)) as advance:
            for frame in times:
                messages = _frame_messages(typestore, dataset, frame)
                lidar2cam = messages.pop("lidar2cam")
                first_ns = min(frame.image_ns, frame.cloud_ns)
                if last_lidar2cam is None or not np.array_equal(lidar2cam, last_lidar2cam):
                    # before this frame, after the previous one
                    tf_ns = first_ns - tf_lead_ns if last_ns is None else max(first_ns - tf_lead_ns, last_ns + 1)
                    messages[TF_STATIC_TOPIC] = (tf_ns, _tf_static(typestore, lidar2cam, tf_ns))
                    last_lidar2cam = lidar2cam
                for topic, (stamp, msg) in sorted(messages.items(), key=lambda item: (item[1][0],
                                                                                     list(TOPIC_TYPES).index(item[0]))):
                    writer.write(connections[topic], stamp, typestore.serialize_cdr(msg, TOPIC_TYPES[topic]))
                    summary.messages[topic] += 1
                    summary.start_ns = stamp if summary.start_ns == 0 else min(summary.start_ns, stamp)
                    summary.end_ns = max(summary.end_ns, stamp)
                last_ns = max(frame.image_ns, frame.cloud_ns)
                advance()
    return summary


def _frame_messages(typestore, dataset: RawDataset, frame: FrameTimes) -> dict:
    """{topic: (log time ns, message)} of one frame, plus 'lidar2cam' (4, 4) of its calibration."""
    raw = dataset.read(frame.frame_id)
    files = dataset.files(frame.frame_id)
    if dataset.layout == "dair":
        points = read_pcd(files["lidar"])   # the PCD's own 0-255 intensity, as the LiDAR reports it
        distortion = dair_format.read_camera_intrinsic(files["intrinsic"]).cam_D
    else:
        points = kitti_format.read_velodyne(files["lidar"])
        distortion = np.zeros(5)             # KITTI images are rectified
    try:
        with PILImage.open(raw.image_path) as picture:
            pixels = np.asarray(picture.convert("RGB"))
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{raw.image_path}: cannot read the image ({exc})") from None
    lidar2cam = np.asarray(raw.lidar2cam, np.float64)
    height, width = pixels.shape[:2]
    types = typestore.types
    image_header = _header(types, frame.image_ns, CAMERA_FRAME)
    camera_info = types["sensor_msgs/msg/CameraInfo"](
        header=image_header, height=height, width=width,
        distortion_model="plumb_bob" if len(distortion) == 5 else "rational_polynomial",
        d=np.asarray(distortion, np.float64), k=np.asarray(raw.intrinsics, np.float64).reshape(-1),
        r=np.eye(3).reshape(-1), p=camera_projection(lidar2cam, raw.lidar2img).reshape(-1),
        binning_x=0, binning_y=0,
        roi=types["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))
    image = types["sensor_msgs/msg/Image"](
        header=image_header, height=height, width=width, encoding="rgb8", is_bigendian=0, step=3 * width,
        data=np.ascontiguousarray(pixels).reshape(-1))
    fields = [types["sensor_msgs/msg/PointField"](name=name, offset=4 * i, datatype=FLOAT32, count=1)
              for i, name in enumerate(POINT_FIELDS)]
    cloud_data = np.ascontiguousarray(points[:, :4], dtype="<f4")
    cloud = types["sensor_msgs/msg/PointCloud2"](
        header=_header(types, frame.cloud_ns, LIDAR_FRAME), height=1, width=len(cloud_data), fields=fields,
        is_bigendian=False, point_step=16, row_step=16 * len(cloud_data), data=cloud_data.view(np.uint8).reshape(-1),
        is_dense=bool(np.isfinite(cloud_data).all()))
    return {CAMERA_INFO_TOPIC: (frame.image_ns, camera_info), IMAGE_TOPIC: (frame.image_ns, image),
            POINTCLOUD_TOPIC: (frame.cloud_ns, cloud), "lidar2cam": lidar2cam}


def _tf_static(typestore, lidar2cam: np.ndarray, stamp_ns: int):
    """TFMessage with the camera's pose in the LiDAR frame (parent lidar, child camera)."""
    types = typestore.types
    cam2lidar = rigid_inverse(lidar2cam)
    x, y, z, w = quaternion_from_matrix(cam2lidar[:3, :3])
    transform = types["geometry_msgs/msg/Transform"](
        translation=types["geometry_msgs/msg/Vector3"](x=float(cam2lidar[0, 3]), y=float(cam2lidar[1, 3]),
                                                       z=float(cam2lidar[2, 3])),
        rotation=types["geometry_msgs/msg/Quaternion"](x=x, y=y, z=z, w=w))
    stamped = types["geometry_msgs/msg/TransformStamped"](
        header=_header(types, stamp_ns, LIDAR_FRAME), child_frame_id=CAMERA_FRAME, transform=transform)
    return types["tf2_msgs/msg/TFMessage"](transforms=[stamped])


def _header(types, stamp_ns: int, frame_id: str):
    return types["std_msgs/msg/Header"](
        stamp=types["builtin_interfaces/msg/Time"](sec=stamp_ns // 1_000_000_000, nanosec=stamp_ns % 1_000_000_000),
        frame_id=frame_id)


def _microseconds(value: str | int, where: Path) -> int:
    try:
        return int(value) * 1000
    except ValueError:
        raise DatasetError(f"{where}: timestamp {value!r} is not an integer number of microseconds") from None
