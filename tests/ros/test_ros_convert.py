"""Message <-> array conversions of the node (v2xfusion_perception/ros_convert.py).

Clouds are packed point by point with `struct` in the tests, an encoding independent of the numpy
structured dtype the converter reads them with.
"""
import math
import struct

import numpy as np
import pytest
from geometry_msgs.msg import Transform
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField
from std_msgs.msg import Header
from visualization_msgs.msg import Marker

from v2xfusion_perception import ros_convert
from v2xfusion_perception.frame import Detections
from v2xfusion_perception.ros_convert import MessageError

STRUCT_CODES = {PointField.INT8: "b", PointField.UINT8: "B", PointField.INT16: "h", PointField.UINT16: "H",
                PointField.INT32: "i", PointField.UINT32: "I", PointField.FLOAT32: "f", PointField.FLOAT64: "d"}


def pack_cloud(columns: dict, layout: list, point_step: int, big_endian: bool = False, height: int = 1,
               row_pad: int = 0) -> PointCloud2:
    """A PointCloud2 whose fields are (name, offset, datatype), values from `columns` (name -> (N,) array)."""
    n = len(next(iter(columns.values())))
    width = n // height
    row_step = width * point_step + row_pad
    data = bytearray(row_step * height)
    order = ">" if big_endian else "<"
    for i in range(n):
        row, col = divmod(i, width)
        base = row * row_step + col * point_step
        for name, offset, datatype in layout:
            if name in columns:
                struct.pack_into(order + STRUCT_CODES[datatype], data, base + offset, columns[name][i].item())
    msg = PointCloud2(height=height, width=width, point_step=point_step, row_step=row_step,
                      is_bigendian=big_endian, is_dense=False)
    msg.fields = [PointField(name=name, offset=offset, datatype=datatype, count=1) for name, offset, datatype in layout]
    msg.data = bytes(data)
    return msg


