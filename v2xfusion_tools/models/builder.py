"""build_model: a validated BEVFusion from a config's `model`, `geometry`, `postprocess` sections.

The schema of the `model` section is the constructors' signatures: each module mapping names its
class with `type` and passes the constructor's keyword arguments; an unknown key, a wrong type, a
missing argument or an inconsistent channel count is a ConfigError naming the full key path
(`model.heads.object.tasks[0].num_clas`). Geometry is never written in the model section: the
arguments listed in `GEOMETRY_ARGUMENTS` are filled from the preset (style.md §4) and setting one
in `model` is an error that says where it comes from.
"""
from __future__ import annotations

import dataclasses
import difflib
import inspect
import math
import types
import typing
from collections.abc import Mapping as AbcMapping, Sequence as AbcSequence
from typing import Any, Literal, Mapping, Union

from torch import nn

from v2xfusion_perception.errors import ConfigError
from v2xfusion_tools.models.bevfusion import BEVFusion
from v2xfusion_tools.models.camera.lss_fpn import GeneralizedLSSFPN
from v2xfusion_tools.models.camera.resnet import ResNet
from v2xfusion_tools.models.camera.vtransform import DepthLSSTransform, LSSTransform
from v2xfusion_tools.models.decoder.second import SECOND
from v2xfusion_tools.models.decoder.second_fpn import SECONDFPN
from v2xfusion_tools.models.fuser import ConvFuser
from v2xfusion_tools.models.heads.centerhead import CenterHead
from v2xfusion_tools.models.heads.decode import PostProcess
from v2xfusion_tools.models.heads.targets import BevGeometry
from v2xfusion_tools.models.lidar.pillar_encoder import (PillarFeatureNet, PointPillarsEncoder,
                                                         PointPillarsScatter)
from v2xfusion_tools.models.lidar.sparse_encoder import SparseEncoder
from v2xfusion_tools.models.lidar.voxelize import DynamicVoxelizer, PillarVoxelizer, voxel_grid_shape

# which classes each slot of the model section accepts (`type` picks one)
SLOTS = {
    "encoders.camera.backbone": (ResNet,),
    "encoders.camera.neck": (GeneralizedLSSFPN,),
    "encoders.camera.vtransform": (LSSTransform, DepthLSSTransform),
    "encoders.lidar.backbone": (PointPillarsEncoder, SparseEncoder),
    "fuser": (ConvFuser,),
    "decoder.backbone": (SECOND,),
    "decoder.neck": (SECONDFPN,),
    "heads.object": (CenterHead,),
}

# constructor argument -> the preset key it is derived from (documentation and error messages)
GEOMETRY_ARGUMENTS = {
    LSSTransform: {"out_channels": "geometry.camera_channels", "image_size": "geometry.image_size",
                   "feature_size": "geometry.feature_size", "xbound": "geometry.xbound",
                   "ybound": "geometry.ybound", "zbound": "geometry.zbound", "dbound": "geometry.dbound",
                   "depth_mode": "geometry.depth_mode"},
    PillarFeatureNet: {"voxel_size": "geometry.voxel_size * out_size_factor (x, y), pc_range height (z)",
                       "point_cloud_range": "geometry.pc_range"},
    PointPillarsScatter: {"output_shape": "geometry.bev_size"},
    SparseEncoder: {"sparse_shape": "geometry.pc_range / geometry.voxel_size (+1 in z)"},
    CenterHead: {"class_names": "class_names",
                 "geometry": "geometry.pc_range / voxel_size / out_size_factor / bev_size",
                 "postprocess": "postprocess and geometry.post_center_range"},
}
GEOMETRY_ARGUMENTS[DepthLSSTransform] = GEOMETRY_ARGUMENTS[LSSTransform]


