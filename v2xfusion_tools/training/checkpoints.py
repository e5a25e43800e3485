"""Checkpoints of a run folder: weights + config per epoch, and the optimizer state that --resume needs.

Every file holds only tensors and plain data (dicts, lists, strings, numbers), so it loads with
`torch.load(weights_only=True)` and nothing in it can run code:

    epoch_N.pth   {"state_dict": model weights, "config": the loaded config, "meta": {epoch, step, format}}
    latest.pth    symlink to the newest epoch_N.pth (what export and `v2xfusion eval` take)
    resume.pth    {"checkpoint": "epoch_N.pth", "epoch", "step", "optimizer": AdamW state,
                   "scaler": AMP gradient-scaler state}: rewritten every epoch

Files are written to a temporary name and renamed, so a run killed mid-write leaves the previous ones.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from v2xfusion_perception.errors import V2XError
from v2xfusion_tools.models.checkpoint import load_matching, read_state_dict

CHECKPOINT_FORMAT = 1
LATEST = "latest.pth"
RESUME = "resume.pth"


def epoch_name(epoch: int) -> str:
    """File name of the checkpoint written after epoch `epoch` (1-based)."""
    return f"epoch_{epoch}.pth"


def _atomic_save(value: Any, path: Path) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    torch.save(value, temporary)
    os.replace(temporary, path)


def save_checkpoint(run_dir: str | Path, model: nn.Module, config: dict, epoch: int, step: int) -> Path:
    """Write run_dir/epoch_<epoch>.pth and point latest.pth at it; returns the checkpoint path."""
    run_dir = Path(run_dir)
    path = run_dir / epoch_name(epoch)
    state = {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}
    _atomic_save({"state_dict": state, "config": config,
                  "meta": {"epoch": int(epoch), "step": int(step), "format": CHECKPOINT_FORMAT}}, path)
    link = run_dir / LATEST
    temporary = run_dir / f".{LATEST}.tmp"
    if temporary.is_symlink() or temporary.exists():
        temporary.unlink()
    temporary.symlink_to(path.name)
    os.replace(temporary, link)
    return path


def save_resume_state(run_dir: str | Path, checkpoint: Path, optimizer: torch.optim.Optimizer,
                      scaler: torch.amp.GradScaler, epoch: int, step: int) -> Path:
    """Write run_dir/resume.pth: what continues the run after `checkpoint` (epoch / step done so far)."""
    path = Path(run_dir) / RESUME
    _atomic_save({"checkpoint": checkpoint.name, "epoch": int(epoch), "step": int(step),
                  "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict()}, path)
    return path


@dataclass(frozen=True)
class ResumeState:
    """Where a run stopped: epochs and optimizer steps done, the weights, optimizer and scaler states."""

    epoch: int
    step: int
    state_dict: dict[str, Tensor]
    optimizer: dict
    scaler: dict


def read_resume_state(run_dir: str | Path) -> ResumeState:
    """The state --resume continues from; a missing or foreign file is a V2XError naming it."""
    path = Path(run_dir) / RESUME
    if not path.is_file():
        raise V2XError(f"{path}: nothing to resume (no resume.pth in the run folder; it is written after "
                       f"each epoch)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        checkpoint = Path(run_dir) / state["checkpoint"]
        epoch, step, optimizer, scaler = int(state["epoch"]), int(state["step"]), state["optimizer"], state["scaler"]
    except (KeyError, TypeError, ValueError, RuntimeError, EOFError) as exc:
        raise V2XError(f"{path}: not a resume state written by `v2xfusion train` ({exc})") from None
    return ResumeState(epoch, step, read_state_dict(checkpoint), optimizer, scaler)


def load_weights(model: nn.Module, path: str | Path) -> None:
    """Load a checkpoint's weights into `model`; every weight must be there with its shape, else a
    V2XError lists what does not fit (a checkpoint of another model config)."""
    report = load_matching(model, read_state_dict(path))
    problems = []
    if report.missing:
        problems.append(f"{len(report.missing)} model weights missing (e.g. {report.missing[0]})")
    if report.unexpected:
        problems.append(f"{len(report.unexpected)} checkpoint weights unknown to the model "
                        f"(e.g. {report.unexpected[0]})")
    if report.mismatched:
        name, found, wanted = report.mismatched[0]
        problems.append(f"{len(report.mismatched)} of another shape (e.g. {name}: {list(found)} vs {list(wanted)})")
    if problems:
        raise V2XError(f"{path}: the weights do not fit the model of this config: {'; '.join(problems)}")
