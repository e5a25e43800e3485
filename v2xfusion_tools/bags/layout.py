"""What a bag of ours holds: topic names and types, frame ids, offered QoS, the error type.

The topic names are the launch file's defaults (launch/v2xfusion.launch.py), so a played bag reaches
the node without remapping. Frame ids are those the node looks up in tf2.
"""
from __future__ import annotations

from rosbags.interfaces import (
    Qos,
    QosDurability,
    QosHistory,
    QosLiveliness,
    QosReliability,
    QosTime,
)
from rosbags.rosbag2 import StoragePlugin
from rosbags.typesys import Stores

from v2xfusion_perception.errors import V2XError

IMAGE_TOPIC = "/camera/image_raw"
CAMERA_INFO_TOPIC = "/camera/camera_info"
POINTCLOUD_TOPIC = "/lidar/points"
TF_STATIC_TOPIC = "/tf_static"
TOPIC_TYPES = {
    TF_STATIC_TOPIC: "tf2_msgs/msg/TFMessage",
    CAMERA_INFO_TOPIC: "sensor_msgs/msg/CameraInfo",
    IMAGE_TOPIC: "sensor_msgs/msg/Image",
    POINTCLOUD_TOPIC: "sensor_msgs/msg/PointCloud2",
}
LIDAR_FRAME = "lidar"
CAMERA_FRAME = "camera"          # optical frame: x right, y down, z forward
# The message definitions of the ROS 2 release our wheels come from.
TYPESTORE = Stores.ROS2_KILTED
STORAGES = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
BAG_VERSION = 9
PRESET_KEY = "v2xfusion.preset"   # the bag's custom metadata: which preset its data set belongs to

_NO_TIME = QosTime(sec=0, nsec=0)    # rmw's "unspecified": no deadline, lifespan, lease
# Sensor topics as a driver offers them; /tf_static latched, as tf2's StaticTransformBroadcaster does.
SENSOR_QOS = Qos(QosHistory.KEEP_LAST, 10, QosReliability.RELIABLE, QosDurability.VOLATILE, _NO_TIME, _NO_TIME,
                 QosLiveliness.AUTOMATIC, _NO_TIME, False)
TF_STATIC_QOS = Qos(QosHistory.KEEP_LAST, 1, QosReliability.RELIABLE, QosDurability.TRANSIENT_LOCAL, _NO_TIME,
                    _NO_TIME, QosLiveliness.AUTOMATIC, _NO_TIME, False)


class BagError(V2XError):
    """A bag cannot be written or played: the message names the bag (or data set) and the problem."""
