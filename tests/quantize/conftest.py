"""Fixtures of the quantization tests: one torch thread, fresh artifact folders of the tiny trained
detectors of tests/export (quantization writes into them), a small synthetic KITTI set."""
import pytest
import torch

from data.synthetic_sets import make_kitti_set
from export.trained import batch_camera_calibration, detector
from v2xfusion_tools.export.artifacts import export_artifacts

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


@pytest.fixture(scope="module")
def artifacts_a(detector_a, tmp_path_factory):
    config, model, _ = detector_a
    return export_artifacts(config, model, tmp_path_factory.mktemp("quantize_a"), {"config": "tiny a"},
                            fixed_v=STATIC_V)


@pytest.fixture(scope="module")
def artifacts_b(detector_b, tmp_path_factory):
    config, model, _ = detector_b
    return export_artifacts(config, model, tmp_path_factory.mktemp("quantize_b"), {"config": "tiny b"},
                            calibration=batch_camera_calibration(config))


@pytest.fixture(scope="session")
def kitti_root(tmp_path_factory):
    """Eight synthetic KITTI frames through kitti-infos and kitti-to-v2x (val: four)."""
    return make_kitti_set(tmp_path_factory.mktemp("quantize_kitti"), 8)
