"""Approximate-time pairing of camera images with LiDAR clouds, and the newest-wins hand-off to inference.

message_filters' ApproximateTime policy lives in rclcpp, which our wheels do not have, so the node uses
this small synchronizer. It knows nothing of ROS: messages are opaque payloads with an integer stamp
(nanoseconds), so every rule here is tested without rclpy.

Pairing rule: a message pairs with the nearest-stamped message of the other stream that has already
arrived, if their stamps differ by at most `max_delay_ns` (the node's `max_camera_lidar_delay`). With the
delay below half a sensor period (0.05 s at 10 Hz in configs/ros/) at most one candidate can exist, so
pairing as soon as one is there costs no accuracy and adds no latency. Queues are bounded, and every
message that leaves without a partner is reported as a `Drop` with its reason:

* ``out_of_order``: its stamp is not newer than the last paired message of its stream;
* ``unpaired``: the other stream has moved past it by more than the delay (it can no longer pair,
  given that each stream arrives in stamp order), or it was the oldest of a full queue.
"""
from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

IMAGE = "image"
CLOUD = "cloud"
STREAMS = (IMAGE, CLOUD)
OUT_OF_ORDER = "out_of_order"
UNPAIRED = "unpaired"
DROP_REASONS = (OUT_OF_ORDER, UNPAIRED)


@dataclass(frozen=True)
class Stamped:
    """One message of a stream: its header stamp (ns) and whatever the caller attached."""

    stamp_ns: int
    payload: Any


@dataclass(frozen=True)
class Pair:
    """A synchronized image + cloud; `received` is the caller's clock when the pair was completed."""

    image: Stamped
    cloud: Stamped
    received: float


@dataclass(frozen=True)
class Drop:
    """A message that left the synchronizer without a partner."""

    stream: str
    stamp_ns: int
    reason: str


@dataclass(frozen=True)
class SyncResult:
    """What one `add` produced: at most one pair and any number of drops (oldest first)."""

    pair: Pair | None = None
    drops: tuple[Drop, ...] = ()


@dataclass
class _Queue:
    stamps: list[int] = field(default_factory=list)
    items: list[Stamped] = field(default_factory=list)
    last_paired_ns: int | None = None

    def insert(self, item: Stamped) -> None:
        index = bisect.bisect_right(self.stamps, item.stamp_ns)
        self.stamps.insert(index, item.stamp_ns)
        self.items.insert(index, item)

    def pop(self, index: int) -> Stamped:
        self.stamps.pop(index)
        return self.items.pop(index)

    def nearest(self, stamp_ns: int) -> int | None:
        """Index of the queued stamp closest to `stamp_ns` (the older one on a tie), or None if empty."""
        if not self.stamps:
            return None
        index = bisect.bisect_left(self.stamps, stamp_ns)
        candidates = [i for i in (index - 1, index) if 0 <= i < len(self.stamps)]
        return min(candidates, key=lambda i: (abs(self.stamps[i] - stamp_ns), self.stamps[i]))


class ApproximateTimeSync:
    """Pairs images with clouds by stamp (see the module docstring for the rule).

    Not thread-safe: call it from one thread (the node calls it from its subscription callbacks, which
    the executor runs one at a time).
    """

    def __init__(self, max_delay_ns: int, queue_size: int):
        if max_delay_ns < 0:
            raise ValueError(f"max_delay_ns must be >= 0, got {max_delay_ns}")
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size}")
        self.max_delay_ns = int(max_delay_ns)
        self.queue_size = int(queue_size)
        self._queues = {stream: _Queue() for stream in STREAMS}
        self.pairs = 0
        self.drops = {(stream, reason): 0 for stream in STREAMS for reason in DROP_REASONS}

    def add_image(self, stamp_ns: int, payload: Any, received: float) -> SyncResult:
        """Offer an image; returns the pair it completed, if any, and what was dropped."""
        return self._add(IMAGE, Stamped(int(stamp_ns), payload), received)

    def add_cloud(self, stamp_ns: int, payload: Any, received: float) -> SyncResult:
        """Offer a cloud; returns the pair it completed, if any, and what was dropped."""
        return self._add(CLOUD, Stamped(int(stamp_ns), payload), received)

    def queued(self, stream: str) -> list[int]:
        """Stamps waiting for a partner on `stream`, oldest first."""
        return list(self._queues[stream].stamps)

    def _add(self, stream: str, item: Stamped, received: float) -> SyncResult:
        own = self._queues[stream]
        other_stream = CLOUD if stream == IMAGE else IMAGE
        other = self._queues[other_stream]
        drops: list[Drop] = []
        if own.last_paired_ns is not None and item.stamp_ns <= own.last_paired_ns:
            drops.append(self._drop(stream, item.stamp_ns, OUT_OF_ORDER))
            return SyncResult(None, tuple(drops))

        pair = None
        index = other.nearest(item.stamp_ns)
        if index is not None and abs(other.stamps[index] - item.stamp_ns) <= self.max_delay_ns:
            partner = other.pop(index)
            image, cloud = (item, partner) if stream == IMAGE else (partner, item)
            pair = Pair(image=image, cloud=cloud, received=received)
            self.pairs += 1
            self._queues[IMAGE].last_paired_ns = image.stamp_ns
            self._queues[CLOUD].last_paired_ns = cloud.stamp_ns
            # Whatever is older than the pair on either stream can only pair out of order now.
            for name in STREAMS:
                queue = self._queues[name]
                while queue.stamps and queue.stamps[0] <= queue.last_paired_ns:
                    drops.append(self._drop(name, queue.pop(0).stamp_ns, UNPAIRED))
        else:
            own.insert(item)
            if len(own.stamps) > self.queue_size:
                drops.append(self._drop(stream, own.pop(0).stamp_ns, UNPAIRED))

        # A stream that has reached stamp t will not deliver anything older, so messages of the other
        # stream older than t - max_delay have lost their last chance to pair.
        for name, newest in ((other_stream, item.stamp_ns), (stream, self._newest(other_stream))):
            if newest is None:
                continue
            queue = self._queues[name]
            while queue.stamps and queue.stamps[0] < newest - self.max_delay_ns:
                drops.append(self._drop(name, queue.pop(0).stamp_ns, UNPAIRED))
        return SyncResult(pair, tuple(drops))

    def _newest(self, stream: str) -> int | None:
        queue = self._queues[stream]
        candidates = [s for s in (queue.stamps[-1] if queue.stamps else None, queue.last_paired_ns) if s is not None]
        return max(candidates) if candidates else None

    def _drop(self, stream: str, stamp_ns: int, reason: str) -> Drop:
        self.drops[(stream, reason)] += 1
        return Drop(stream, stamp_ns, reason)


T = TypeVar("T")


class LatestSlot(Generic[T]):
    """A one-item mailbox between the subscription callbacks and the inference thread: newest wins.

    `put` never blocks; it returns the item it displaced (a pair that inference was too slow to take),
    so the caller can count it. `take` blocks until an item is there, the timeout passes, or `close`.
    """

    def __init__(self) -> None:
        self._item: T | None = None
        self._closed = False
        self._cond = threading.Condition()

    def put(self, item: T) -> T | None:
        with self._cond:
            displaced, self._item = self._item, item
            self._cond.notify()
            return displaced

    def take(self, timeout: float) -> T | None:
        with self._cond:
            if self._item is None and not self._closed:
                self._cond.wait(timeout)
            item, self._item = self._item, None
            return item

    def close(self) -> None:
        """Wake a waiting `take` for good (the node is shutting down)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        with self._cond:
            return self._closed
