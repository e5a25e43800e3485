"""Pipeline A's four ONNX files in one call (guide §4.2.3, §4.2.4).

camera.backbone (img -> camera_depth, camera_feature), lidar_pfe (voxels, num_points, coors ->
pillar_features; dynamic V, or padded to a static V with `fixed_v`), fuser (camera_bev, lidar_bev ->
middle) and head (middle -> heatmap, reg, height, dim, rot[, vel]), traced from the model's stages
(v2xfusion_tools/models/stages.py). Voxelization, BEV pooling, the pillar scatter and decoding stay
outside, in kernels. Every file carries the geometry metadata and passes onnx.checker.
"""
from __future__ import annotations

import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

import onnx
import torch
from torch import Tensor, nn

from v2xfusion_perception.errors import ConfigError
from v2xfusion_tools.export.metadata import model_metadata, stamp_onnx
from v2xfusion_tools.models.bevfusion import BEVFusion
from v2xfusion_tools.models.stages import export_stages
from v2xfusion_tools.progress import ProgressFactory, stage

OPSET = 17
STAGES = ("camera.backbone", "lidar_pfe", "fuser", "head")
PFE_INPUTS = ("voxels", "num_points", "coors")


@dataclass(frozen=True)
class StageIO:
    """Names and example tensors of one stage's inputs, the names of its outputs, dynamic axes."""

    inputs: dict[str, Tensor]
    outputs: list[str]
    dynamic_axes: dict[str, dict[int, str]]


class CameraBevFuser(nn.Module):
    """The fuser stage with the view transform's BEV downsampling in front (identity when the
    camera grid is the BEV grid), so the pooled camera BEV goes straight in."""

    def __init__(self, model: BEVFusion) -> None:
        super().__init__()
        self.fuser = export_stages(model)["fuser"]
        self.downsample = model.encoders["camera"]["vtransform"].downsample
        self.train(model.training)

    def forward(self, camera_bev: Tensor, lidar_bev: Tensor) -> Tensor:
        return self.fuser(self.downsample(camera_bev), lidar_bev)


def pfe_file_name(fixed_v: int | None) -> str:
    """lidar_pfe.onnx (dynamic V) or lidar_pfe_v<V>.onnx (static V), as the guide names them."""
    return "lidar_pfe.onnx" if fixed_v is None else f"lidar_pfe_v{fixed_v}.onnx"


def example_pillars(model: BEVFusion, config: Mapping[str, Any], seed: int = 0) -> tuple[Tensor, Tensor, Tensor]:
    """Hard-voxelized random points over pc_range: voxels (V, P, C) float32, num_points (V,) int32,
    coors (V, 4) int32 (batch, x, y, z): the PFE's trace inputs."""
    gen = torch.Generator().manual_seed(seed)
    pc = torch.tensor(config["geometry"]["pc_range"], dtype=torch.float32)
    xyz = pc[:3] + (pc[3:] - pc[:3]) * torch.rand(4000, 3, generator=gen)
    points = torch.cat([xyz, torch.rand(4000, 1, generator=gen)], dim=1)
    voxels, num_points, coors = model.encoders["lidar"]["voxelize"]([points])
    return voxels, num_points.to(torch.int32), coors.to(torch.int32)


def pad_pillars(voxels: Tensor, num_points: Tensor, coors: Tensor, fixed_v: int) -> tuple[Tensor, Tensor, Tensor]:
    """Pad to exactly fixed_v pillars with empty ones (num_points 0, zero coors), as the runtime
    feeds a static-V PFE; more pillars than fixed_v is a ValueError."""
    count = voxels.shape[0]
    if count > fixed_v:
        raise ValueError(f"fixed_v: {count} pillars do not fit in a static V of {fixed_v}")
    pad = fixed_v - count
    return (torch.cat([voxels, voxels.new_zeros(pad, *voxels.shape[1:])]),
            torch.cat([num_points, num_points.new_zeros(pad)]), torch.cat([coors, coors.new_zeros(pad, 4)]))


