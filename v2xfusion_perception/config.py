"""Load YAML configs with `_base_` inheritance and validate every key against one schema.

A config file may name one or more parent files in `_base_` (paths relative to the file). Parents are
merged first, in order, then the file itself: mappings merge key by key, anything else (numbers, lists,
strings) replaces. After merging, every key is checked against `SCHEMA`; an unknown or mistyped key is
a `ConfigError` naming the file that wrote it and the full key path (`geometry.pc_range`). The result is
plain nested dicts: every number the models, the export and the runtime use comes from here
(style.md §4), never re-typed in code.

The `model`, `data`, `train` sections are free-form here: their schema is the signature of what
builds them, so `v2xfusion_tools` validates them where they are built, with the same error type.
"""
from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from v2xfusion_perception.errors import ConfigError

PRESETS = ("kitti", "v2x")
CONFIG_ROOT = Path(__file__).resolve().parent.parent / "configs"


@dataclass(frozen=True)
class Scalar:
    """A single value of one type (int is accepted where float is asked for)."""

    kind: type
    choices: tuple = ()
    optional: bool = False

    def check(self, value: Any) -> str | None:
        if self.kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, self.kind) or (self.kind is int and isinstance(value, bool)):
            return f"expected {self.kind.__name__}, got {type(value).__name__} {value!r}"
        if self.kind is float and not math.isfinite(value):
            return f"expected a finite number, got {value!r}"
        if self.choices and value not in self.choices:
            return f"expected one of {', '.join(map(str, self.choices))}, got {value!r}"
        return None


@dataclass(frozen=True)
class Vector:
    """A list of numbers (or strings) of a fixed or minimum length."""

    kind: type
    length: int | None = None
    min_length: int = 0
    optional: bool = False

    def check(self, value: Any) -> str | None:
        if not isinstance(value, list):
            return f"expected a list, got {type(value).__name__} {value!r}"
        if self.length is not None and len(value) != self.length:
            return f"expected {self.length} values, got {len(value)}"
        if len(value) < self.min_length:
            return f"expected at least {self.min_length} values, got {len(value)}"
        for i, item in enumerate(value):
            problem = Scalar(self.kind).check(item)
            if problem:
                return f"item {i}: {problem}"
        return None


@dataclass(frozen=True)
class Section:
    """A mapping with known keys; `optional` sections may be absent, their keys then are not checked."""

    fields: dict = field(default_factory=dict)
    optional: bool = False


@dataclass(frozen=True)
class FreeForm:
    """A mapping validated by the code that builds it (model, data pipeline, training schedule)."""

    optional: bool = True


_F = Scalar(float)
_I = Scalar(int)

SCHEMA = Section({
    "preset": Scalar(str, PRESETS),
    "class_names": Vector(str, min_length=1),
    "kernels_backend": Scalar(str, ("host", "sycl", "auto")),
    "kernels_device": Scalar(str),
    "seed": _I,
    "dataset_root": Scalar(str),
    "dataset_kitti_root": Scalar(str),
    "geometry": Section({
        "image_size": Vector(int, 2),
        "feature_size": Vector(int, 2),
        "bev_size": Vector(int, 2),
        "pc_range": Vector(float, 6),
        "post_center_range": Vector(float, 6),
        "voxel_size": Vector(float, 3),
        "out_size_factor": _I,
        "max_voxels": _I,
        "max_points": _I,
        "depth_mode": Scalar(str, ("depth", "height")),
        "dbound": Vector(float, 3),
        "xbound": Vector(float, 3),
        "ybound": Vector(float, 3),
        "zbound": Vector(float, 3),
        "camera_channels": _I,
        "camera_downsample": _I,
    }),
    "postprocess": Section({
        "score_threshold": _F,
        "pre_max_size": _I,
        "post_max_size": _I,
        "nms_type": Scalar(str, ("rotate", "circle")),
        "nms_iou_threshold": _F,
        "circle_radius": Vector(float, min_length=1),
    }),
    "synthetic": Section({
        "image_native_size": Vector(int, 2),
        "frame_rate": _F,
        "lidar": Section({
            "beams": _I,
            "fov_up_deg": _F,
            "fov_down_deg": _F,
            "azimuth_steps": _I,
            "horizontal_fov_deg": _F,
            "max_range": _F,
            "mount_height": _F,
            "range_noise": _F,
            "dropout": _F,
        }),
        "camera": Section({
            "focal": _F,
            "mount_height": _F,
            "lidar_to_camera_offset": Vector(float, 3),
            "pitch_deg": _F,
        }),
        "scene": Section({
            "x_range": Vector(float, 2),
            "y_range": Vector(float, 2),
            "objects_per_frame": Vector(int, 2),
            "class_weights": Vector(float, min_length=1),
        }),
        "split_fractions": Vector(float, 2),
    }, optional=True),
    "model": FreeForm(),
    "data": FreeForm(),
    "train": FreeForm(),
})


def load_config(path: str | Path) -> dict:
    """Read `path` with its `_base_` chain, validate it, and return nested plain dicts.

    Raises ConfigError naming the file and key for a missing file, bad YAML, an inheritance cycle,
    an unknown key (with the closest known key as a hint), a wrong type, or inconsistent geometry.
    """
    origin: dict[str, Path] = {}
    merged = _load_tree(Path(path), origin, ())
    _validate(merged, SCHEMA, "", origin, Path(path))
    _check_geometry(merged, origin, Path(path))
    return merged


