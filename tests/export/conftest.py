"""Fixtures of the export tests: one torch thread, the tiny trained detectors, their artifact folders."""
import pytest
import torch

from v2xfusion_tools.export.artifacts import export_artifacts

from .trained import batch_camera_calibration, detector

STATIC_V = 2500


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Two cores shared with other jobs: one thread is faster and steadier for these small tensors."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def detector_a():
    return detector("a")


@pytest.fixture(scope="session")
def detector_b():
    return detector("b")


@pytest.fixture(scope="session")
def artifacts_a(detector_a, tmp_path_factory):
    """Pipeline A artifacts of the trained tiny detector (with a static-V PFE)."""
    config, model, _ = detector_a
    return export_artifacts(config, model, tmp_path_factory.mktemp("artifacts"), {"config": "tiny a"},
                            fixed_v=STATIC_V)


@pytest.fixture(scope="session")
def artifacts_b(detector_b, tmp_path_factory):
    """Pipeline B artifacts of the trained tiny detector, geometry of the batches' camera, FP16 ONNX too."""
    config, model, _ = detector_b
    return export_artifacts(config, model, tmp_path_factory.mktemp("artifacts"), {"config": "tiny b"},
                            calibration=batch_camera_calibration(config), fp16_onnx=True)
