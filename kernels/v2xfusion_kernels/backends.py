"""Choosing the kernels' backend once, when a pipeline is built (design.md §4): host or sycl.

* ``host``: the kernels compiled with OpenMP for this CPU (module ``_core``), always available.
* ``sycl``: the same kernel bodies compiled at run time by the DPC++ kernel compiler of the
  intel-sycl-rt wheel for a SYCL device (module ``_sycl``), picked by a selector string
  ``backend:type`` or ``backend:index``: ``opencl:cpu`` (the OpenCL CPU runtime of the
  intel-opencl-rt wheel), ``level_zero:gpu`` (an Intel GPU), ``*:gpu``, ``opencl:0``. The first
  kernels object opened on a device compiles the kernels for it (seconds, ``compile_seconds``);
  later ones in the same process reuse them.
* ``auto``: sycl when the selected device exists, else host; ``fallback_reason`` on the returned
  host kernels says why, and the reason is logged.

Both return objects with the same kernel methods (``voxelize_hard``, ``bev_pool``, ...) as the
module-level functions of ``v2xfusion_kernels``, which are the host backend.
"""
from __future__ import annotations

import importlib.metadata
import logging
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Union

from ._core import HostKernels

if TYPE_CHECKING:
    from ._sycl import SyclKernels

    Kernels = Union[HostKernels, SyclKernels]

__all__ = ["BACKENDS", "DEFAULT_SYCL_DEVICE", "SyclUnavailableError", "backend", "sycl_devices"]

BACKENDS = ("host", "sycl", "auto")
# No device named: the first GPU (Level Zero or OpenCL), so that ``auto`` runs on a GPU where
# there is one and on the host backend elsewhere. Name "opencl:cpu" for SYCL on the CPU.
DEFAULT_SYCL_DEVICE = "*:gpu"

_log = logging.getLogger(__name__)


class SyclUnavailableError(RuntimeError):
    """The sycl backend cannot run here: no device matches the selector, or no SYCL runtime."""


def _opencl_cpu_runtime() -> Path | None:
    """libintelocl.so of the intel-opencl-rt wheel (the OpenCL CPU device), if installed."""
    try:
        files = importlib.metadata.distribution("intel-opencl-rt").files or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for f in files:
        if f.name == "libintelocl.so":
            return Path(str(f.locate())).resolve()
    candidate = Path(sys.prefix) / "lib" / "libintelocl.so"
    return candidate if candidate.is_file() else None


def _sycl_module() -> ModuleType:
    """The _sycl extension module, with the OpenCL ICD loader pointed at the wheel's CPU runtime.

    The wheel installs no /etc/OpenCL/vendors entry; OCL_ICD_FILENAMES names the runtime instead.
    It is set here, before the SYCL runtime first loads OpenCL, unless the user has set it.
    """
    runtime = _opencl_cpu_runtime()
    if runtime is not None and "OCL_ICD_FILENAMES" not in os.environ:
        os.environ["OCL_ICD_FILENAMES"] = str(runtime)
    try:
        from . import _sycl
    except ImportError as e:
        raise SyclUnavailableError(
            f"the sycl backend is not installed ({e}); install the SYCL runtime wheels "
            "(pip install -c constraints.txt intel-sycl-rt intel-cmplr-lib-ur intel-opencl-rt) and "
            "rebuild the kernels (pip install --no-build-isolation ./kernels)"
        ) from None
    return _sycl


def _openvino_tbb_first() -> bool:
    from . import PRELOADED_TBB
    from .runtime_libraries import sycl_tbb_library

    return PRELOADED_TBB is None and sycl_tbb_library() is not None and "openvino" in sys.modules


def sycl_devices() -> list[tuple[str, str, str, str]]:
    """Every SYCL device the runtime finds: (selector ``backend:index``, type, name, platform)."""
    sycl = _sycl_module()
    try:
        return sycl.devices()
    except sycl.DeviceNotFoundError as e:
        raise SyclUnavailableError(str(e)) from None


def _open_sycl(device: str) -> SyclKernels:
    sycl = _sycl_module()
    try:
        return sycl.SyclKernels(device)
    except sycl.DeviceNotFoundError as e:
        hint = ""
        if "opencl" in device and _openvino_tbb_first():
            hint = ("; openvino was imported before v2xfusion_kernels and its older oneTBB keeps the OpenCL CPU "
                    "runtime from loading: import v2xfusion_kernels (or v2xfusion_perception) first")
        raise SyclUnavailableError(f"{e}{hint}") from None


def backend(name: str = "host", device: str | None = None) -> Kernels:
    """The kernels on backend `name` ("host", "sycl" or "auto"), on SYCL device `device`.

    device: a SYCL selector (see the module docstring), None for DEFAULT_SYCL_DEVICE; ignored by
    host. Raises ValueError for an unknown name or a malformed selector, SyclUnavailableError
    when name is "sycl" and the device or the SYCL runtime is missing.
    """
    if name not in BACKENDS:
        raise ValueError(f"kernels_backend: '{name}' is not one of {', '.join(BACKENDS)}")
    if name == "host":
        return HostKernels()
    selector = DEFAULT_SYCL_DEVICE if device is None else device
    if name == "sycl":
        return _open_sycl(selector)
    try:
        return _open_sycl(selector)
    except SyclUnavailableError as e:
        _log.warning("kernels_backend auto: %s; running the kernels on the host backend", e)
        return HostKernels(fallback_reason=str(e))
