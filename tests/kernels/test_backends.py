"""The sycl backend against the host backend (design.md §4): the SYCL code itself, compiled at run
time by the DPC++ kernel compiler from the very body headers the host build compiles, gives the
host's bits wherever the operation is exact, and the host's values within a few float ulps where
the device's math library computes sin, cos, exp or atan2. Also: choosing a backend, falling back,
and the errors a missing device gives."""
from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import v2xfusion_kernels as vk
from kernel_cases import CASE_NAMES, SYCL_DEVICE, bits, inputs, kernel_cases
from v2xfusion_kernels import backends

KERNELS = Path(__file__).resolve().parents[2] / "kernels"
# Cases whose outputs involve the device's transcendental functions (not correctly rounded in
# OpenCL): boxes of centerhead_decode (exp, atan2), IoUs of bev_iou (sin, cos).
APPROXIMATE = ("centerhead_decode", "bev_iou")
# A selector no machine of this project can match: the SYCL wheels carry no CUDA adapter.
ABSENT_DEVICE = "cuda:gpu"


@pytest.mark.parametrize("name", [n for n in CASE_NAMES if n not in APPROXIMATE])
def test_sycl_gives_the_host_bits_where_the_operation_is_exact(host_kernels, sycl_kernels, name):
    host = kernel_cases(host_kernels)[name]()
    sycl = kernel_cases(sycl_kernels)[name]()
    assert [a.shape for a in sycl] == [a.shape for a in host]
    assert bits(sycl) == bits(host), name


def test_sycl_decode_matches_host_within_ulps_of_exp_and_atan2(host_kernels, sycl_kernels):
    host_boxes, host_scores, host_labels = kernel_cases(host_kernels)["centerhead_decode"]()
    boxes, scores, labels = kernel_cases(sycl_kernels)["centerhead_decode"]()
    assert len(host_boxes) > 100
    np.testing.assert_array_equal(labels, host_labels)
    np.testing.assert_allclose(scores, host_scores, rtol=1e-6)
    np.testing.assert_array_equal(boxes[:, :3], host_boxes[:, :3])  # + and * only
    np.testing.assert_allclose(boxes[:, 3:], host_boxes[:, 3:], rtol=2e-6, atol=1e-6)


def test_sycl_bev_iou_matches_host_within_ulps_of_sin_and_cos(host_kernels, sycl_kernels):
    host = kernel_cases(host_kernels)["bev_iou"]()[0]
    sycl = kernel_cases(sycl_kernels)["bev_iou"]()[0]
    assert (host > 0.05).sum() > 10
    np.testing.assert_allclose(sycl, host, rtol=0, atol=2e-6)


def test_sycl_compiles_exactly_the_body_headers_the_host_build_compiles():
    sources = backends._sycl_module().kernel_sources()
    on_disk = {p.name: p for p in (KERNELS / "src" / "bodies").glob("*.hpp")}
    on_disk["v2x_sycl.hpp"] = KERNELS / "include" / "v2x_sycl.hpp"
    on_disk["device_kernels.cpp"] = KERNELS / "src" / "sycl" / "device_kernels.cpp"
    assert set(sources) == set(on_disk)
    for name, path in on_disk.items():
        assert sources[name] == path.read_text(), f"{name}: the embedded text differs from {path}"


def test_every_submitted_body_has_a_sycl_kernel():
    """Each V2X_FOR / V2X_FOR_T / V2X_SINGLE body of the wrappers has its free-function kernel."""
    submitted = set()
    for path in (KERNELS / "src").glob("*.[ch]pp"):
        text = path.read_text()
        submitted |= set(re.findall(r"V2X_FOR(?:_T)?\(\s*\w+,[^,]+,\s*(\w+)", text))
        submitted |= set(re.findall(r"V2X_SINGLE\(\s*\w+,\s*(\w+)", text))
    device = (KERNELS / "src" / "sycl" / "device_kernels.cpp").read_text()
    wrapped = set(re.findall(r"^V2X_KERNEL_(?:FOR|SINGLE)\((\w+),", device, re.M))
    wrapped |= set(re.findall(r"V2X_KERNEL_FOR_T\([\w#]+, \((\w+)<", device))
    assert len(submitted) > 50
    assert submitted <= wrapped, f"no kernel for {sorted(submitted - wrapped)}"


def test_kernel_bodies_are_float_only():
    """No double and no unsuffixed floating literal in device code: Arc GPUs have no native fp64,
    and a kernel that needs it fails to run there even though it runs on the OpenCL CPU device."""
    sources = dict(backends._sycl_module().kernel_sources())
    for name, text in sources.items():
        code = re.sub(r"//[^\n]*", "", text)
        assert not re.search(r"\bdouble\b", code), name
        literals = re.findall(r"(?<![\w.])(\d+\.\d*(?:[eE][-+]?\d+)?|\d+[eE][-+]?\d+)(?![\w.])", code)
        assert not literals, f"{name}: double literals {literals}"


def test_the_sycl_backend_names_its_device_and_compile_cost(sycl_kernels):
    assert sycl_kernels.name == "sycl"
    assert sycl_kernels.selector == SYCL_DEVICE
    assert "OpenCL" in sycl_kernels.device and SYCL_DEVICE in sycl_kernels.device
    assert sycl_kernels.compile_seconds > 0.0


