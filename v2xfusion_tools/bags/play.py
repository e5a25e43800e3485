"""Publish a rosbag2 bag's messages with their recorded timing (there is no `ros2 bag` without rclcpp).

Each message goes out as the raw CDR stored in the bag (rclpy's `publish(bytes)`), never decoded and
re-encoded, so what a subscriber gets is byte for byte what was recorded. Message i is published
`(t_i - t_0) / rate` seconds after the first, on a publisher with the QoS the bag says was offered
(so /tf_static stays latched for late subscribers while the player runs). Megabyte images and clouds
need the large-data Fast DDS profile in the publishing process (v2xfusion_perception.dds): the player
applies it unless FASTDDS_DEFAULT_PROFILES_FILE is already set.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from rosbags.interfaces import QosDurability, QosHistory, QosReliability
from rosbags.rosbag2 import Reader
from rosbags.rosbag2.errors import ReaderError

from v2xfusion_perception.dds import use_large_data_profile
from v2xfusion_tools.bags.layout import PRESET_KEY, BagError

# How long to wait for reliable subscribers to acknowledge the last messages before the publishers go.
ACK_TIMEOUT_S = 5.0
# How long `wait_for_subscribers` may wait before it gives up.
SUBSCRIBER_TIMEOUT_S = 30.0


@dataclass
class PlaySummary:
    """What `play_bag` published."""

    path: Path
    preset: str | None
    messages: dict[str, int] = field(default_factory=dict)
    bag_duration_s: float = 0.0
    wall_duration_s: float = 0.0
    max_lag_ms: float = 0.0
    transport: str = ""

    def format(self) -> str:
        topics = ", ".join(f"{topic} {count}" for topic, count in self.messages.items())
        preset = f" (preset {self.preset})" if self.preset else ""
        return (f"played {self.path}{preset}: {sum(self.messages.values())} messages, bag {self.bag_duration_s:.2f} s "
                f"in {self.wall_duration_s:.2f} s, worst lag behind schedule {self.max_lag_ms:.1f} ms; {topics}"
                + (f"; {self.transport}" if self.transport else ""))


def bag_preset(path: Path) -> str | None:
    """The preset `make_bag` recorded in the bag's metadata.yaml, or None."""
    metadata = path / "metadata.yaml"
    if not metadata.is_file():
        return None
    info = (yaml.safe_load(metadata.read_text()) or {}).get("rosbag2_bagfile_information", {})
    return (info.get("custom_data") or {}).get(PRESET_KEY)


def play_bag(path: str | Path, *, rate: float = 1.0, delay: float = 1.0, wait_for_subscribers: int = 0,
             domain_id: int | None = None, on_published: Callable[[str, int], None] | None = None) -> PlaySummary:
    """Publish every message of the bag at `path` with its recorded timing scaled by 1 / rate.

    delay: seconds between creating the publishers and the first message (for discovery);
    wait_for_subscribers: then also wait until every topic has at least this many subscribers (at
    most SUBSCRIBER_TIMEOUT_S); domain_id: the ROS domain (default: ROS_DOMAIN_ID);
    on_published(topic, log time ns) is called after each publish. Raises BagError naming the bag for a
    missing / unreadable bag, an unknown message type, or subscribers that never came.
    """
    transport = use_large_data_profile()     # before this process's first ROS context, to take effect
    import rclpy
    from rclpy.duration import Duration
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
    from rosidl_runtime_py.utilities import get_message

    path = Path(path)
    if rate <= 0:
        raise BagError(f"rate must be > 0, got {rate}")
    if not path.exists():
        raise BagError(f"{path}: bag not found")
    try:
        reader = Reader(path)
        reader.open()
    except (ReaderError, FileNotFoundError) as exc:
        raise BagError(f"{path}: not a readable rosbag2 bag ({exc})") from None

    def qos_of(connection) -> QoSProfile:
        offered = getattr(connection.ext, "offered_qos_profiles", None) or []
        if not offered:
            return QoSProfile(depth=10)
        qos = offered[0]
        return QoSProfile(
            history=HistoryPolicy.KEEP_ALL if qos.history == QosHistory.KEEP_ALL else HistoryPolicy.KEEP_LAST,
            depth=max(int(qos.depth), 1),
            reliability=(ReliabilityPolicy.BEST_EFFORT if qos.reliability == QosReliability.BEST_EFFORT
                         else ReliabilityPolicy.RELIABLE),
            durability=(DurabilityPolicy.TRANSIENT_LOCAL if qos.durability == QosDurability.TRANSIENT_LOCAL
                        else DurabilityPolicy.VOLATILE))

    summary = PlaySummary(path=path, preset=bag_preset(path), transport=transport)
    context = rclpy.Context()
    if domain_id is None and os.environ.get("ROS_DOMAIN_ID"):
        domain_id = int(os.environ["ROS_DOMAIN_ID"])
    try:
        with rclpy.init(context=context, domain_id=domain_id):
            node = rclpy.create_node("v2xfusion_bag_player", context=context)
            try:
                publishers, types = {}, {}
                for connection in reader.connections:
                    if connection.topic in publishers:
                        if types[connection.topic] != connection.msgtype:
                            raise BagError(f"{path}: topic {connection.topic} is recorded with two types, "
                                           f"{types[connection.topic]} and {connection.msgtype}")
                        continue
                    types[connection.topic] = connection.msgtype
                    try:
                        msg_class = get_message(connection.msgtype)
                    except (AttributeError, ModuleNotFoundError, ValueError):
                        raise BagError(f"{path}: message type {connection.msgtype} of {connection.topic} is not "
                                       f"installed") from None
                    publishers[connection.topic] = node.create_publisher(msg_class, connection.topic,
                                                                         qos_of(connection))
                    summary.messages[connection.topic] = 0
                time.sleep(delay)
                _wait_for_subscribers(path, publishers, wait_for_subscribers)
                wall_start = time.monotonic()
                bag_start = None
                for connection, stamp, raw in reader.messages():
                    bag_start = stamp if bag_start is None else bag_start
                    due = wall_start + (stamp - bag_start) * 1e-9 / rate
                    wait = due - time.monotonic()
                    if wait > 0:
                        time.sleep(wait)
                    summary.max_lag_ms = max(summary.max_lag_ms, (time.monotonic() - due) * 1e3)
                    publishers[connection.topic].publish(bytes(raw))
                    summary.messages[connection.topic] += 1
                    summary.bag_duration_s = (stamp - bag_start) * 1e-9
                    if on_published is not None:
                        on_published(connection.topic, stamp)
                summary.wall_duration_s = time.monotonic() - wall_start
                for publisher in publishers.values():  # reliable subscribers get the last messages too
                    publisher.wait_for_all_acked(Duration(seconds=ACK_TIMEOUT_S))
            finally:
                node.destroy_node()
    finally:
        reader.close()
    return summary


def _wait_for_subscribers(path: Path, publishers: dict, count: int) -> None:
    """Block until every publisher has `count` subscribers; BagError naming the topics after the timeout."""
    deadline = time.monotonic() + SUBSCRIBER_TIMEOUT_S
    while True:
        missing = [topic for topic, publisher in publishers.items() if publisher.get_subscription_count() < count]
        if not missing:
            return
        if time.monotonic() > deadline:
            raise BagError(f"{path}: no {count} subscriber(s) on {', '.join(missing)} after "
                           f"{SUBSCRIBER_TIMEOUT_S:.0f} s")
        time.sleep(0.05)
