"""Approximate-time pairing and the newest-wins mailbox (v2xfusion_perception/sync.py), without ROS."""
import threading
import time

import numpy as np
import pytest

from v2xfusion_perception.sync import (
    CLOUD,
    IMAGE,
    OUT_OF_ORDER,
    UNPAIRED,
    ApproximateTimeSync,
    LatestSlot,
)

MS = 1_000_000  # ns


def stamps_of(result):
    pair = result.pair
    return None if pair is None else (pair.image.stamp_ns, pair.cloud.stamp_ns)


def test_equal_stamps_pair_whichever_stream_comes_first():
    sync = ApproximateTimeSync(50 * MS, 10)
    assert sync.add_image(100 * MS, "i0", 0.0).pair is None
    result = sync.add_cloud(100 * MS, "c0", 1.5)
    assert stamps_of(result) == (100 * MS, 100 * MS)
    assert (result.pair.image.payload, result.pair.cloud.payload, result.pair.received) == ("i0", "c0", 1.5)
    assert sync.add_cloud(200 * MS, "c1", 2.0).pair is None
    assert stamps_of(sync.add_image(210 * MS, "i1", 2.1)) == (210 * MS, 200 * MS)
    assert sync.pairs == 2 and sum(sync.drops.values()) == 0
    assert sync.queued(IMAGE) == [] and sync.queued(CLOUD) == []


def test_cloud_takes_the_nearest_queued_image_and_older_ones_are_dropped():
    sync = ApproximateTimeSync(50 * MS, 10)
    for t in (0, 30, 60):
        assert sync.add_image(t * MS, t, 0.0).pair is None
    result = sync.add_cloud(40 * MS, "c", 0.0)
    assert stamps_of(result) == (30 * MS, 40 * MS)
    assert [(d.stream, d.stamp_ns, d.reason) for d in result.drops] == [(IMAGE, 0, UNPAIRED)]
    assert sync.queued(IMAGE) == [60 * MS]
    assert sync.drops[(IMAGE, UNPAIRED)] == 1


def test_tie_between_two_images_picks_the_older():
    sync = ApproximateTimeSync(50 * MS, 10)
    sync.add_image(20 * MS, "early", 0.0)
    sync.add_image(60 * MS, "late", 0.0)
    assert sync.add_cloud(40 * MS, "c", 0.0).pair.image.payload == "early"


def test_partner_beyond_the_delay_is_not_fused_and_the_stale_image_is_dropped():
    sync = ApproximateTimeSync(50 * MS, 10)
    sync.add_image(0, "i", 0.0)
    result = sync.add_cloud(51 * MS, "c", 0.0)
    assert result.pair is None
    # the cloud stream reached 51 ms: an image at 0 can never pair any more
    assert [(d.stream, d.stamp_ns, d.reason) for d in result.drops] == [(IMAGE, 0, UNPAIRED)]
    assert sync.queued(CLOUD) == [51 * MS] and sync.queued(IMAGE) == []


def test_image_with_no_cloud_is_dropped_when_the_next_pair_arrives():
    sync = ApproximateTimeSync(50 * MS, 10)
    sync.add_image(0, "orphan", 0.0)
    sync.add_image(100 * MS, "i", 0.0)
    result = sync.add_cloud(100 * MS, "c", 0.0)
    assert stamps_of(result) == (100 * MS, 100 * MS)
    assert [(d.stream, d.stamp_ns, d.reason) for d in result.drops] == [(IMAGE, 0, UNPAIRED)]


def test_messages_older_than_the_last_pair_are_out_of_order():
    sync = ApproximateTimeSync(50 * MS, 10)
    sync.add_image(1000 * MS, "i", 0.0)
    sync.add_cloud(1000 * MS, "c", 0.0)
    for add, stream in ((sync.add_image, IMAGE), (sync.add_cloud, CLOUD)):
        result = add(900 * MS, "old", 0.0)
        assert result.pair is None
        assert [(d.stream, d.reason) for d in result.drops] == [(stream, OUT_OF_ORDER)]
        # the same stamp again is not newer either
        assert add(1000 * MS, "same", 0.0).drops[0].reason == OUT_OF_ORDER
    assert sync.drops[(IMAGE, OUT_OF_ORDER)] == 2 and sync.drops[(CLOUD, OUT_OF_ORDER)] == 2
    assert sync.queued(IMAGE) == [] and sync.queued(CLOUD) == []


