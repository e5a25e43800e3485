"""Where the installed OpenVINO extension library is (custom ops BevPoolV2, SparseConvolution, SparseToDense).

Load it with `core.add_extension(str(library_path()))` before reading a unified model (Pipeline B):
its ONNX nodes of the `v2xfusion` domain and its IR layers then convert and run on the CPU device.
"""
from __future__ import annotations

from pathlib import Path

__all__ = ["DOMAIN", "LIBRARY_NAME", "OPS", "library_path"]

LIBRARY_NAME = "libv2xfusion_ov_extension.so"
DOMAIN = "v2xfusion"
OPS = ("BevPoolV2", "SparseConvolution", "SparseToDense")


def library_path() -> Path:
    """Absolute path of the library inside this installed package.

    Raises FileNotFoundError (naming the path and the install command) when the package was installed
    without its library.
    """
    path = Path(__file__).resolve().parent / LIBRARY_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the OpenVINO extension library is missing; build it with "
                                f"`pip install --no-build-isolation ./ov_extension`")
    return path
