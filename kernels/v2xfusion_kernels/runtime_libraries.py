"""Loading the SYCL side's oneTBB before OpenVINO's, so that one libtbb.so.12 serves both.

libintelocl.so, the OpenCL CPU device of the intel-opencl-rt wheel, needs the oneTBB of the tbb wheel
(2022.x); OpenVINO ships an older libtbb.so.12. Whichever is loaded first serves the whole process
(same soname): with OpenVINO's, the OpenCL CPU runtime fails to load and the SYCL runtime finds no
device. oneTBB keeps its ABI backward compatible, so the newer one loaded first serves OpenVINO too.
`import v2xfusion_kernels` does it; v2xfusion_perception imports the kernels before OpenVINO.
"""
from __future__ import annotations

import ctypes
import importlib.metadata
import sys
from pathlib import Path

TBB_SONAME = "libtbb.so.12"


def sycl_tbb_library() -> Path | None:
    """libtbb.so.12 of the tbb wheel the OpenCL CPU runtime was built against, if both are installed."""
    try:
        importlib.metadata.distribution("intel-opencl-rt")
        files = importlib.metadata.distribution("tbb").files or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for f in files:
        if f.name == TBB_SONAME:
            path = Path(str(f.locate())).resolve()
            if path.is_file():
                return path
    candidate = Path(sys.prefix) / "lib" / TBB_SONAME
    return candidate.resolve() if candidate.is_file() else None


def preload_tbb() -> Path | None:
    """Load the tbb wheel's oneTBB process-wide unless OpenVINO was imported first; returns what was loaded."""
    if "openvino" in sys.modules:
        return None
    library = sycl_tbb_library()
    if library is None:
        return None
    try:
        ctypes.CDLL(str(library), mode=ctypes.RTLD_GLOBAL)
    except OSError:
        return None
    return library
