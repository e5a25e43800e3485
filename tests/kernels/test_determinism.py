"""Every kernel gives the same bits on every run (design.md §4): on the host backend whatever the
number of threads, on the sycl backend run after run (work-groups scheduled by the device runtime)."""
from __future__ import annotations

import pytest

import v2xfusion_kernels as vk
from kernel_cases import CASE_NAMES, bits, kernel_cases

THREADS = (1, 2, 3, 4)


@pytest.mark.parametrize("name", CASE_NAMES)
def test_host_kernel_is_bit_identical_across_runs_and_thread_counts(host_kernels, name):
    run = kernel_cases(host_kernels)[name]
    try:
        vk.set_num_threads(1)
        first = bits(run())
        for threads in THREADS:
            vk.set_num_threads(threads)
            assert vk.get_num_threads() == threads
            for _ in range(2):
                assert bits(run()) == first, f"{name} differs with {threads} threads"
    finally:
        vk.set_num_threads(0)


@pytest.mark.parametrize("name", CASE_NAMES)
def test_sycl_kernel_is_bit_identical_across_runs(sycl_kernels, name):
    run = kernel_cases(sycl_kernels)[name]
    first = bits(run())
    for _ in range(3):
        assert bits(run()) == first, f"{name} differs between runs on {sycl_kernels.device}"