def build_model(config: Mapping[str, Any]) -> BEVFusion:
    """BEVFusion from a loaded config (v2xfusion_perception.config.load_config): reads `model`,
    `geometry`, `postprocess` and `class_names`. Raises ConfigError naming the key at fault."""
    for section in ("model", "geometry", "postprocess", "class_names"):
        if section not in config:
            raise ConfigError(f"missing section '{section}': build_model needs the preset and a model "
                              f"section")
    model_cfg = config["model"]
    _check_keys(model_cfg, "model", {"encoders": True, "fuser": False, "decoder": True, "heads": True})
    injected = _geometry_values(config)
    encoders_cfg = model_cfg["encoders"]
    _check_keys(encoders_cfg, "model.encoders", {"camera": False, "lidar": False})
    encoders = nn.ModuleDict()
    bev_channels, camera_level = [], 0
    if encoders_cfg.get("camera") is not None:
        camera, camera_level = _build_camera(encoders_cfg["camera"], config, injected)
        encoders["camera"] = camera
        bev_channels.append(camera["vtransform"].bev_channels)
    if encoders_cfg.get("lidar") is not None:
        encoders["lidar"] = _build_lidar(encoders_cfg["lidar"], config, injected)
        bev_channels.append(encoders["lidar"]["backbone"].out_channels)
    if not encoders:
        raise ConfigError("model.encoders: needs a camera or a lidar encoder (or both)")
    fuser = None
    if model_cfg.get("fuser") is not None:
        fuser = _build_slot(model_cfg["fuser"], "fuser", injected)
        _expect(fuser.in_channels, bev_channels, "model.fuser.in_channels",
                "the encoders' BEV channels (camera first)")
        trunk_channels = fuser.out_channels
    elif len(bev_channels) > 1:
        raise ConfigError("model.fuser: two encoders need a fuser")
    else:
        trunk_channels = bev_channels[0]
    trunk_source = "model.fuser.out_channels" if fuser is not None else "the encoder's BEV channels"
    decoder = _build_decoder(model_cfg["decoder"], trunk_channels, trunk_source, injected)
    _check_keys(model_cfg["heads"], "model.heads", {"object": True})
    head = _build_slot(model_cfg["heads"]["object"], "heads.object", injected)
    _expect(head.shared_conv.conv.in_channels, decoder["neck"].out_channels, "model.heads.object.in_channels",
            "the decoder neck's output channels")
    return BEVFusion(encoders, fuser, decoder, nn.ModuleDict({"object": head}), camera_level)


def config_section(cls: type, value: Any, path: str) -> Any:
    """The dataclass `cls` from a free-form config mapping (the `data` / `train` sections), checked as
    the model section is: an unknown, missing or mistyped key is a ConfigError naming its full path."""
    return _convert(value, cls, path, {})


def _geometry_values(config: Mapping[str, Any]) -> dict[type, dict[str, Any]]:
    """Constructor arguments derived from the preset, per class."""
    geo, post = config["geometry"], config["postprocess"]
    pc_range, voxel, factor = list(geo["pc_range"]), list(geo["voxel_size"]), int(geo["out_size_factor"])
    camera = {"out_channels": geo["camera_channels"], "image_size": geo["image_size"],
              "feature_size": geo["feature_size"], "xbound": geo["xbound"], "ybound": geo["ybound"],
              "zbound": geo["zbound"], "dbound": geo["dbound"], "depth_mode": geo["depth_mode"]}
    nx, ny, nz = voxel_grid_shape(pc_range, voxel)
    return {
        LSSTransform: camera,
        DepthLSSTransform: camera,
        PillarFeatureNet: {"voxel_size": [voxel[0] * factor, voxel[1] * factor, pc_range[5] - pc_range[2]],
                           "point_cloud_range": pc_range},
        PointPillarsScatter: {"output_shape": list(geo["bev_size"])},
        # one more z cell than the grid, as SECOND / BEVFusion (41 for 40), so the strided z convs
        # reduce it to an odd size
        SparseEncoder: {"sparse_shape": [nx, ny, nz + 1]},
        CenterHead: {
            "class_names": list(config["class_names"]),
            "geometry": BevGeometry(tuple(pc_range), (voxel[0], voxel[1]), factor, tuple(geo["bev_size"])),
            "postprocess": PostProcess(
                float(post["score_threshold"]), int(post["pre_max_size"]), int(post["post_max_size"]),
                post["nms_type"], float(post["nms_iou_threshold"]), tuple(post["circle_radius"]),
                tuple(geo["post_center_range"])),
        },
    }


