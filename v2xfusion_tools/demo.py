"""The main job of README.md: every capability the project has, run end to end on built-in data.

Today: synthetic data set -> read back through the data set readers -> statistics and pictures ->
the guide's data preparation (KITTI: mmdet3d infos, then the V2X-format mirror; DAIR-V2X-I: infos and
the KITTI-format mirror).
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

    console.rule("[bold]3. data preparation (guide §2)")
    prepared = prepare(preset, dataset_dir, root / "prepared", console)

    console.rule("[bold]done")
    console.print(f"data set:  {dataset_dir}\npictures:  {pictures_dir}\nprepared:  {prepared}\n"
                  f"total time {time.perf_counter() - started:.1f} s", highlight=False)


def prepare(preset: str, dataset_dir: Path, prepared_dir: Path, console: Console) -> Path:
    """Run the preset's preparation commands on the raw set; return the mirror folder they wrote.

    KITTI: infos beside the raw set, the V2X-format mirror in prepared_dir (training reads it);
    DAIR-V2X-I: infos beside the raw set (training reads them), the KITTI-format mirror in prepared_dir.
    """
    if preset == "kitti":
        from v2xfusion_tools.datasets.kitti_infos import create_kitti_infos
        from v2xfusion_tools.datasets.kitti_to_v2x import convert_kitti_to_v2x

        console.print(create_kitti_infos(dataset_dir, None, progress=progress_bar).format(), highlight=False)
        console.print(convert_kitti_to_v2x(dataset_dir, prepared_dir, progress=progress_bar).format(),
                      highlight=False)
        return prepared_dir
    from v2xfusion_tools.datasets.dair_prepare import prepare_dair

    console.print(prepare_dair(dataset_dir, prepared_dir, None, progress=progress_bar).format(), highlight=False)
    return prepared_dir
