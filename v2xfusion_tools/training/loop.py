"""`v2xfusion train`: the training loop, one process (CPU or one GPU) or many (torchrun, DDP).

Per optimizer step: `accumulate` micro-batches (forward under float16 autocast on GPU when train.amp,
the head's loss in float32), gradient clipping, AdamW at the schedule's learning rate. After each
epoch the main process writes epoch_N.pth (+ latest.pth, resume.pth) and, every val_interval epochs
and after the last, validates on the val split (KITTI-style AP). The loss terms (averaged over the
processes), the learning rate and the APs go to run_dir/metrics.csv; a progress bar shows the loss
terms and the ETA.
"""
from __future__ import annotations

import contextlib
import math
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
import yaml
from rich.console import Console
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from v2xfusion_perception.errors import DatasetError, V2XError
from v2xfusion_tools.data import FrameBatch, GlobalBatchSampler, batches, build_dataset, data_settings, make_loader
from v2xfusion_tools.models import BEVFusion, FusionBatch, build_model
from v2xfusion_tools.progress import progress_bar
from v2xfusion_tools.training import checkpoints
from v2xfusion_tools.training.distributed import (ProcessContext, barrier, close_processes, init_processes,
                                                  mean_over_processes)
from v2xfusion_tools.training.evaluate import headline, label_root, predict, score
from v2xfusion_tools.training.metrics_log import MetricsLog
from v2xfusion_tools.training.schedule import learning_rate
from v2xfusion_tools.training.settings import TrainSettings, train_settings


@dataclass
class TrainResult:
    """What a run did: epochs / optimizer steps completed, wall time, the last checkpoint, and the
    headline APs of each validation as (epoch, step, {name: AP})."""

    run_dir: Path
    epochs: int = 0
    steps: int = 0
    seconds: float = 0.0
    checkpoint: Path | None = None
    validations: list[tuple[int, int, dict[str, float]]] = field(default_factory=list)


class TrainingStep(nn.Module):
    """The training loss of a batch. The model runs under float16 autocast when `amp` (GPU); the head's
    loss always runs in float32 (its focal-loss clamp at 1 - 1e-4 does not exist in float16)."""

    def __init__(self, model: BEVFusion, amp: bool) -> None:
        super().__init__()
        self.model = model
        self.amp = amp

    def forward(self, inputs: FusionBatch) -> dict[str, Tensor]:
        head = self.model.heads["object"]
        with torch.autocast(device_type=inputs.img.device.type, dtype=torch.float16, enabled=self.amp):
            preds = head(self.model.bev_features(inputs))
        preds = [{name: value.float() for name, value in task.items()} for task in preds]
        losses = head.loss(preds, inputs.gt_boxes, inputs.gt_labels)
        losses["loss"] = torch.stack(list(losses.values())).sum()
        return losses


def train(config: dict, run_dir: str | Path, device: str = "auto", resume: bool = False,
          data_root: str | Path | None = None, console: Console | None = None) -> TrainResult:
    """Train the config's model on its train split, writing checkpoints and metrics under run_dir.

    device: auto | cpu | cuda (under torchrun: this process's GPU, LOCAL_RANK); resume: continue from
    run_dir/resume.pth; data_root: replaces the config's dataset_root (and moves dataset_kitti_root
    with it, see evaluate.label_root).
    """
    settings = train_settings(config)
    data_settings(config)
    context = init_processes(device)
    try:
        return _Run(config, settings, Path(run_dir), context, data_root, console or Console(stderr=True)).run(resume)
    finally:
        close_processes(context)


def _grouped(items: Iterable[FrameBatch], size: int) -> Iterator[list[FrameBatch]]:
    group: list[FrameBatch] = []
    for item in items:
        group.append(item)
        if len(group) == size:
            yield group
            group = []


