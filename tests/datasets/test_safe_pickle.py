"""The restricted unpickler: infos data loads at every protocol; anything that can run code is refused."""
import collections
import functools
import os
import pickle

import numpy as np
import pytest
from pyquaternion import Quaternion

from v2xfusion_perception.errors import DatasetError
from v2xfusion_tools.datasets.safe_pickle import load_pickle, write_pickle


def _infos_like() -> dict:
    return {
        "floats": np.arange(12, dtype=np.float32).reshape(3, 4),
        "ints": np.array([-1, 0, 7], dtype=np.int64),
        "flags": np.array([True, False]),
        "names": np.array(["Car", "DontCare"]),
        "scalar": np.int32(375),
        "float_scalar": np.float64(0.25),
        "rotation": Quaternion(axis=[0.0, 0.0, 1.0], angle=0.7),
        "ordered": collections.OrderedDict([("b", 1), ("a", 2)]),
        "set": {1, 2}, "frozen": frozenset({"x"}), "complex": 1 + 2j,
        "nested": [{"token": "image/000001.jpg", "size": np.array([1.6, 4.0, 1.5])}],
    }


def _assert_same(loaded: dict, original: dict) -> None:
    assert loaded.keys() == original.keys()
    for key, value in original.items():
        if isinstance(value, np.ndarray):
            assert loaded[key].dtype == value.dtype and np.array_equal(loaded[key], value)
        elif isinstance(value, Quaternion):
            assert isinstance(loaded[key], Quaternion) and np.allclose(loaded[key].elements, value.elements)
        elif key == "nested":
            assert loaded[key][0]["token"] == value[0]["token"]
            assert np.array_equal(loaded[key][0]["size"], value[0]["size"])
        else:
            assert loaded[key] == value and type(loaded[key]) is type(value)


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_infos_data_loads_at_every_protocol(tmp_path, protocol):
    path = tmp_path / "infos.pkl"
    original = _infos_like()
    path.write_bytes(pickle.dumps(original, protocol=protocol))
    _assert_same(load_pickle(path), original)


def test_numpy_1x_spelling_of_array_globals_is_read(tmp_path):
    # numpy 1.x wrote numpy.core.multiarray; protocol 2 names globals as text lines, so swap the spelling
    raw = pickle.dumps({"a": np.array([1.5, -2.0]), "s": np.float32(3.0)}, protocol=2)
    assert b"numpy._core.multiarray" in raw
    path = tmp_path / "old.pkl"
    path.write_bytes(raw.replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))
    loaded = load_pickle(path)
    assert np.array_equal(loaded["a"], [1.5, -2.0]) and loaded["s"] == np.float32(3.0)


def test_writer_uses_protocol_2_and_reads_back(tmp_path):
    path = tmp_path / "ours.pkl"
    original = _infos_like()
    write_pickle(path, original)
    assert path.read_bytes()[:2] == b"\x80\x02"
    assert not (tmp_path / "ours.pkl.partial").exists()
    _assert_same(load_pickle(path), original)


class _RunsCommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class _CallsEval:
    def __reduce__(self):
        return eval, ("1 + 1",)


class _UsesGetattr:
    def __reduce__(self):
        return getattr, ("text", "upper")


class _PlainObject:
    pass


@pytest.mark.parametrize("make, refused", [
    (lambda tmp: _RunsCommand(tmp / "ran"), f"{os.system.__module__}.system"),
    (lambda tmp: _CallsEval(), "builtins.eval"),
    (lambda tmp: _UsesGetattr(), "builtins.getattr"),
    (lambda tmp: functools.partial(print, "hi"), "functools.partial"),
    (lambda tmp: _PlainObject(), "_PlainObject"),
    (lambda tmp: [{"ann": collections.Counter(a=1)}], "collections.Counter"),
])
def test_a_pickle_naming_a_callable_or_class_is_refused(tmp_path, make, refused):
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(make(tmp_path), protocol=2))
    with pytest.raises(DatasetError) as error:
        load_pickle(path)
    message = str(error.value)
    assert str(path) in message and refused in message and "refused" in message
    assert not (tmp_path / "ran").exists()


def test_persistent_ids_are_refused(tmp_path):
    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            return "external" if obj == "secret" else None

    path = tmp_path / "persistent.pkl"
    with path.open("wb") as handle:
        Pickler(handle, protocol=2).dump(["secret"])
    with pytest.raises(DatasetError, match="persistent"):
        load_pickle(path)


def test_truncated_missing_and_foreign_files_are_dataset_errors(tmp_path):
    path = tmp_path / "cut.pkl"
    path.write_bytes(pickle.dumps({"a": np.zeros(100)}, protocol=2)[:-40])
    with pytest.raises(DatasetError, match="cut.pkl"):
        load_pickle(path)
    with pytest.raises(DatasetError, match="no_such.pkl"):
        load_pickle(tmp_path / "no_such.pkl")
    text = tmp_path / "text.pkl"
    text.write_text("not a pickle at all")
    with pytest.raises(DatasetError, match="text.pkl"):
        load_pickle(text)
