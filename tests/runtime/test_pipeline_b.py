"""Pipeline B at run time: the unified model with our custom ops gives the PyTorch model's detections; its
BEVPool geometry comes from the export for that calibration and is recomputed for another."""
import numpy as np
import pytest

from v2xfusion_perception.frame import Calibration
from v2xfusion_perception.pipeline_options import PipelineOptions
from v2xfusion_perception.pipelines import open_pipeline
from v2xfusion_tools.run import data_set, load_frame

from .test_pipeline_a import assert_same_detections


@pytest.fixture(scope="module")
def frames(reference_b):
    dataset = data_set(reference_b.data)
    return [load_frame(dataset, frame_id) for frame_id in dataset.frame_ids]


@pytest.fixture(scope="module")
def pipeline(reference_b):
    return open_pipeline(reference_b.artifacts, PipelineOptions(threads=2), preset="v2x", pipeline="B")


def test_fp32_detections_equal_the_pytorch_model(pipeline, frames, reference_b):
    total = 0
    for frame in frames:
        found = pipeline.infer(frame.image, frame.points, frame.calibration)
        assert_same_detections(found, *reference_b.detections(frame.frame_id))
        assert list(found.timings) == ["preprocess", "voxelize", "geometry", "unified", "decode", "nms"]
        total += len(found)
    assert total >= 2
    assert pipeline.stage.inference_precision == "f32"


def test_exported_geometry_serves_its_calibration_and_a_new_one_is_computed(pipeline, frames):
    frame = frames[0]
    computed = pipeline.camera_geometry.computed
    pipeline.infer(frame.image, frame.points, frame.calibration)
    assert pipeline.camera_geometry.computed == computed   # the export's calibration: its geometry files
    tilted = frame.calibration.lidar2cam.copy()
    tilted[2, 3] += 0.3
    found = pipeline.infer(frame.image, frame.points, Calibration(frame.calibration.intrinsics, tilted,
                                                                  frame.calibration.image_size))
    assert pipeline.camera_geometry.computed == computed + 1
    assert np.isfinite(found.boxes).all()


def test_fp16_model_gives_nearly_the_same_detections(reference_b, frames):
    fp16 = open_pipeline(reference_b.artifacts, PipelineOptions(precision="fp16", threads=2))
    assert fp16.stage.entry.file == "bevfusion_unified_fp16.xml"
    for frame in frames:
        found = fp16.infer(frame.image, frame.points, frame.calibration)
        boxes, scores, labels = reference_b.detections(frame.frame_id)
        assert_same_detections(found, boxes, scores, labels, centre_tolerance=0.05)


def test_empty_cloud_gives_no_detections(pipeline, frames):
    frame = frames[0]
    found = pipeline.infer(frame.image, np.zeros((0, 4), np.float32), frame.calibration)
    assert len(found) == 0 and found.boxes.shape == (0, 7)