class _Run:
    """One training run's state (model, optimizer, data, logs) and its epoch loop."""

    def __init__(self, config: dict, settings: TrainSettings, run_dir: Path, context: ProcessContext,
                 data_root: str | Path | None, console: Console) -> None:
        self.config, self.settings, self.run_dir, self.context = config, settings, run_dir, context
        self.data_root, self.console = data_root, console
        self.device = context.device
        self.amp = settings.amp and self.device.type == "cuda"

    def _say(self, text: str) -> None:
        if self.context.is_main:
            self.console.print(text, highlight=False, soft_wrap=True)

    def _setup(self, resume: bool) -> None:
        settings, context = self.settings, self.context
        if context.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            if not resume and (self.run_dir / checkpoints.RESUME).exists():
                raise V2XError(f"{self.run_dir}: holds a run already (resume.pth); pass --resume to continue "
                               f"it or choose another --run-dir")
            (self.run_dir / "config.yaml").write_text(yaml.safe_dump(self.config, sort_keys=False))
        if settings.threads is not None:
            torch.set_num_threads(settings.threads)
        torch.manual_seed(int(self.config.get("seed", 0)))
        self.model = build_model(self.config).to(self.device)
        self.data = data_settings(self.config)
        self.dataset = build_dataset(self.config, settings.train_split, True, self.data_root)
        self.sampler = GlobalBatchSampler(len(self.dataset), settings.batch_size, settings.accumulate,
                                          context.world_size, context.rank, shuffle=True,
                                          seed=int(self.config.get("seed", 0)))
        if self.sampler.steps_per_epoch == 0:
            raise DatasetError(f"{self.dataset.source}: {len(self.dataset)} frames, fewer than one global batch "
                               f"of {self.sampler.global_batch} (train.batch_size x train.accumulate x processes)")
        self.total_steps = settings.epochs * self.sampler.steps_per_epoch
        if settings.max_steps is not None:
            self.total_steps = min(self.total_steps, settings.max_steps)
        self.val_dataset = None
        if context.is_main and settings.val_interval:
            self.val_dataset = build_dataset(self.config, settings.val_split, False, self.data_root)
        opt = settings.optimizer
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=opt.lr, betas=opt.betas,
                                           weight_decay=opt.weight_decay)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp)
        self.epoch, self.step = 0, 0
        if resume:
            state = checkpoints.read_resume_state(self.run_dir)
            self.model.load_state_dict(state.state_dict)
            self.optimizer.load_state_dict(state.optimizer)
            self.scaler.load_state_dict(state.scaler)
            self.epoch, self.step = state.epoch, state.step
            self._say(f"resuming {self.run_dir} after epoch {self.epoch} (step {self.step})")
        self.net: nn.Module = TrainingStep(self.model, self.amp)
        if context.distributed:
            # the camera neck's stride-8 level feeds nothing when the view transform takes stride 16
            self.net = DistributedDataParallel(
                self.net, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=True)
        self.log = MetricsLog(self.run_dir) if context.is_main else None
        barrier(context)

    def run(self, resume: bool) -> TrainResult:
        started = time.perf_counter()
        self._setup(resume)
        result = TrainResult(self.run_dir)
        settings = self.settings
        self._say(f"training {self.total_steps} steps ({self.sampler.steps_per_epoch} per epoch, global batch "
                  f"{self.sampler.global_batch}) on {self.context.world_size} x {self.device}"
                  f"{' with AMP' if self.amp else ''}, {len(self.dataset)} frames")
        progress = progress_bar("training", self.total_steps, self.console) if self.context.is_main \
            else contextlib.nullcontext(lambda n=1, info=None: None)
        with progress as advance:
            advance(self.step)
            while self.epoch < settings.epochs and self.step < self.total_steps:
                epoch_started = time.perf_counter()
                sums = self._epoch(advance)
                self.epoch += 1
                if self.context.is_main:
                    result.checkpoint = checkpoints.save_checkpoint(self.run_dir, self.model, self.config,
                                                                    self.epoch, self.step)
                    checkpoints.save_resume_state(self.run_dir, result.checkpoint, self.optimizer, self.scaler,
                                                  self.epoch, self.step)
                    terms = "  ".join(f"{name} {value:.4f}" for name, value in sums.items())
                    self._say(f"epoch {self.epoch}/{settings.epochs} (step {self.step}): {terms}  "
                              f"{time.perf_counter() - epoch_started:.1f} s")
                last = self.epoch >= settings.epochs or self.step >= self.total_steps
                if self.val_dataset is not None and (self.epoch % settings.val_interval == 0 or last):
                    result.validations.append((self.epoch, self.step, self._validate()))
                barrier(self.context)
        result.epochs, result.steps = self.epoch, self.step
        result.seconds = time.perf_counter() - started
        return result

    def _epoch(self, advance) -> dict[str, float]:
        """One pass over the train split; returns the epoch's mean loss terms."""
        self.sampler.set_epoch(self.epoch)
        self.dataset.set_epoch(self.epoch)
        self.model.train()
        loader = make_loader(self.dataset, self.sampler, self.data.workers, pin_memory=self.device.type == "cuda")
        sums: dict[str, float] = defaultdict(float)
        counts: dict[str, int] = defaultdict(int)
        for micro_batches in _grouped(batches(loader), self.settings.accumulate):
            lr = learning_rate(self.step, self.total_steps, self.settings.optimizer.lr, self.settings.schedule)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            terms = mean_over_processes(self._optimizer_step(micro_batches), self.context)
            self.step += 1
            for name, value in terms.items():
                # AMP's first steps overflow while the gradient scale settles: they are skipped, not averaged
                if math.isfinite(value):
                    sums[name] += value
                    counts[name] += 1
            if self.log is not None and (self.step % self.settings.log_interval == 0 or self.step == 1
                                         or self.step == self.total_steps):
                self.log.write(self.step, self.epoch, "train", {**terms, "lr": lr})
            advance(1, info=f"epoch {self.epoch + 1}  loss {terms['loss']:.3f}  " + "  ".join(
                f"{name.split('/')[0]} {value:.3f}" for name, value in terms.items()
                if "/" in name))
            if self.step >= self.total_steps:
                break
        return {name: value / counts[name] for name, value in sums.items()}

    def _optimizer_step(self, micro_batches: list[FrameBatch]) -> dict[str, float]:
        """Forward / backward of the micro-batches, then one optimizer step; returns their mean loss terms."""
        terms: dict[str, float] = defaultdict(float)
        share = 1.0 / len(micro_batches)
        for index, batch in enumerate(micro_batches):
            inputs = batch.to(self.device, non_blocking=True).inputs
            # gradients are all-reduced once per step, on the last micro-batch
            sync = contextlib.nullcontext() if index == len(micro_batches) - 1 or not self.context.distributed \
                else self.net.no_sync()
            with sync:
                losses = self.net(inputs)
                self.scaler.scale(losses["loss"] * share).backward()
            for name, value in losses.items():
                terms[name] += float(value.detach()) * share
        if not self.amp and not math.isfinite(terms["loss"]):
            raise V2XError(f"the loss is {terms['loss']} at step {self.step + 1}: training diverged; lower "
                           f"train.optimizer.lr or set train.optimizer.grad_clip")
        clip = self.settings.optimizer.grad_clip
        if clip is not None:
            self.scaler.unscale_(self.optimizer)
            terms["grad_norm"] = float(nn.utils.clip_grad_norm_(self.model.parameters(), clip))
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        return dict(terms)

    def _validate(self) -> dict[str, float]:
        """AP on the val split (main process); logged in full, the headline returned and printed."""
        started = time.perf_counter()
        predictions = predict(self.model, self.val_dataset, self.settings.batch_size, self.data.workers,
                              self.device, self.settings.val_score_threshold)
        evaluation = score(predictions, self.config, label_root(self.config, self.data_root))
        self.log.write(self.step, self.epoch, "val", evaluation.as_dict())
        values = headline(evaluation)
        self._say(f"val after epoch {self.epoch}: " + "  ".join(f"{k} {v:.2f}" for k, v in values.items())
                  + f"  ({len(predictions)} frames, {time.perf_counter() - started:.1f} s)")
        return values


def describe(result: TrainResult) -> str:
    """Printable summary of a finished run."""
    lines = [f"{result.epochs} epochs, {result.steps} steps in {result.seconds:.1f} s -> {result.run_dir}"]
    if result.checkpoint is not None:
        lines.append(f"checkpoint: {result.checkpoint}")
    if result.validations:
        epoch, step, values = result.validations[-1]
        lines.append(f"last validation (epoch {epoch}): " + "  ".join(f"{k} {v:.2f}" for k, v in values.items()))
    return "\n".join(lines)
