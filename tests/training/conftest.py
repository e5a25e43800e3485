"""Fixtures of the training tests: one torch thread, a synthetic KITTI set (train 2, val 2) and a DAIR-V2X-I
set per session."""
import pytest
import torch

from data.synthetic_sets import make_kitti_set, make_v2x_set


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Two cores shared with other jobs: one thread is faster and steadier for these small tensors."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def kitti_root(tmp_path_factory):
    """Four synthetic KITTI frames (train 2, val 2) through kitti-infos and kitti-to-v2x."""
    return make_kitti_set(tmp_path_factory.mktemp("training_kitti"), 4)


@pytest.fixture(scope="session")
def v2x_root(tmp_path_factory):
    """Two synthetic DAIR-V2X-I frames through dair-prepare (the native folder; the mirror beside it)."""
    return make_v2x_set(tmp_path_factory.mktemp("training_v2x"), 2)
