"""Every kernel test runs on both backends: host (OpenMP) and sycl (the same bodies compiled at run
time by the DPC++ kernel compiler, on the OpenCL CPU device every machine with the
intel-opencl-rt wheel has). The sycl kernels compile once per test session."""
from __future__ import annotations

import pytest

import v2xfusion_kernels as vk
from kernel_cases import SYCL_DEVICE


@pytest.fixture(scope="session")
def host_kernels():
    return vk.backend("host")


@pytest.fixture(scope="session")
def sycl_kernels():
    return vk.backend("sycl", SYCL_DEVICE)


@pytest.fixture(scope="session", params=["host", "sycl"])
def kernels(request):
    """The kernels of one backend; tests taking it run once per backend."""
    return request.getfixturevalue(f"{request.param}_kernels")
