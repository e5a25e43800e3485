"""Read infos pickles written by others without running their code; write ours the way mmengine does.

A pickle can name any importable callable and call it while loading (`os.system`, `builtins.eval`, ...).
Infos files (mmdet3d's kitti_infos_*.pkl, BEVHeight's dair_12hz_infos_*.pkl, our V2X infos) hold only
data: dicts, lists, strings and numbers, numpy arrays and scalars, and pyquaternion Quaternions. The
unpickler here resolves exactly the globals that such data needs and refuses every other one with a
DatasetError naming the file and the global:

* numpy arrays and scalars: `_reconstruct`, `scalar`, `_frombuffer` (protocol 5) from numpy._core or
  the numpy 1.x spelling numpy.core, `numpy.ndarray`, `numpy.dtype`;
* `_codecs.encode`: how protocol 2 (mmengine's default) carries the bytes of an array;
* builtins that are data: set, frozenset, complex (protocol 2 spells the module `__builtin__`);
* `collections.OrderedDict`;
* `pyquaternion.quaternion.Quaternion`, rebuilt from its state (the `q` array) without calling code.
"""
from __future__ import annotations

import collections
import importlib
import io
import pickle
from pathlib import Path
from typing import Any

from v2xfusion_perception.errors import DatasetError

# mmengine.dump(obj, "x.pkl") pickles with protocol 2; writing the same keeps our files byte-compatible
# with every reader of mmdet3d-era infos.
PICKLE_PROTOCOL = 2


def _numpy_global(module: str, name: str) -> Any:
    # numpy 2 keeps the numpy.core spelling of pickles from numpy 1.x readable through numpy._core, and
    # importing numpy.core.* itself is deprecated
    modern = module.replace("numpy.core.", "numpy._core.", 1)
    try:
        return getattr(importlib.import_module(modern), name)
    except ImportError:
        return getattr(importlib.import_module(module), name)


def _quaternion() -> Any:
    try:
        from pyquaternion import Quaternion
    except ImportError:
        raise DatasetError("this infos file holds pyquaternion Quaternions; install pyquaternion "
                           "(the 'tools' extra) to read it") from None
    return Quaternion


_ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy._core.multiarray", "_reconstruct"): lambda: _numpy_global("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "_reconstruct"): lambda: _numpy_global("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"): lambda: _numpy_global("numpy._core.multiarray", "scalar"),
    ("numpy.core.multiarray", "scalar"): lambda: _numpy_global("numpy.core.multiarray", "scalar"),
    ("numpy._core.numeric", "_frombuffer"): lambda: _numpy_global("numpy._core.numeric", "_frombuffer"),
    ("numpy.core.numeric", "_frombuffer"): lambda: _numpy_global("numpy.core.numeric", "_frombuffer"),
    ("numpy", "ndarray"): lambda: _numpy_global("numpy", "ndarray"),
    ("numpy", "dtype"): lambda: _numpy_global("numpy", "dtype"),
    ("_codecs", "encode"): lambda: importlib.import_module("_codecs").encode,
    ("builtins", "set"): lambda: set,
    ("builtins", "frozenset"): lambda: frozenset,
    ("builtins", "complex"): lambda: complex,
    ("collections", "OrderedDict"): lambda: collections.OrderedDict,
    ("pyquaternion.quaternion", "Quaternion"): _quaternion,
}
_MODULE_ALIASES = {"__builtin__": "builtins"}


class _InfosUnpickler(pickle.Unpickler):
    """An Unpickler whose find_class knows only _ALLOWED; the file name goes into every refusal."""

    def __init__(self, handle: io.BufferedIOBase, source: Path) -> None:
        super().__init__(handle)
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        key = (_MODULE_ALIASES.get(module, module), name)
        factory = _ALLOWED.get(key)
        if factory is None:
            raise DatasetError(
                f"{self._source}: refused to load: the pickle asks for the global {key[0]}.{name}, and infos "
                f"files may hold only numpy arrays, builtin containers and pyquaternion Quaternions (a "
                f"pickle that names other callables can run code; regenerate the file with `v2xfusion data`)")
        return factory()

    def persistent_load(self, pid: Any) -> Any:
        raise DatasetError(f"{self._source}: refused to load: the pickle uses persistent ids, which infos "
                           f"files never need")


def load_pickle(path: str | Path) -> Any:
    """Load an infos pickle through the restricted unpickler; any refusal or damage is a DatasetError."""
    path = Path(path)
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read infos pickle: {exc.strerror}") from None
    with handle:
        try:
            return _InfosUnpickler(handle, path).load()
        except DatasetError:
            raise
        except EOFError:
            raise DatasetError(f"{path}: infos pickle ends early (truncated or empty file)") from None
        except (pickle.UnpicklingError, ValueError, TypeError, AttributeError, IndexError, KeyError,
                UnicodeDecodeError) as exc:
            raise DatasetError(f"{path}: not a readable infos pickle: {exc}") from None


def write_pickle(path: str | Path, value: Any) -> None:
    """Write `value` with PICKLE_PROTOCOL, through a temporary file so a crash never leaves half a file."""
    path = Path(path)
    temporary = path.with_name(path.name + ".partial")
    try:
        with temporary.open("wb") as handle:
            pickle.dump(value, handle, protocol=PICKLE_PROTOCOL)
        temporary.replace(path)
    except OSError as exc:
        raise DatasetError(f"{path}: cannot write infos pickle: {exc.strerror}") from None
