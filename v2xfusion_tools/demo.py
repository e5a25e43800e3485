"""The main job of README.md: every capability the project has, run end to end on built-in data.

Today: synthetic data set -> read back through the data set readers -> statistics and pictures.
Each later stage (training, export, quantization, runtime, ROS replay) appends its step here.
"""
from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console

from v2xfusion_perception.config import load_config, preset_config_path
from v2xfusion_tools.datasets.check import check_dataset
from v2xfusion_tools.progress import progress_bar
from v2xfusion_tools.synth import generate


def run_demo(preset: str, frames: int, out_dir: str | Path, seed: int, console: Console) -> None:
    """Run the main job for one preset, writing under out_dir/<preset>/ and printing each step."""
    cfg = load_config(preset_config_path(preset))
    root = Path(out_dir) / preset
    dataset_dir, pictures_dir = root / "dataset", root / "pictures"
    started = time.perf_counter()

    console.rule(f"[bold]1. synthetic {preset} data set ({frames} frames)")
    with progress_bar("generating frames", frames) as advance:
        summary = generate(cfg, preset, frames, dataset_dir, seed=seed, progress=advance)
    console.print(summary.format(), highlight=False)

    console.rule("[bold]2. read back through the data set readers")
    with progress_bar("reading frames", frames) as advance:
        report = check_dataset(dataset_dir, cfg, pictures_dir, picture_frames=1, progress=advance)
    console.print(report.format(), highlight=False)
    if report.missing:
        raise RuntimeError(f"the synthetic set at {dataset_dir} is incomplete: {len(report.missing)} files missing")

    console.rule("[bold]done")
    console.print(f"data set:  {dataset_dir}\npictures:  {pictures_dir}\n"
                  f"total time {time.perf_counter() - started:.1f} s", highlight=False)