def _build_camera(cfg: Any, config: Mapping[str, Any], injected: dict) -> tuple[nn.ModuleDict, int]:
    path = "encoders.camera"
    _check_keys(cfg, f"model.{path}", {"backbone": True, "neck": True, "vtransform": True})
    geo = config["geometry"]
    stride = int(geo["camera_downsample"])
    for axis in (0, 1):
        if geo["image_size"][axis] != geo["feature_size"][axis] * stride:
            raise ConfigError(f"geometry.feature_size[{axis}] = {geo['feature_size'][axis]} is not "
                              f"geometry.image_size[{axis}] / camera_downsample = "
                              f"{geo['image_size'][axis]} / {stride}")
    start, end, count = geo["dbound"]
    if count != int(count) or count < 1 or end <= start or (geo["depth_mode"] == "depth" and start <= 0):
        raise ConfigError(f"geometry.dbound: expected (start, end, count) with start < end, an integer "
                          f"count >= 1 and, for metric depth, start > 0; got {list(geo['dbound'])}")
    backbone = _build_slot(cfg["backbone"], f"{path}.backbone", injected)
    neck = _build_slot(cfg["neck"], f"{path}.neck", injected)
    _expect(neck.in_channels, backbone.out_channels, f"model.{path}.neck.in_channels",
            "the backbone's output channels")
    # the neck's output i keeps input i's stride; the view transform takes the one at camera_downsample
    strides = backbone.out_strides[:len(neck.in_channels) - 1]
    if stride not in strides:
        raise ConfigError(f"model.{path}.backbone.out_indices: the neck's outputs have strides {strides}, "
                          f"none is geometry.camera_downsample = {stride}")
    vtransform = _build_slot(cfg["vtransform"], f"{path}.vtransform", injected)
    _expect(vtransform.in_channels, neck.out_channels, f"model.{path}.vtransform.in_channels",
            "the neck's out_channels")
    nx, ny, _ = vtransform.grid.shape
    factor = vtransform.bev_downsample
    bev_size = list(geo["bev_size"])
    if [nx // factor, ny // factor] != bev_size:
        raise ConfigError(f"geometry.xbound / ybound: the camera BEV grid is {nx // factor} x {ny // factor} "
                          f"cells, geometry.bev_size is {bev_size[0]} x {bev_size[1]}")
    camera = nn.ModuleDict({"backbone": backbone, "neck": neck, "vtransform": vtransform})
    return camera, strides.index(stride)


def _build_lidar(cfg: Any, config: Mapping[str, Any], injected: dict) -> nn.ModuleDict:
    path = "encoders.lidar"
    _check_keys(cfg, f"model.{path}", {"backbone": True})
    backbone = _build_slot(cfg["backbone"], f"{path}.backbone", injected)
    geo = config["geometry"]
    pc_range = list(geo["pc_range"])
    if isinstance(backbone, PointPillarsEncoder):
        pfe = backbone.pts_voxel_encoder
        _expect(backbone.pts_middle_encoder.in_channels, pfe.out_channels,
                f"model.{path}.backbone.pts_middle_encoder.in_channels", "the last of feat_channels")
        voxelize: nn.Module = PillarVoxelizer(pc_range, pfe.voxel_size.tolist(), int(geo["max_points"]),
                                              int(geo["max_voxels"]))
    else:
        out_x, out_y = backbone.out_shape[:2]
        if [out_x, out_y] != list(geo["bev_size"]):
            raise ConfigError(f"model.{path}.backbone.encoder_channels: the encoder's strides give a "
                              f"{out_x} x {out_y} BEV from {backbone.sparse_shape[0]} x "
                              f"{backbone.sparse_shape[1]} voxels; geometry.bev_size is "
                              f"{geo['bev_size'][0]} x {geo['bev_size'][1]} (one stride-2 stage per factor "
                              f"2 of geometry.out_size_factor)")
        voxelize = DynamicVoxelizer(pc_range, list(geo["voxel_size"]))
    return nn.ModuleDict({"voxelize": voxelize, "backbone": backbone})


def _build_decoder(cfg: Any, in_channels: int, source: str, injected: dict) -> nn.ModuleDict:
    _check_keys(cfg, "model.decoder", {"backbone": True, "neck": True})
    backbone = _build_slot(cfg["backbone"], "decoder.backbone", injected)
    neck = _build_slot(cfg["neck"], "decoder.neck", injected)
    _expect(backbone.blocks[0][0].in_channels, in_channels, "model.decoder.backbone.in_channels", source)
    _expect(len(neck.deblocks), len(backbone.out_channels), "model.decoder.neck.in_channels",
            "one entry per backbone stage")
    _expect([d[0].in_channels for d in neck.deblocks], backbone.out_channels,
            "model.decoder.neck.in_channels", "model.decoder.backbone.out_channels")
    stride = 1
    for level, (down, up) in enumerate(zip(backbone.strides, neck.upsample_strides)):
        stride *= down
        if not math.isclose(stride / up, 1.0):
            raise ConfigError(f"model.decoder.neck.upsample_strides[{level}] = {up:g}: level {level} is at "
                              f"stride {stride} of the BEV grid and must come back to stride 1")
    return nn.ModuleDict({"backbone": backbone, "neck": neck})


def _expect(actual: Any, expected: Any, key: str, source: str) -> None:
    actual_value = list(actual) if isinstance(actual, (list, tuple)) else actual
    expected_value = list(expected) if isinstance(expected, (list, tuple)) else expected
    if actual_value != expected_value:
        raise ConfigError(f"{key}: is {actual_value}, must equal {source} = {expected_value}")


def _check_keys(cfg: Any, path: str, allowed: dict[str, bool]) -> None:
    """cfg must be a mapping with only the `allowed` keys (True: required)."""
    if not isinstance(cfg, AbcMapping):
        raise ConfigError(f"{path}: must be a mapping, got {type(cfg).__name__} {cfg!r}")
    for key in cfg:
        if key not in allowed:
            raise ConfigError(_unknown(path, key, list(allowed)))
    for key, required in allowed.items():
        if required and cfg.get(key) is None:
            raise ConfigError(f"{path}: missing key '{path}.{key}'")


def _unknown(path: str, key: Any, known: list[str]) -> str:
    hint = difflib.get_close_matches(str(key), known, n=1)
    suggestion = f" (did you mean '{path}.{hint[0]}'?)" if hint else ""
    return f"unknown key '{path}.{key}'{suggestion}"


def _build_slot(cfg: Any, slot: str, injected: dict) -> nn.Module:
    return _build_module(cfg, f"model.{slot}", SLOTS[slot], injected)


def _build_module(cfg: Any, path: str, choices: tuple[type, ...], injected: dict) -> nn.Module:
    if not isinstance(cfg, AbcMapping):
        raise ConfigError(f"{path}: must be a mapping with a 'type', got {type(cfg).__name__} {cfg!r}")
    names = {cls.__name__: cls for cls in choices}
    type_name = cfg.get("type", choices[0].__name__ if len(choices) == 1 else None)
    if type_name not in names:
        found = "no 'type'" if type_name is None else f"type {type_name!r}"
        raise ConfigError(f"{path}.type: {found}; choose one of {', '.join(names)}")
    cls = names[type_name]
    arguments = {key: value for key, value in cfg.items() if key != "type"}
    kwargs = _constructor_arguments(cls, arguments, path, injected)
    try:
        return cls(**kwargs)
    except ValueError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def _constructor_arguments(cls: type, arguments: Mapping[str, Any], path: str, injected: dict) -> dict:
    """Check `arguments` against cls.__init__'s signature and convert them to its annotations."""
    signature = inspect.signature(cls.__init__)
    hints = typing.get_type_hints(cls.__init__)
    parameters = {name: p for name, p in signature.parameters.items() if name != "self"}
    derived = GEOMETRY_ARGUMENTS.get(cls, {})
    settable = [name for name in parameters if name not in derived]
    kwargs = {}
    for key, value in arguments.items():
        if key in derived:
            raise ConfigError(f"{path}.{key}: comes from {derived[key]} in the preset; remove it here")
        if key not in parameters:
            raise ConfigError(_unknown(path, key, settable))
        kwargs[key] = _convert(value, hints.get(key, Any), f"{path}.{key}", injected)
    for name in derived:
        kwargs[name] = injected[cls][name]
    for name, parameter in parameters.items():
        if name not in kwargs and parameter.default is inspect.Parameter.empty:
            raise ConfigError(f"{path}: missing key '{path}.{name}'")
    return kwargs


def _describe(annotation: Any) -> str:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in args)
    if origin in (list, tuple, AbcSequence):
        return f"a list of {_describe(args[0])}" if args else "a list"
    if origin in (dict, AbcMapping):
        return f"a mapping of {_describe(args[1])}" if args else "a mapping"
    if annotation is type(None):
        return "null"
    return getattr(annotation, "__name__", str(annotation))