def preset_config_path(preset: str) -> Path:
    """The preset file for a preset name; an unknown name is a ConfigError listing the known ones."""
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}: choose one of {', '.join(PRESETS)}")
    return CONFIG_ROOT / "presets" / f"{preset}.yaml"


def _load_tree(path: Path, origin: dict[str, Path], chain: tuple[Path, ...]) -> dict:
    path = path.resolve()
    if path in chain:
        cycle = " -> ".join(str(p) for p in (*chain, path))
        raise ConfigError(f"{path}: _base_ inheritance cycle: {cycle}")
    if not path.is_file():
        where = f" (named in {chain[-1]})" if chain else ""
        raise ConfigError(f"{path}: config file not found{where}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}:{line} malformed YAML: {getattr(exc, 'problem', exc)}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys, got {type(data).__name__}")
    bases = data.pop("_base_", [])
    if isinstance(bases, str):
        bases = [bases]
    if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
        raise ConfigError(f"{path}: _base_ must be a file path or a list of file paths")
    merged: dict = {}
    for base in bases:
        _merge(merged, _load_tree(path.parent / base, origin, (*chain, path)), "", origin, None)
    _merge(merged, data, "", origin, path)
    return merged


def _merge(dst: dict, src: dict, prefix: str, origin: dict[str, Path], source: Path | None) -> None:
    """Deep-merge `src` into `dst`; record which file set each key (source None: keep src's record)."""
    for key, value in src.items():
        key_path = f"{prefix}{key}"
        if source is not None:
            origin[key_path] = source
        if isinstance(value, dict) and isinstance(dst.get(key), dict):
            _merge(dst[key], value, key_path + ".", origin, source)
        else:
            dst[key] = _copy(value)
            if source is not None and isinstance(value, dict):
                _record(value, key_path + ".", origin, source)


def _record(value: dict, prefix: str, origin: dict[str, Path], source: Path) -> None:
    for key, item in value.items():
        origin[f"{prefix}{key}"] = source
        if isinstance(item, dict):
            _record(item, f"{prefix}{key}.", origin, source)


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _where(key_path: str, origin: dict[str, Path], top: Path) -> Path:
    while key_path:
        if key_path in origin:
            return origin[key_path]
        key_path = key_path.rpartition(".")[0]
    return top.resolve()


def _validate(value: dict, schema: Section, prefix: str, origin: dict[str, Path], top: Path) -> None:
    for key, item in value.items():
        key_path = f"{prefix}{key}"
        spec = schema.fields.get(key) if isinstance(key, str) else None
        if spec is None:
            hint = difflib.get_close_matches(str(key), list(schema.fields), n=1)
            suggestion = f" (did you mean '{prefix}{hint[0]}'?)" if hint else ""
            raise ConfigError(f"{_where(key_path, origin, top)}: unknown key {key_path!r}{suggestion}")
        if isinstance(spec, (Section, FreeForm)):
            if not isinstance(item, dict):
                raise ConfigError(f"{_where(key_path, origin, top)}: {key_path!r} must be a mapping, "
                                  f"got {type(item).__name__}")
            if isinstance(spec, Section):
                _validate(item, spec, key_path + ".", origin, top)
            continue
        problem = spec.check(item)
        if problem:
            raise ConfigError(f"{_where(key_path, origin, top)}: {key_path!r}: {problem}")
    for key, spec in schema.fields.items():
        if key not in value and not spec.optional:
            raise ConfigError(f"{top.resolve()}: missing key {prefix}{key!r} (after _base_ inheritance)")


def _check_geometry(cfg: dict, origin: dict[str, Path], top: Path) -> None:
    """The grid sizes must agree: pc_range / voxel_size / out_size_factor == bev_size (design.md §2)."""
    geo = cfg["geometry"]
    pc, vs, factor = geo["pc_range"], geo["voxel_size"], geo["out_size_factor"]
    for axis, name in ((0, "x"), (1, "y")):
        extent = pc[axis + 3] - pc[axis]
        if extent <= 0 or vs[axis] <= 0:
            raise ConfigError(f"{_where('geometry.pc_range', origin, top)}: geometry.pc_range / voxel_size: "
                              f"empty or negative {name} extent")
        cells = extent / vs[axis] / factor
        if abs(cells - geo["bev_size"][axis]) > 1e-6:
            raise ConfigError(
                f"{_where('geometry.bev_size', origin, top)}: geometry.bev_size[{axis}] = "
                f"{geo['bev_size'][axis]} disagrees with pc_range / voxel_size / out_size_factor = "
                f"{extent:g} / {vs[axis]:g} / {factor} = {cells:g}")
    if len(cfg["class_names"]) != len(cfg.get("postprocess", {}).get("circle_radius", cfg["class_names"])):
        raise ConfigError(f"{_where('postprocess.circle_radius', origin, top)}: postprocess.circle_radius "
                          f"needs one radius per class ({len(cfg['class_names'])})")
