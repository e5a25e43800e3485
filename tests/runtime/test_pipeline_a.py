"""Pipeline A at run time: the same detections as the PyTorch model, every precision, clear errors for bad input."""
import dataclasses

import numpy as np
import pytest

from v2xfusion_perception.frame import Calibration
from v2xfusion_perception.frame_inputs import FrameError
from v2xfusion_perception.pipeline_options import PipelineOptions
from v2xfusion_perception.pipelines import open_pipeline
from v2xfusion_tools.run import data_set, load_frame

STAGE_ORDER = ["preprocess", "voxelize", "camera", "bevpool", "pfe", "scatter", "fuser", "head", "decode", "nms"]


@pytest.fixture(scope="module")
def frames(reference_a):
    dataset = data_set(reference_a.data)
    return [load_frame(dataset, frame_id) for frame_id in dataset.frame_ids]


@pytest.fixture(scope="module")
def pipeline(reference_a):
    return open_pipeline(reference_a.artifacts, PipelineOptions(threads=2), preset="kitti", pipeline="A")


def assert_same_detections(found, boxes, scores, labels, centre_tolerance=0.01):
    """Same count and classes, centres within centre_tolerance metres, boxes and scores close (both lists
    come best first)."""
    assert len(found) == len(scores)
    np.testing.assert_array_equal(found.labels, labels)
    if len(scores):
        assert np.linalg.norm(found.boxes[:, :3] - boxes[:, :3], axis=1).max() < centre_tolerance
        np.testing.assert_allclose(found.boxes[:, 3:6], boxes[:, 3:6], atol=0.01)
        yaw = np.angle(np.exp(1j * (found.boxes[:, 6] - boxes[:, 6])))
        assert np.abs(yaw).max() < 0.01
        np.testing.assert_allclose(found.scores, scores, atol=1e-3)


def test_fp32_detections_equal_the_pytorch_model(pipeline, frames, reference_a):
    total = 0
    for frame in frames:
        found = pipeline.infer(frame.image, frame.points, frame.calibration)
        assert found.boxes.shape == (len(found), 7) and found.boxes.dtype == np.float32
        assert_same_detections(found, *reference_a.detections(frame.frame_id))
        total += len(found)
    assert total >= len(frames)   # the reference model detects something in these frames
    assert all(stage.inference_precision == "f32" for stage in pipeline.stages.values())


def test_timings_name_every_stage_in_order(pipeline, frames):
    found = pipeline.infer(frames[0].image, frames[0].points, frames[0].calibration)
    assert list(found.timings) == STAGE_ORDER
    assert all(value >= 0.0 for value in found.timings.values())
    assert set(pipeline.model_stages) == {"camera", "pfe", "fuser", "head"}


def test_static_v_pfe_is_preferred_and_caps_the_voxels(pipeline, reference_a):
    assert pipeline.stages["lidar_pfe"].entry.file == "lidar_pfe_v1500.onnx"
    assert pipeline.max_voxels == 1500


def test_fp16_models_give_nearly_the_same_detections(reference_a, frames):
    fp16 = open_pipeline(reference_a.artifacts, PipelineOptions(precision="fp16", threads=2))
    assert {stage.entry.file for stage in fp16.stages.values()} == {
        "camera.backbone_fp16.xml", "lidar_pfe_v1500_fp16.xml", "fuser_fp16.xml", "head_fp16.xml"}
    for frame in frames:
        found = fp16.infer(frame.image, frame.points, frame.calibration)
        boxes, scores, labels = reference_a.detections(frame.frame_id)
        assert_same_detections(found, boxes, scores, labels, centre_tolerance=0.05) if len(found) == len(scores) \
            else pytest.fail(f"frame {frame.frame_id}: {len(found)} FP16 detections, {len(scores)} FP32")


def test_int8_toggles_pick_the_int8_model_of_each_chosen_stage(reference_a, frames):
    head_only = open_pipeline(reference_a.artifacts, PipelineOptions(precision="int8", int8_stages=("head",)))
    assert {name: stage.entry.precision for name, stage in head_only.stages.items()} == {
        "camera.backbone": "fp32", "lidar_pfe": "fp32", "fuser": "fp32", "head": "int8"}
    assert head_only.stages["head"].entry.file == "head_int8.xml"
    everything = open_pipeline(reference_a.artifacts, PipelineOptions(precision="int8"))
    assert {stage.entry.precision for stage in everything.stages.values()} == {"int8"}
    for candidate in (head_only, everything):
        found = candidate.infer(frames[0].image, frames[0].points, frames[0].calibration)
        assert np.isfinite(found.boxes).all() and np.all((found.scores >= 0) & (found.scores <= 1))
    # the head alone in INT8 keeps the FP32 boxes within decimetres
    boxes, _, labels = reference_a.detections(frames[0].frame_id)
    found = head_only.infer(frames[0].image, frames[0].points, frames[0].calibration)
    assert len(found) == len(labels)
    nearest = np.linalg.norm(found.boxes[:, None, :2] - boxes[None, :, :2], axis=2).min(axis=1)
    assert nearest.max() < 0.2


