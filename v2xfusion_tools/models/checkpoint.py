"""Load weights by name from our checkpoints and from published ones (BEVFusion, CUDA-V2XFusion,
torchvision ImageNet backbones), reporting what matched.

Published BEVFusion-family checkpoints differ from our state_dict in two known ways, both fixed
here: they store grid constants the view transform derives from the config (`vtransform.frustum`,
`.dx`, `.bx`, `.nx`; we recompute them, so they are dropped), and checkpoints trained with spconv
1.x / mmdet3d's vendored spconv keep sparse kernels as (k0, k1, k2, in, out) where spconv 2.x and we
use (out, k0, k1, k2, in) (permuted when the shapes say so). Everything else loads only where name
and shape agree; the report lists the rest, so a partial load (another decoder, other classes) is
visible, never silent.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import torch
from torch import Tensor, nn

from v2xfusion_perception.errors import V2XError

DERIVED_SUFFIXES = ("vtransform.frustum", "vtransform.dx", "vtransform.bx", "vtransform.nx")


@dataclass
class LoadReport:
    """loaded: model keys filled; missing: model keys the checkpoint lacks; unexpected: checkpoint keys
    the model lacks; mismatched: (key, checkpoint shape, model shape) of same-named tensors."""

    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """Tensors of a .pth file, loaded with weights_only=True; unwraps a `state_dict` / `model` entry."""
    path = Path(path)
    if not path.is_file():
        raise V2XError(f"{path}: checkpoint not found")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a corrupt or non-weights file
        raise V2XError(f"{path}: not a weights-only PyTorch checkpoint "
                       f"({exc.__class__.__name__}: {exc})") from None
    for key in ("state_dict", "model"):
        if isinstance(data, dict) and isinstance(data.get(key), dict):
            data = data[key]
    if not isinstance(data, dict) or not all(isinstance(v, Tensor) for v in data.values()):
        raise V2XError(f"{path}: expected a mapping of parameter names to tensors")
    return data


def _spconv1_to_spconv2(value: Tensor, target: Tensor) -> Tensor | None:
    """(k0, k1, k2, in, out) -> (out, k0, k1, k2, in) when that makes the shapes agree."""
    if value.dim() == 5 and value.shape != target.shape:
        permuted = value.permute(4, 0, 1, 2, 3)
        if permuted.shape == target.shape:
            return permuted.contiguous()
    return None


def load_matching(model: nn.Module, state_dict: Mapping[str, Tensor], prefix: str = "") -> LoadReport:
    """Copy every checkpoint tensor whose name (with `prefix` prepended, e.g.
    "encoders.camera.backbone." for an ImageNet ResNet) and shape match the model's."""
    own = model.state_dict()
    report = LoadReport()
    matched = {}
    for key, value in state_dict.items():
        name = prefix + key
        if name.endswith(DERIVED_SUFFIXES):
            continue
        if name not in own:
            report.unexpected.append(name)
            continue
        if value.shape != own[name].shape:
            value = _spconv1_to_spconv2(value, own[name])
            if value is None:
                report.mismatched.append((name, tuple(state_dict[key].shape), tuple(own[name].shape)))
                continue
        matched[name] = value
    model.load_state_dict(matched, strict=False)
    report.loaded = sorted(matched)
    # with a prefix only that part of the model is being loaded
    report.missing = sorted(k for k in own if k not in matched and k.startswith(prefix))
    return report