def random_points(n: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {"x": rng.uniform(-50, 50, n).astype(np.float32), "y": rng.uniform(-50, 50, n).astype(np.float32),
            "z": rng.uniform(-3, 3, n).astype(np.float32), "intensity": rng.uniform(0, 1, n).astype(np.float32)}


F32, F64, U8, U16 = PointField.FLOAT32, PointField.FLOAT64, PointField.UINT8, PointField.UINT16


def test_standard_layout_round_trips():
    cols = random_points(500)
    cloud = pack_cloud(cols, [("x", 0, F32), ("y", 4, F32), ("z", 8, F32), ("intensity", 12, F32)], 16)
    got = ros_convert.cloud_to_points(cloud, 1.0)
    assert got.points.dtype == np.float32 and got.points.shape == (500, 4)
    np.testing.assert_array_equal(got.points, np.stack([cols[k] for k in ("x", "y", "z", "intensity")], axis=1))
    assert got.nonfinite == 0
    assert got.intensity_max == pytest.approx(cols["intensity"].max())


def test_leading_xyzi_layout_with_trailing_fields_leaves_the_message_as_it_was():
    # x, y, z, intensity first, then ring / time (a Velodyne-like 32-byte point), intensity 0-255
    cols = random_points(300, seed=11)
    cols["intensity"] = (cols["intensity"] * 255).astype(np.float32)
    cols["ring"] = (np.arange(300) % 32).astype(np.float32)
    cloud = pack_cloud(cols, [("x", 0, F32), ("y", 4, F32), ("z", 8, F32), ("intensity", 12, F32),
                              ("ring", 16, F32), ("time", 20, F32)], 32)
    before = bytes(cloud.data)
    got = ros_convert.cloud_to_points(cloud, 255.0)
    expected = np.stack([cols["x"], cols["y"], cols["z"], cols["intensity"] / np.float32(255.0)], axis=1)
    np.testing.assert_allclose(got.points, expected, rtol=0, atol=1e-6)
    assert got.points.flags.c_contiguous and got.points.flags.owndata
    assert bytes(cloud.data) == before          # scaling and clipping worked on a copy


@pytest.mark.parametrize("case", ["reordered_padded", "big_endian", "float64_uint8", "uint16_extra_fields",
                                  "organized_row_padding"])
def test_any_field_layout_gives_the_same_points(case):
    cols = random_points(240, seed=1)
    scale = 1.0
    if case == "reordered_padded":  # intensity first, then z, x, y; holes between fields
        layout, step, kw = [("intensity", 0, F32), ("z", 8, F32), ("x", 16, F32), ("y", 24, F32)], 32, {}
    elif case == "big_endian":
        layout, step, kw = [("x", 0, F32), ("y", 4, F32), ("z", 8, F32), ("intensity", 12, F32)], 16, \
            {"big_endian": True}
    elif case == "float64_uint8":   # double coordinates, 0-255 byte intensity (scale 255)
        cols["intensity"] = np.round(cols["intensity"] * 255).astype(np.uint8)
        layout, step, kw, scale = [("x", 0, F64), ("y", 8, F64), ("z", 16, F64), ("intensity", 24, U8)], 32, {}, 255.0
    elif case == "uint16_extra_fields":  # Ouster-like: ring and time around the fields we read
        cols["intensity"] = np.round(cols["intensity"] * 65535).astype(np.uint16)
        cols["ring"] = np.arange(240, dtype=np.uint16) % 64
        layout, step, kw, scale = [("x", 0, F32), ("y", 4, F32), ("z", 8, F32), ("t", 12, PointField.UINT32),
                                   ("intensity", 16, U16), ("ring", 18, U16)], 24, {}, 65535.0
    else:                           # 4 x 60 organized cloud with 12 bytes of padding after every row
        layout, step, kw = [("x", 0, F32), ("y", 4, F32), ("z", 8, F32), ("intensity", 12, F32)], 16, \
            {"height": 4, "row_pad": 12}
    cloud = pack_cloud(cols, layout, step, **kw)
    got = ros_convert.cloud_to_points(cloud, scale)
    expected = np.stack([cols["x"], cols["y"], cols["z"], cols["intensity"].astype(np.float64) / scale], axis=1)
    np.testing.assert_allclose(got.points, expected.astype(np.float32), rtol=0, atol=1e-6)


def test_nonfinite_points_are_dropped_and_counted():
    cols = random_points(100, seed=2)
    cols["x"][[3, 50]] = np.nan
    cols["z"][7] = np.inf
    cols["intensity"][90] = np.nan
    cloud = pack_cloud(cols, [("x", 0, F32), ("y", 4, F32), ("z", 8, F32), ("intensity", 12, F32)], 16)
    got = ros_convert.cloud_to_points(cloud, 1.0)
    keep = np.setdiff1d(np.arange(100), [3, 7, 50, 90])
    assert got.nonfinite == 4
    np.testing.assert_array_equal(got.points[:, 0], cols["x"][keep])
    with pytest.raises(MessageError, match="no finite points") as info:
        all_nan = {k: np.full(5, np.nan, np.float32) for k in cols}
        ros_convert.cloud_to_points(pack_cloud(all_nan, [("x", 0, F32), ("y", 4, F32), ("z", 8, F32),
                                                         ("intensity", 12, F32)], 16), 1.0)
    assert info.value.problem == "cloud_empty"


def test_intensity_above_the_scale_is_reported_and_clipped():
    cols = random_points(50, seed=4)
    cols["intensity"] = np.linspace(0, 200, 50).astype(np.float32)   # a 0-255 LiDAR read with scale 1
    cloud = pack_cloud(cols, [("x", 0, F32), ("y", 4, F32), ("z", 8, F32), ("intensity", 12, F32)], 16)
    got = ros_convert.cloud_to_points(cloud, 1.0)
    assert got.intensity_max == pytest.approx(200.0)
    assert got.points[:, 3].max() == 1.0 and got.points[:, 3].min() == 0.0


def xyzi_cloud(n=10):
    return pack_cloud(random_points(n), [("x", 0, F32), ("y", 4, F32), ("z", 8, F32), ("intensity", 12, F32)], 16)


@pytest.mark.parametrize("damage, problem, words", [
    ("no_intensity", "cloud_fields", ["'intensity'", "fields: x, y, z"]),
    ("zero_points", "cloud_empty", ["no points"]),
    ("truncated", "cloud_truncated", ["152 bytes", "160"]),
    ("field_outside_point", "cloud_layout", ["'intensity'", "point_step 16"]),
    ("short_row_step", "cloud_layout", ["row_step 100"]),
    ("unknown_datatype", "cloud_fields", ["'y'", "datatype 42"]),
    ("field_count", "cloud_fields", ["'z'", "count 3"]),
    ("overlapping_fields", "cloud_layout", ["overlap", "[0, 4, 6, 12]"]),
])
def test_bad_clouds_raise_one_clear_error(damage, problem, words):
    cloud = xyzi_cloud()
    if damage == "no_intensity":
        cloud.fields = cloud.fields[:3]
    elif damage == "zero_points":
        cloud.width, cloud.row_step, cloud.data = 0, 0, b""
    elif damage == "truncated":
        cloud.data = bytes(cloud.data)[:-8]
    elif damage == "field_outside_point":
        cloud.fields[3].offset = 14
    elif damage == "short_row_step":
        cloud.row_step = 100
    elif damage == "overlapping_fields":
        cloud.fields[2].offset = 6
    elif damage == "unknown_datatype":
        cloud.fields[1].datatype = 42
    else:
        cloud.fields[2].count = 3
    with pytest.raises(MessageError) as info:
        ros_convert.cloud_to_points(cloud, 1.0)
    assert info.value.problem == problem
    for word in words:
        assert word in str(info.value)


def make_image(pixels_rgb: np.ndarray, encoding: str, pad: int = 0) -> Image:
    h, w, _ = pixels_rgb.shape
    body = pixels_rgb[..., ::-1] if encoding == "bgr8" else pixels_rgb
    rows = np.zeros((h, 3 * w + pad), np.uint8)
    rows[:, :3 * w] = body.reshape(h, 3 * w)
    return Image(height=h, width=w, encoding=encoding, step=3 * w + pad, data=rows.tobytes())


@pytest.mark.parametrize("encoding, pad", [("rgb8", 0), ("bgr8", 0), ("bgr8", 5)])
def test_images_decode_to_rgb(encoding, pad):
    rgb = np.random.default_rng(5).integers(0, 256, (6, 9, 3), dtype=np.uint8)
    got = ros_convert.image_to_rgb(make_image(rgb, encoding, pad))
    assert got.dtype == np.uint8 and got.flags.c_contiguous
    np.testing.assert_array_equal(got, rgb)


@pytest.mark.parametrize("damage, problem, words", [
    ("mono8", "image_encoding", ["'mono8'", "rgb8, bgr8"]),
    ("16UC1", "image_encoding", ["'16UC1'"]),
    ("short", "image_size", ["161 bytes", "a 9 x 6 rgb8 image"]),
    ("narrow_step", "image_size", ["step 20", "27"]),
    ("empty", "image_size", ["empty"]),
])
def test_bad_images_raise_one_clear_error(damage, problem, words):
    image = make_image(np.zeros((6, 9, 3), np.uint8), "rgb8")
    if damage in ("mono8", "16UC1"):
        image.encoding = damage
    elif damage == "short":
        image.data = bytes(image.data)[:-1]
    elif damage == "narrow_step":
        image.step = 20
    else:
        image.width = 0
    with pytest.raises(MessageError) as info:
        ros_convert.image_to_rgb(image)
    assert info.value.problem == problem
    for word in words:
        assert word in str(info.value), str(info.value)


def test_camera_info_intrinsics_and_uncalibrated_camera():
    info = CameraInfo(width=1242, height=375)
    info.k = [721.5, 0.0, 609.6, 0.0, 721.5, 172.9, 0.0, 0.0, 1.0]
    np.testing.assert_array_equal(ros_convert.camera_info_intrinsics(info),
                                  [[721.5, 0, 609.6], [0, 721.5, 172.9], [0, 0, 1]])
    with pytest.raises(MessageError, match="calibrated") as error:
        ros_convert.camera_info_intrinsics(CameraInfo(width=10, height=10))
    assert error.value.problem == "camera_info"


def test_transform_to_matrix_matches_rodrigues():
    axis = np.array([0.3, -0.5, 0.8]) / np.linalg.norm([0.3, -0.5, 0.8])
    angle = 2.1
    transform = Transform()
    transform.rotation.x, transform.rotation.y, transform.rotation.z = (np.sin(angle / 2) * axis).tolist()
    transform.rotation.w = float(np.cos(angle / 2))
    transform.translation.x, transform.translation.y, transform.translation.z = 1.0, -2.0, 0.5
    cross = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    rotation = np.eye(3) + np.sin(angle) * cross + (1 - np.cos(angle)) * cross @ cross
    matrix = ros_convert.transform_to_matrix(transform)
    np.testing.assert_allclose(matrix[:3, :3], rotation, atol=1e-12)
    np.testing.assert_array_equal(matrix[:3, 3], [1.0, -2.0, 0.5])
    np.testing.assert_array_equal(matrix[3], [0, 0, 0, 1])
    with pytest.raises(MessageError, match="no direction"):
        ros_convert.transform_to_matrix(Transform(rotation=type(transform.rotation)(x=0.0, y=0.0, z=0.0, w=0.0)))


def detections():
    boxes = np.array([[10.0, 2.0, -0.5, 4.2, 1.8, 1.5, 0.4], [20.0, -5.0, 0.0, 0.8, 0.6, 1.7, -2.5]], np.float32)
    return Detections(boxes, np.array([0.9, 0.55], np.float32), np.array([0, 1], np.int32),
                      ("Car", "Pedestrian", "Cyclist"))


def test_detection3darray_carries_boxes_in_the_cloud_frame():
    header = Header(frame_id="lidar")
    header.stamp.sec, header.stamp.nanosec = 12, 345
    msg = ros_convert.detections_to_msg(detections(), header)
    assert msg.header == header and len(msg.detections) == 2
    for det, box, score, name in zip(msg.detections, detections().boxes, (0.9, 0.55), ("Car", "Pedestrian")):
        assert det.header == header
        assert len(det.results) == 1
        assert det.results[0].hypothesis.class_id == name
        assert det.results[0].hypothesis.score == pytest.approx(score)
        centre = det.bbox.center.position
        np.testing.assert_allclose([centre.x, centre.y, centre.z], box[:3], atol=1e-6)
        np.testing.assert_allclose([det.bbox.size.x, det.bbox.size.y, det.bbox.size.z], box[3:6], atol=1e-6)
        q = det.bbox.center.orientation
        # rotating +x by the quaternion gives the heading (cos yaw, sin yaw, 0)
        heading = [1 - 2 * (q.y ** 2 + q.z ** 2), 2 * (q.x * q.y + q.z * q.w), 2 * (q.x * q.z - q.y * q.w)]
        np.testing.assert_allclose(heading, [math.cos(box[6]), math.sin(box[6]), 0.0], atol=1e-6)
        assert det.results[0].pose.pose == det.bbox.center


def test_markers_draw_every_box_edge_and_a_label():
    header = Header(frame_id="lidar")
    markers = ros_convert.detections_to_markers(detections(), header, lifetime_s=0.25).markers
    assert markers[0].action == Marker.DELETEALL
    boxes = [m for m in markers if m.ns == "boxes"]
    labels = [m for m in markers if m.ns == "labels"]
    assert len(boxes) == 2 and len(labels) == 2    # one line list per class present: Car and Pedestrian
    assert [m.id for m in boxes] == [0, 1] and [m.id for m in labels] == [0, 1]
    assert boxes[0].color != boxes[1].color and labels[0].color == boxes[0].color
    for marker, box in zip(boxes, detections().boxes.astype(np.float64)):
        assert marker.type == Marker.LINE_LIST and len(marker.points) == 24
        assert (marker.lifetime.sec, marker.lifetime.nanosec) == (0, 250_000_000)
        points = np.array([[p.x, p.y, p.z] for p in marker.points])
        # corners by hand: centre + R(yaw) (±l/2, ±w/2) and z ± h/2
        c, s = math.cos(box[6]), math.sin(box[6])
        corners = {(round(box[0] + c * a - s * b, 6), round(box[1] + s * a + c * b, 6), round(box[2] + h, 6))
                   for a in (-box[3] / 2, box[3] / 2) for b in (-box[4] / 2, box[4] / 2)
                   for h in (-box[5] / 2, box[5] / 2)}
        assert {tuple(np.round(p, 6)) for p in points} == corners
        # each segment is one box edge: its length is l, w or h
        lengths = np.linalg.norm(points[0::2] - points[1::2], axis=1)
        assert sorted(np.round(lengths, 5)) == sorted(np.round(np.repeat(box[3:6], 4), 5))
    assert labels[0].text == "Car 0.90" and labels[1].text == "Pedestrian 0.55"
    for marker, box in zip(labels, detections().boxes.astype(np.float64)):
        assert marker.type == Marker.TEXT_VIEW_FACING and marker.header == header
        np.testing.assert_allclose([marker.pose.position.x, marker.pose.position.y], box[:2], atol=1e-6)
        assert marker.pose.position.z > box[2] + box[5] / 2     # above the box


def test_markers_of_several_boxes_of_one_class_share_one_line_list():
    boxes = np.array([[0, 0, 0, 4, 2, 1.5, 0], [10, 0, 0, 4, 2, 1.5, 1.0], [20, 5, 0, 1, 1, 2, 0]], np.float32)
    dets = Detections(boxes, np.array([0.9, 0.8, 0.7], np.float32), np.array([0, 0, 2], np.int32),
                      ("Car", "Pedestrian", "Cyclist"))
    markers = ros_convert.detections_to_markers(dets, Header(frame_id="lidar"), 0.0).markers
    lines = {m.id: m for m in markers if m.ns == "boxes"}
    assert sorted(lines) == [0, 2] and len(lines[0].points) == 48 and len(lines[2].points) == 24
    assert [m.text for m in markers if m.ns == "labels"] == ["Car 0.90", "Car 0.80", "Cyclist 0.70"]
    # the labels are distinct objects: changing one leaves the others
    labels = [m for m in markers if m.ns == "labels"]
    assert labels[0].pose is not labels[1].pose and labels[0].pose.position.x != labels[1].pose.position.x


def test_empty_detections_give_an_empty_array_and_a_clearing_marker():
    empty = Detections.empty(("Car",))
    assert ros_convert.detections_to_msg(empty, Header()).detections == []
    markers = ros_convert.detections_to_markers(empty, Header(), 0.0).markers
    assert [m.action for m in markers] == [Marker.DELETEALL]


def test_diagnostics_message_levels_and_values():
    msg = ros_convert.diagnostics_to_msg(Header(), "v2xfusion", "/v2xfusion", "warn", "2 inputs dropped",
                                         {"pairs": 3, "latency_ms_mean": 12.3456})
    status = msg.status[0]
    assert status.level == ros_convert.DiagnosticStatus.WARN and status.message == "2 inputs dropped"
    assert {kv.key: kv.value for kv in status.values} == {"pairs": "3", "latency_ms_mean": "12.346"}