def test_image_of_another_size_than_the_calibration_is_a_clear_error(pipeline, frames):
    frame = frames[0]
    with pytest.raises(FrameError, match=r"image: 621x188 pixels, but calibration.image_size says 1242x375"):
        pipeline.infer(frame.image[::2, ::2], frame.points, frame.calibration)
    with pytest.raises(FrameError, match=r"image: expected dtype uint8"):
        pipeline.infer(frame.image.astype(np.float32), frame.points, frame.calibration)
    with pytest.raises(FrameError, match=r"image: expected an \(H, W, 3\) RGB array"):
        pipeline.infer(frame.image[..., 0], frame.points, frame.calibration)


def test_malformed_points_and_calibration_are_clear_errors(pipeline, frames):
    frame = frames[0]
    with pytest.raises(FrameError, match=r"points: expected an \(N, 4\) array"):
        pipeline.infer(frame.image, frame.points[:, :3], frame.calibration)
    scaled = frame.points.copy()
    scaled[:, 3] *= 255.0
    with pytest.raises(FrameError, match=r"points: intensity up to .* the model takes 0-1"):
        pipeline.infer(frame.image, scaled, frame.calibration)
    broken = dataclasses.replace(frame.calibration, lidar2cam=np.full((4, 4), np.nan))
    with pytest.raises(FrameError, match=r"calibration.lidar2cam"):
        pipeline.infer(frame.image, frame.points, broken)
    with pytest.raises(FrameError, match=r"calibration.intrinsics"):
        pipeline.infer(frame.image, frame.points, dataclasses.replace(frame.calibration, intrinsics=np.eye(4)))


def test_empty_cloud_and_cloud_outside_the_range_give_no_detections(pipeline, frames):
    frame = frames[0]
    before = pipeline.counters["empty_clouds"]
    empty = pipeline.infer(frame.image, np.zeros((0, 4), np.float32), frame.calibration)
    assert len(empty) == 0 and empty.boxes.shape == (0, 7) and empty.class_names == pipeline.class_names
    far = np.array([[500.0, 0.0, 0.0, 0.5], [0.0, 900.0, 1.0, 0.2]], np.float32)
    assert len(pipeline.infer(frame.image, far, frame.calibration)) == 0
    assert pipeline.counters["empty_clouds"] == before + 2


def test_non_finite_points_are_dropped_and_counted(pipeline, frames, reference_a):
    frame = frames[1]
    bad = np.array([[np.nan, 1.0, 0.0, 0.5], [3.0, np.inf, 0.0, 0.5]], np.float32)
    before = pipeline.counters["points_nonfinite"]
    found = pipeline.infer(frame.image, np.concatenate([frame.points, bad]), frame.calibration)
    assert pipeline.counters["points_nonfinite"] == before + 2
    assert_same_detections(found, *reference_a.detections(frame.frame_id))


def test_geometry_follows_a_calibration_change(pipeline, frames):
    frame = frames[0]
    pipeline.infer(frame.image, frame.points, frame.calibration)
    computed = pipeline.camera_geometry.computed
    pipeline.infer(frame.image, frame.points, frame.calibration)
    assert pipeline.camera_geometry.computed == computed
    moved = frame.calibration.lidar2cam.copy()
    moved[1, 3] += 0.5
    pipeline.infer(frame.image, frame.points, Calibration(frame.calibration.intrinsics, moved,
                                                          frame.calibration.image_size))
    assert pipeline.camera_geometry.computed == computed + 1


def resident_bytes():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096


def test_memory_stays_flat_frame_after_frame(pipeline, frames):
    for i in range(8):
        frame = frames[i % len(frames)]
        pipeline.infer(frame.image, frame.points, frame.calibration)
    settled = resident_bytes()
    for i in range(16):
        frame = frames[i % len(frames)]
        pipeline.infer(frame.image, frame.points, frame.calibration)
    assert resident_bytes() - settled < 16 * 2 ** 20