def test_queue_is_bounded_when_the_other_stream_is_silent():
    sync = ApproximateTimeSync(50 * MS, 3)
    drops = []
    for i in range(8):
        drops += sync.add_image(i * 100 * MS, i, 0.0).drops
    assert sync.queued(IMAGE) == [500 * MS, 600 * MS, 700 * MS]
    assert [d.stamp_ns for d in drops] == [0, 100 * MS, 200 * MS, 300 * MS, 400 * MS]
    assert all(d.reason == UNPAIRED for d in drops)


def test_late_stream_still_pairs_every_frame():
    # The cloud driver is two frames behind the camera: stamps still match one to one.
    sync = ApproximateTimeSync(20 * MS, 10)
    pairs = []
    for i in range(10):
        pairs.append(sync.add_image(i * 100 * MS, i, 0.0).pair)
        if i >= 2:
            pairs.append(sync.add_cloud((i - 2) * 100 * MS + 3 * MS, i - 2, 0.0).pair)
    for i in (8, 9):
        pairs.append(sync.add_cloud(i * 100 * MS + 3 * MS, i, 0.0).pair)
    got = [(p.image.payload, p.cloud.payload) for p in pairs if p is not None]
    assert got == [(i, i) for i in range(10)]
    assert sum(sync.drops.values()) == 0


def test_random_jittered_streams_match_a_brute_force_reference():
    rng = np.random.default_rng(3)
    period, delay = 100 * MS, 30 * MS
    n = 200
    image_stamps = np.arange(n) * period + rng.integers(0, 15 * MS, n)
    cloud_stamps = np.arange(n) * period + rng.integers(0, 15 * MS, n)
    keep_image = rng.random(n) > 0.1            # some frames of each sensor are lost
    keep_cloud = rng.random(n) > 0.1
    images = [int(s) for s, k in zip(image_stamps, keep_image) if k]
    clouds = [int(s) for s, k in zip(cloud_stamps, keep_cloud) if k]
    # Reference: a cloud pairs with the image nearest in time if within the delay (at most one can be,
    # as jitter + delay < period / 2).
    expected = set()
    for c in clouds:
        nearest = min(images, key=lambda i: abs(i - c))
        if abs(nearest - c) <= delay:
            expected.add((nearest, c))
    # Arrival: each stream in order, interleaved with random transport delays of up to 2 periods.
    events = [(s + rng.integers(0, 2 * period), IMAGE, s) for s in images]
    events += [(s + rng.integers(0, 2 * period), CLOUD, s) for s in clouds]
    events.sort(key=lambda e: e[0])
    for stream in (IMAGE, CLOUD):  # keep per-stream order (transports deliver each topic in order)
        ordered = iter(sorted(s for _, st, s in events if st == stream))
        events = [(t, st, next(ordered) if st == stream else s) for t, st, s in events]
    sync = ApproximateTimeSync(delay, 50)
    got = set()
    for _, stream, stamp in events:
        result = (sync.add_image if stream == IMAGE else sync.add_cloud)(stamp, None, 0.0)
        if result.pair is not None:
            got.add((result.pair.image.stamp_ns, result.pair.cloud.stamp_ns))
    assert got == expected
    assert sync.pairs == len(expected)
    dropped = sum(sync.drops.values())
    still_queued = len(sync.queued(IMAGE)) + len(sync.queued(CLOUD))
    assert 2 * len(expected) + dropped + still_queued == len(images) + len(clouds)


def test_bad_construction_is_refused():
    with pytest.raises(ValueError, match="queue_size"):
        ApproximateTimeSync(MS, 0)
    with pytest.raises(ValueError, match="max_delay_ns"):
        ApproximateTimeSync(-1, 3)


def test_latest_slot_keeps_only_the_newest_and_returns_what_it_displaced():
    slot = LatestSlot()
    assert slot.put("a") is None
    assert slot.put("b") == "a"
    assert slot.put("c") == "b"
    assert slot.take(0.0) == "c"
    assert slot.take(0.01) is None


def test_latest_slot_take_wakes_on_put_and_on_close():
    slot = LatestSlot()
    got = []
    taker = threading.Thread(target=lambda: got.append(slot.take(5.0)))
    taker.start()
    time.sleep(0.05)
    slot.put("x")
    taker.join(2.0)
    assert got == ["x"]

    started = time.monotonic()
    taker = threading.Thread(target=lambda: got.append(slot.take(5.0)))
    taker.start()
    time.sleep(0.05)
    slot.close()
    taker.join(2.0)
    assert not taker.is_alive() and got[-1] is None
    assert time.monotonic() - started < 2.0
    assert slot.closed
