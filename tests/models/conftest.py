"""Fixtures of the model tests: one torch thread, and every pipeline x preset as a tiny config."""
import pytest
import torch

from .batches import PIPELINES, PRESETS, load_fixture


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Two cores shared with other jobs: OpenMP's spinning threads made scatter-adds 100x slower when
    the machine was oversubscribed; one thread is faster and steadier for these small tensors."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(params=[(p, s) for p in PIPELINES for s in PRESETS], ids=lambda ps: f"{ps[0]}-{ps[1]}")
def tiny_config(request) -> dict:
    return load_fixture(*request.param)