def test_kernels_compile_once_per_process_and_device(sycl_kernels):
    start = time.perf_counter()
    again = vk.backend("sycl", SYCL_DEVICE)
    opened_in = time.perf_counter() - start
    assert again.compile_seconds == sycl_kernels.compile_seconds  # the same compiled library
    assert opened_in < sycl_kernels.compile_seconds
    x = inputs()
    np.testing.assert_array_equal(again.bev_iou(x["boxes"], x["boxes_b"]),
                                  sycl_kernels.bev_iou(x["boxes"], x["boxes_b"]))


def test_host_backend_is_the_module_functions(host_kernels):
    assert host_kernels.name == "host" and host_kernels.compile_seconds == 0.0
    assert host_kernels.fallback_reason is None
    x = inputs()
    assert bits(host_kernels.voxelize_dynamic(x["points"], [0.2, 0.2, 0.2], x["pc"])[:3]) == bits(
        vk.voxelize_dynamic(x["points"], [0.2, 0.2, 0.2], x["pc"])[:3])


def test_auto_runs_on_the_sycl_device_when_it_exists(sycl_kernels):
    chosen = vk.backend("auto", SYCL_DEVICE)
    assert chosen.name == "sycl" and chosen.device == sycl_kernels.device


def test_auto_falls_back_to_host_and_says_why(caplog):
    with caplog.at_level(logging.WARNING, logger="v2xfusion_kernels.backends"):
        chosen = vk.backend("auto", ABSENT_DEVICE)
    assert chosen.name == "host"
    assert f"no SYCL device matches '{ABSENT_DEVICE}'" in chosen.fallback_reason
    assert "opencl:0 (cpu" in chosen.fallback_reason  # the devices there are
    assert chosen.fallback_reason in caplog.text and "host backend" in caplog.text


def test_sycl_without_a_matching_device_is_a_clear_error():
    with pytest.raises(vk.SyclUnavailableError, match=rf"no SYCL device matches '{ABSENT_DEVICE}'.*opencl:0"):
        vk.backend("sycl", ABSENT_DEVICE)


@pytest.mark.parametrize("device", ["gpu", "opencl:tpu", "metal:gpu", "opencl:cpu:0"])
def test_a_malformed_selector_is_refused_by_name(device):
    with pytest.raises(ValueError, match="^device:"):
        vk.backend("sycl", device)


def test_an_unknown_backend_is_refused_by_name():
    with pytest.raises(ValueError, match="^kernels_backend: 'cuda'"):
        vk.backend("cuda")


def test_the_opencl_cpu_device_is_found_without_any_user_setup():
    """The loader points the OpenCL ICD loader at the wheel's CPU runtime itself."""
    env = {k: v for k, v in os.environ.items() if k not in ("OCL_ICD_FILENAMES", "ONEAPI_DEVICE_SELECTOR")}
    script = "import os, v2xfusion_kernels as vk; print(vk.sycl_devices()); print(os.environ['OCL_ICD_FILENAMES'])"
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    devices, icd = result.stdout.strip().splitlines()
    assert "('opencl:0', 'cpu'" in devices
    assert icd.endswith("libintelocl.so") and Path(icd).is_file()


def test_a_rulebook_serves_only_the_backend_that_built_it(sycl_kernels):
    coors = np.array([[0, 1, 1, 1], [0, 2, 2, 2]], np.int32)
    other = vk.backend("sycl", SYCL_DEVICE)
    rulebook = other.sparse_conv_rulebook(coors, (4, 4, 4), 3, 1, 1, subm=True)
    weight = np.ones((2, 3, 3, 3, 1), np.float32)
    with pytest.raises(ValueError, match="^rulebook: built by another backend"):
        sycl_kernels.sparse_conv(np.ones((2, 1), np.float32), rulebook, weight)
    # each site reads itself and its diagonal neighbour
    np.testing.assert_array_equal(other.sparse_conv(np.ones((2, 1), np.float32), rulebook, weight),
                                  np.full((2, 2), 2.0))


def _open_sycl_after(first_import: str) -> subprocess.CompletedProcess:
    code = (f"import {first_import}\nimport openvino\nimport v2xfusion_kernels as vk\n"
            f"kernels = vk.backend('sycl', {SYCL_DEVICE!r})\nprint(kernels.device)\n")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


def test_sycl_device_is_found_with_openvino_loaded_after_the_runtime_package():
    """The runtime imports OpenVINO, whose older oneTBB must not win over the OpenCL CPU runtime's."""
    done = _open_sycl_after("v2xfusion_perception")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "OpenCL" in done.stdout


def test_openvino_loaded_first_is_named_in_the_sycl_error():
    done = subprocess.run([sys.executable, "-c", "import openvino\nimport v2xfusion_kernels as vk\n"
                           f"vk.backend('sycl', {SYCL_DEVICE!r})"], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode != 0
    assert "SyclUnavailableError" in done.stderr and "import v2xfusion_kernels" in done.stderr
