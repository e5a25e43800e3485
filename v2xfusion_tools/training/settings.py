"""The `train:` section of a config: schedule, optimizer, precision, validation and logging.

The schema is the dataclasses below (field name = key, annotation = type, default = optional key);
`train_settings(config)` checks the section and raises a ConfigError naming the full key path
(`train.optimizer.lr`) for an unknown, missing, mistyped or out-of-range value.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Mapping

from v2xfusion_perception.errors import ConfigError
from v2xfusion_tools.models.builder import config_section


@dataclass(frozen=True)
class OptimizerSettings:
    """AdamW. lr: the peak learning rate of the schedule; grad_clip: max global gradient norm (None: off)."""

    lr: float = 1.0e-3
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.99)
    grad_clip: float | None = 35.0


@dataclass(frozen=True)
class ScheduleSettings:
    """Learning rate per optimizer step. onecycle: cosine warm-up from lr * start_fraction to lr over
    warmup_fraction of the steps, then cosine down to lr * end_fraction (CenterPoint's cyclic schedule);
    cosine: linear warm-up then cosine down to lr * end_fraction; constant: lr after the warm-up."""

    type: Literal["onecycle", "cosine", "constant"] = "onecycle"
    warmup_fraction: float = 0.4
    start_fraction: float = 0.1
    end_fraction: float = 1.0e-4


@dataclass(frozen=True)
class TrainSettings:
    """epochs: passes over the train split; batch_size: frames per process per micro-batch;
    accumulate: micro-batches per optimizer step (global batch = batch_size x accumulate x processes);
    max_steps: stop after this many optimizer steps (None: run all epochs); amp: float16 autocast +
    gradient scaling on GPU (ignored on CPU); threads: torch CPU threads of a training process (None:
    torch's default); val_interval: validate every so many epochs and after the last (0: never);
    val_score_threshold: score threshold of the decoded boxes that AP is computed from;
    log_interval: optimizer steps between rows of the metrics log."""

    epochs: int
    batch_size: int
    accumulate: int = 1
    max_steps: int | None = None
    train_split: str = "train"
    val_split: str = "val"
    optimizer: OptimizerSettings = field(default_factory=OptimizerSettings)
    schedule: ScheduleSettings = field(default_factory=ScheduleSettings)
    amp: bool = True
    threads: int | None = None
    val_interval: int = 1
    val_score_threshold: float = 0.1
    log_interval: int = 10


def train_settings(config: Mapping[str, Any]) -> TrainSettings:
    """The validated `train` section of a loaded config."""
    if config.get("train") is None:
        raise ConfigError("missing section 'train': the training schedule (epochs, batch_size, optimizer, ...)")
    settings = config_section(TrainSettings, config["train"], "train")
    optimizer = settings.optimizer
    settings = TrainSettings(**{**settings.__dict__, "optimizer": OptimizerSettings(
        **{**optimizer.__dict__, "betas": tuple(optimizer.betas)})})
    _check(settings)
    return settings


def _positive(value: float | int | None, key: str, allow_zero: bool = False) -> None:
    if value is not None and (value < 0 or (value == 0 and not allow_zero)):
        raise ConfigError(f"train.{key}: must be {'>= 0' if allow_zero else '> 0'}, got {value}")


def _check(settings: TrainSettings) -> None:
    for key in ("epochs", "batch_size", "accumulate", "max_steps", "threads", "log_interval"):
        _positive(getattr(settings, key), key)
    _positive(settings.val_interval, "val_interval", allow_zero=True)
    _positive(settings.optimizer.lr, "optimizer.lr")
    _positive(settings.optimizer.weight_decay, "optimizer.weight_decay", allow_zero=True)
    _positive(settings.optimizer.grad_clip, "optimizer.grad_clip")
    if not all(0.0 <= beta < 1.0 for beta in settings.optimizer.betas):
        raise ConfigError(f"train.optimizer.betas: each in [0, 1), got {list(settings.optimizer.betas)}")
    schedule = settings.schedule
    if not 0.0 <= schedule.warmup_fraction < 1.0:
        raise ConfigError(f"train.schedule.warmup_fraction: must be in [0, 1), got {schedule.warmup_fraction}")
    for key in ("start_fraction", "end_fraction"):
        if not 0.0 < getattr(schedule, key) <= 1.0:
            raise ConfigError(f"train.schedule.{key}: must be in (0, 1], got {getattr(schedule, key)}")
    if not 0.0 <= settings.val_score_threshold < 1.0:
        raise ConfigError(f"train.val_score_threshold: must be in [0, 1), got {settings.val_score_threshold}")
