"""Pipeline B's unified ONNX (guide §5.2.4): camera branch, SparseEncoder, fuser and head in one graph.

Inputs: img (1, 3, H, W), BEVPool-v2 geometry `indices` (P,) int32 and `intervals` (K + 1, 3) int32
(geometry.py), `voxel_features` (V, C) and `coors` (V, 4) int32 (batch, z, y, x) from the dynamic
voxelizer outside. Outputs: the head's heatmap, reg, height, dim, rot[, vel]. The pooling and every
sparse conv are custom-domain nodes (custom_ops.py): BevPoolV2, SparseConvolution with BatchNorm and
ReLU folded in (the residual add of a basic block stays a standard Add + Relu on the 2-D sparse
features), SparseToDense writing the BEV map. pc_range / voxel_size / sparse_shape ride along as
metadata. `fp16_weights` turns an exported file into the guide's FP16 variant (§5.3 step 7).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import onnx
import torch
from onnx import helper, numpy_helper
from torch import Tensor, nn

from v2xfusion_perception.errors import ConfigError
from v2xfusion_tools.export.custom_ops import DOMAIN, DOMAIN_VERSION, BevPoolV2, SparseConvolution, SparseToDense
from v2xfusion_tools.export.geometry import BevPoolGeometryArrays
from v2xfusion_tools.export.metadata import model_metadata, stamp_onnx
from v2xfusion_tools.export.onnx_pipeline_a import legacy_exporter
from v2xfusion_tools.models.bevfusion import BEVFusion
from v2xfusion_tools.models.lidar.sparse_encoder import SparseBasicBlock, SparseConvBlock, SparseEncoder
from v2xfusion_tools.models.sparse.conv import SparseConv3d
from v2xfusion_tools.models.sparse.rulebook import output_shape
from v2xfusion_tools.models.stages import CameraBackboneStage, FuserStage, HeadStage

OPSET = 17
INPUTS = ("img", "indices", "intervals", "voxel_features", "coors")
UNIFIED_FILE = "bevfusion_unified.onnx"
UNIFIED_FP16_FILE = "bevfusion_unified_fp16.onnx"


def fold_batch_norm(conv: SparseConv3d, norm: nn.BatchNorm1d | None) -> tuple[Tensor, Tensor]:
    """The conv's weight (out, k0, k1, k2, in) and bias (out,) with an eval-mode BatchNorm folded in:
    w' = w * g / sqrt(var + eps), b' = beta + (b - mean) * g / sqrt(var + eps)."""
    weight = conv.weight.detach()
    bias = conv.bias.detach() if conv.bias is not None else weight.new_zeros(weight.shape[0])
    if norm is None:
        return weight.clone(), bias.clone()
    scale = norm.weight.detach() / torch.sqrt(norm.running_var + norm.eps)
    return weight * scale.view(-1, 1, 1, 1, 1), norm.bias.detach() + (bias - norm.running_mean) * scale


class FoldedSparseConv(nn.Module):
    """One SparseConvolution node: a conv of the (x, y, z)-ordered PyTorch encoder re-expressed on
    (b, z, y, x) sites, the kernels' and the op's order (weight (out, kz, ky, kx, in))."""

    def __init__(self, conv: SparseConv3d, norm: nn.BatchNorm1d | None, relu: bool, in_shape_xyz: tuple,
                 indice_key: str) -> None:
        super().__init__()
        weight, bias = fold_batch_norm(conv, norm)
        self.register_buffer("weight", weight.permute(0, 3, 2, 1, 4).contiguous())
        self.register_buffer("bias", bias.contiguous())
        self.kernel_size = tuple(reversed(conv.kernel_size))
        self.stride = tuple(reversed(conv.stride))
        self.padding = tuple(reversed(conv.padding))
        self.dilation = tuple(reversed(conv.dilation))
        self.in_spatial_shape = tuple(reversed(in_shape_xyz))
        self.subm = conv.subm
        self.relu = relu
        self.indice_key = indice_key
        self.out_shape_xyz = in_shape_xyz if conv.subm else \
            output_shape(in_shape_xyz, conv.kernel_size, conv.stride, conv.padding, conv.dilation)

    def forward(self, features: Tensor, indices: Tensor) -> tuple[Tensor, Tensor]:
        out = SparseConvolution.apply(features, indices, self.weight, self.bias, self.kernel_size, self.stride,
                                      self.padding, self.dilation, self.in_spatial_shape, self.subm,
                                      self.indice_key, self.relu)
        return (out, indices) if self.subm else out


class SparseEncoderExport(nn.Module):
    """The SparseEncoder as SparseConvolution nodes and one SparseToDense: (V, C) features at (V, 4)
    (b, z, y, x) sites -> (1, C_out * Z_out, X_out, Y_out), equal to SparseEncoder.forward."""

    def __init__(self, encoder: SparseEncoder) -> None:
        super().__init__()
        shape = encoder.sparse_shape
        level = 1
        self.convs = nn.ModuleList()
        self.plan: list[tuple[str, int]] = []  # ("conv", i) or ("basic", i): conv i (and i + 1)

        def add(conv: SparseConv3d, norm: nn.BatchNorm1d | None, relu: bool) -> None:
            nonlocal shape, level
            key = f"subm{level}" if conv.subm else f"spconv{level + 1}"
            folded = FoldedSparseConv(conv, norm, relu, shape, key)
            self.convs.append(folded)
            shape = folded.out_shape_xyz
            if not conv.subm:
                level += 1

        blocks = [encoder.conv_input, *(b for stage in encoder.encoder_layers for b in stage), encoder.conv_out]
        for block in blocks:
            if isinstance(block, SparseConvBlock):
                self.plan.append(("conv", len(self.convs)))
                add(block[0], block[1], True)
            elif isinstance(block, SparseBasicBlock):
                self.plan.append(("basic", len(self.convs)))
                add(block.conv1, block.bn1, True)
                add(block.conv2, block.bn2, False)
            else:
                raise ConfigError(f"model.encoders.lidar.backbone: cannot export block {type(block).__name__}")
        self.out_shape_zyx = tuple(reversed(shape))

    def forward(self, features: Tensor, indices: Tensor) -> Tensor:
        for kind, i in self.plan:
            if kind == "conv":
                features, indices = self.convs[i](features, indices)
            else:
                identity = features
                features, indices = self.convs[i](features, indices)
                features, indices = self.convs[i + 1](features, indices)
                features = torch.relu(features + identity)
        return SparseToDense.apply(features, indices, self.out_shape_zyx)


class UnifiedExport(nn.Module):
    """Pipeline B in one graph, batch 1 (module docstring)."""

    def __init__(self, model: BEVFusion) -> None:
        super().__init__()
        lidar = model.encoders["lidar"]["backbone"] if "lidar" in model.encoders else None
        if not isinstance(lidar, SparseEncoder) or "camera" not in model.encoders:
            raise ConfigError("model.encoders: the unified export (Pipeline B) needs a camera encoder and a "
                              "SparseEncoder LiDAR backbone")
        self.camera = CameraBackboneStage(model)
        vtransform = model.encoders["camera"]["vtransform"]
        self.bev_dims = vtransform.grid.shape
        self.downsample = vtransform.downsample
        self.sparse_encoder = SparseEncoderExport(lidar)
        self.fuser = FuserStage(model)
        self.head = HeadStage(model)
        self.output_names = list(self.head.output_names)
        self.train(model.training)

    def forward(self, img: Tensor, indices: Tensor, intervals: Tensor, voxel_features: Tensor,
                coors: Tensor) -> tuple[Tensor, ...]:
        depth, feature = self.camera(img)
        camera_bev = self.downsample(BevPoolV2.apply(depth, feature, indices, intervals, self.bev_dims))
        lidar_bev = self.sparse_encoder(voxel_features, coors)
        return self.head(self.fuser(camera_bev, lidar_bev))


def example_voxels(model: BEVFusion, config: Mapping[str, Any], seed: int = 0) -> tuple[Tensor, Tensor]:
    """Dynamic voxels of random points over pc_range, plus a ground plane of points, so every level
    of the encoder has sites: features (V, C) float32, coors (V, 4) int32 (0, z, y, x)."""
    gen = torch.Generator().manual_seed(seed)
    pc = torch.tensor(config["geometry"]["pc_range"], dtype=torch.float32)
    # few points: the trace runs every sparse conv in PyTorch, and only needs sites at every level
    xyz = pc[:3] + (pc[3:] - pc[:3]) * torch.rand(1000, 3, generator=gen)
    xyz[:500, 2] = pc[2] + 0.5 * (pc[5] - pc[2]) * torch.rand(500, generator=gen)
    points = torch.cat([xyz, torch.rand(1000, 1, generator=gen)], dim=1)
    features, coors = model.encoders["lidar"]["voxelize"]([points])
    return features, coors.to(torch.int32)


def unified_metadata(config: Mapping[str, Any], model: BEVFusion) -> dict[str, str]:
    """The guide's pc_range / voxel_size / sparse_shape (x, y, z), plus the preset's BEV sizes."""
    encoder = model.encoders["lidar"]["backbone"]
    return model_metadata(config, "B", "unified", {"sparse_shape": list(encoder.sparse_shape),
                                                   "encoder_out_shape": list(encoder.out_shape)})


def export_unified(model: BEVFusion, config: Mapping[str, Any], geometry: BevPoolGeometryArrays, path: Path,
                   opset: int = OPSET) -> Path:
    """Write the unified ONNX to `path` (eval-mode model; `geometry` gives the trace's BEVPool inputs).
    The file passes onnx.checker; returns path."""
    if model.training:
        raise ValueError("model: put it in eval mode before export (BatchNorm would trace batch statistics)")
    module = UnifiedExport(model)
    width, height = config["geometry"]["image_size"]
    img = torch.randn(1, 3, height, width, generator=torch.Generator().manual_seed(0))
    features, coors = example_voxels(model, config)
    args = (img, torch.from_numpy(geometry.indices), torch.from_numpy(geometry.intervals), features, coors)
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad(), legacy_exporter():
        torch.onnx.export(module, args, path, dynamo=False, opset_version=opset, input_names=list(INPUTS),
                          output_names=module.output_names, custom_opsets={DOMAIN: DOMAIN_VERSION},
                          dynamic_axes={"intervals": {0: "K"}, "voxel_features": {0: "V"}, "coors": {0: "V"}},
                          do_constant_folding=True)
    stamp_onnx(path, unified_metadata(config, model))
    onnx.checker.check_model(onnx.load(path))
    return path


def fp16_weights(src: Path, dst: Path, min_elements: int = 16) -> Path:
    """A copy of an ONNX file with its float32 initializers of >= min_elements values stored as float16,
    each followed by a Cast back to float32 (what OpenVINO's compress_to_fp16 does to an IR): half the
    size, activations still float32, runnable by ONNX Runtime and OpenVINO alike."""
    model = onnx.load(src)
    graph = model.graph
    casts = []
    for initializer in graph.initializer:
        if initializer.data_type != onnx.TensorProto.FLOAT:
            continue
        values = numpy_helper.to_array(initializer)
        if values.size < min_elements:
            continue
        name = initializer.name
        half_name = f"{name}__fp16"
        initializer.CopyFrom(numpy_helper.from_array(values.astype(np.float16), half_name))
        casts.append(helper.make_node("Cast", [half_name], [name], to=onnx.TensorProto.FLOAT, name=f"{name}__cast"))
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(model)
    onnx.save(model, dst)
    return dst