def stage_io(model: BEVFusion, config: Mapping[str, Any], fixed_v: int | None = None) -> dict[str, StageIO]:
    """Example inputs (batch 1), output names and dynamic axes of the four stages."""
    geo = config["geometry"]
    width, height = geo["image_size"]
    vtransform = model.encoders["camera"]["vtransform"]
    nx, ny, _ = vtransform.grid.shape
    lidar_channels = model.encoders["lidar"]["backbone"].out_channels
    bev_x, bev_y = geo["bev_size"]
    gen = torch.Generator().manual_seed(0)
    voxels, num_points, coors = example_pillars(model, config)
    pfe_axes: dict[str, dict[int, str]] = {}
    if fixed_v is None:
        pfe_axes = {name: {0: "V"} for name in (*PFE_INPUTS, "pillar_features")}
    else:
        voxels, num_points, coors = pad_pillars(voxels, num_points, coors, fixed_v)
    head = model.heads["object"]
    return {
        "camera.backbone": StageIO({"img": torch.randn(1, 3, height, width, generator=gen)},
                                   ["camera_depth", "camera_feature"], {}),
        "lidar_pfe": StageIO(dict(zip(PFE_INPUTS, (voxels, num_points, coors))), ["pillar_features"], pfe_axes),
        "fuser": StageIO({"camera_bev": torch.randn(1, vtransform.bev_channels, nx, ny, generator=gen),
                          "lidar_bev": torch.randn(1, lidar_channels, bev_x, bev_y, generator=gen)},
                         ["middle"], {}),
        "head": StageIO({"middle": torch.randn(1, head.shared_conv.conv.in_channels, bev_x, bev_y, generator=gen)},
                        list(head.output_names), {}),
    }


def stage_modules(model: BEVFusion) -> dict[str, nn.Module]:
    """The four stage modules by file stem (the fuser with the camera BEV downsampling)."""
    if "camera" not in model.encoders or "lidar" not in model.encoders:
        raise ConfigError("model.encoders: Pipeline A's export needs both the camera and the lidar encoder")
    stages = export_stages(model)
    stages["fuser"] = CameraBevFuser(model)
    return stages


@contextmanager
def legacy_exporter() -> Iterator[None]:
    """torch.onnx.export(dynamo=False) without its deprecation notice and the tracer's warnings about the
    custom ops' data-dependent internals: the TorchScript exporter is the one that honours autograd
    Functions' `symbolic` (design.md §3 (c)), and those internals never reach the graph."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        yield


def export_onnx(module: nn.Module, io: StageIO, path: Path, metadata: Mapping[str, str], opset: int = OPSET) -> Path:
    """Trace `module` on io's example inputs into `path` (legacy exporter, dynamo=False: the custom
    ops' `symbolic` needs it, design.md §3 (c)), stamp metadata, run onnx.checker."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad(), legacy_exporter():
        torch.onnx.export(module, tuple(io.inputs.values()), path, dynamo=False, opset_version=opset,
                          input_names=list(io.inputs), output_names=io.outputs, dynamic_axes=io.dynamic_axes or None,
                          do_constant_folding=True)
    stamp_onnx(path, metadata)
    onnx.checker.check_model(onnx.load(path), full_check=True)
    return path


def export_pipeline_a(model: BEVFusion, config: Mapping[str, Any], out_dir: Path, fixed_v: int | None = None,
                      progress: ProgressFactory | None = None) -> dict[str, Path]:
    """The four ONNX files of Pipeline A into out_dir; with fixed_v also lidar_pfe_v<V>.onnx.

    The model must be in eval mode (BatchNorm statistics frozen into the graph). Returns
    {file stem: path}, e.g. {"camera.backbone": ..., "lidar_pfe": ..., "lidar_pfe_v7000": ...}.
    """
    if model.training:
        raise ValueError("model: put it in eval mode before export (BatchNorm would trace batch statistics)")
    modules = stage_modules(model)
    ios = stage_io(model, config)
    written: dict[str, Path] = {}
    jobs = [(name, name, ios[name], None) for name in STAGES]
    if fixed_v is not None:
        jobs.append(("lidar_pfe", pfe_file_name(fixed_v)[:-5], stage_io(model, config, fixed_v)["lidar_pfe"], fixed_v))
    with stage(progress, "export Pipeline A (ONNX)", len(jobs)) as advance:
        for stage_name, stem, io, static_v in jobs:
            extra = {"static_voxels": static_v, "max_voxels": config["geometry"]["max_voxels"]} \
                if stage_name == "lidar_pfe" else None
            metadata = model_metadata(config, "A", stage_name, extra)
            written[stem] = export_onnx(modules[stage_name], io, out_dir / f"{stem}.onnx", metadata)
            advance(1)
    return written