def _convert(value: Any, annotation: Any, path: str, injected: dict) -> Any:
    """value checked against annotation and converted (mappings to dataclasses / modules)."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    problem = f"{path}: expected {_describe(annotation)}, got {type(value).__name__} {value!r}"
    if annotation is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arm in (a for a in args if a is not type(None)):
            try:
                return _convert(value, arm, path, injected)
            except ConfigError as exc:
                errors.append(exc)
        if len(errors) == 1:
            raise errors[0]
        raise ConfigError(problem)
    if origin is Literal:
        if value in args and type(value) in {type(a) for a in args}:
            return value
        raise ConfigError(problem)
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(problem)
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(problem)
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
        raise ConfigError(problem)
    if annotation is str:
        if isinstance(value, str):
            return value
        raise ConfigError(problem)
    if origin in (list, tuple, AbcSequence):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(problem)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(f"{path}: expected {len(args)} values, got {len(value)}")
            return [_convert(v, a, f"{path}[{i}]", injected) for i, (v, a) in enumerate(zip(value, args))]
        item = args[0] if args else Any
        return [_convert(v, item, f"{path}[{i}]", injected) for i, v in enumerate(value)]
    if origin in (dict, AbcMapping):
        if not isinstance(value, AbcMapping):
            raise ConfigError(problem)
        item = args[1] if args else Any
        return {k: _convert(v, item, f"{path}.{k}", injected) for k, v in value.items()}
    if dataclasses.is_dataclass(annotation):
        if not isinstance(value, AbcMapping):
            raise ConfigError(problem)
        fields = {f.name: f for f in dataclasses.fields(annotation)}
        hints = typing.get_type_hints(annotation)
        for key in value:
            if key not in fields:
                raise ConfigError(_unknown(path, key, list(fields)))
        for name, field in fields.items():
            if name not in value and field.default is dataclasses.MISSING \
                    and field.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{path}: missing key '{path}.{name}'")
        return annotation(**{k: _convert(v, hints[k], f"{path}.{k}", injected) for k, v in value.items()})
    if isinstance(annotation, type) and issubclass(annotation, nn.Module):
        return _build_module(value, path, (annotation,), injected)
    raise ConfigError(f"{path}: cannot check a value against {annotation!r}")
