"""The main job of README.md: every capability the project has, run end to end on built-in data.

Synthetic data set -> read back through the data set readers -> statistics and pictures -> the guide's
data preparation (KITTI: mmdet3d infos, then the V2X-format mirror; DAIR-V2X-I: infos and the
KITTI-format mirror) -> training on the quick schedule (CPU) -> evaluation and pictures -> export to
ONNX / OpenVINO IR -> NNCF INT8 -> the offline runner in FP32 and INT8 -> a bag of the validation
frames replayed through the launched ROS 2 node.

The training steps need the preset's quick schedule (configs/<preset>/pointpillars_quick.yaml); a
preset without one stops after the data preparation and says so.
"""
from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console

from v2xfusion_perception.config import CONFIG_ROOT, load_config, preset_config_path
from v2xfusion_tools.datasets.check import check_dataset
from v2xfusion_tools.progress import progress_bar
from v2xfusion_tools.synth import generate

# quantization and replay sizes: enough to mean something, small enough for a CPU in minutes
CALIBRATION_FRAMES = 64
VALIDATION_FRAMES = 32
BAG_FRAMES = 20
BAG_RATE = 0.25
PICTURE_FRAMES = 4
# the static-V PFE of the guide (§4.2.4)
FIXED_V = 7000


def quick_config_path(preset: str) -> Path:
    """configs/<preset>/pointpillars_quick.yaml (may not exist)."""
    return CONFIG_ROOT / preset / "pointpillars_quick.yaml"


def run_demo(preset: str, frames: int, out_dir: str | Path, seed: int, console: Console,
             checkpoint: Path | None = None, device: str = "auto", data_only: bool = False) -> None:
    """Run the main job for one preset, writing under out_dir/<preset>/ and printing each step.

    checkpoint: skip training and use this checkpoint of the quick config; device: training device;
    data_only: stop after the data preparation.
    """
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
    written = {"data set": dataset_dir, "pictures": pictures_dir, "prepared": prepared}

    config_path = quick_config_path(preset)
    if not data_only and config_path.is_file():
        written.update(model_steps(preset, config_path, dataset_dir, prepared, root, console, checkpoint, device))
    elif not data_only:
        console.print(f"[yellow]{preset}: no quick schedule ({config_path}); training, export, quantization, the "
                      f"runner and the ROS replay run with --preset kitti[/]", highlight=False)

    console.rule("[bold]done")
    console.print("\n".join(f"{name + ':':<11}{path}" for name, path in written.items())
                  + f"\ntotal time {time.perf_counter() - started:.1f} s", highlight=False)


def model_steps(preset: str, config_path: Path, dataset_dir: Path, prepared: Path, root: Path, console: Console,
                checkpoint: Path | None, device: str) -> dict[str, Path]:
    """Steps 4-10: train, evaluate, draw, export, quantize, run, replay through ROS. Returns what they wrote."""
    import json

    from v2xfusion_tools.export.artifacts import checkpoint_source, export_artifacts, load_model
    from v2xfusion_tools.quantize.pipeline_a import quantize_pipeline_a
    from v2xfusion_tools.quantize.samples import split_frames
    from v2xfusion_tools.training.evaluate import evaluate_checkpoint, headline
    from v2xfusion_tools.training.loop import describe, train
    from v2xfusion_tools.training.settings import train_settings
    from v2xfusion_tools.training.visualize import render_checkpoint

    cfg = load_config(config_path)
    data_root = prepared if preset == "kitti" else dataset_dir
    if checkpoint is None:
        console.rule(f"[bold]4. training on the quick schedule ({config_path.name}, guide §4.2.1)")
        result = train(cfg, root / "run", device=device, data_root=data_root, console=console)
        console.print(describe(result), highlight=False)
        checkpoint = result.checkpoint
    else:
        console.rule(f"[bold]4. training skipped: --checkpoint {checkpoint}")

    console.rule("[bold]5. evaluation on the held-out split (KITTI AP, R40)")
    evaluation = evaluate_checkpoint(cfg, checkpoint, "val", device, data_root, progress=progress_bar).evaluation
    console.print(evaluation.report("R40"), highlight=False)
    console.print("  ".join(f"{k} {v:.2f}" for k, v in headline(evaluation).items()), highlight=False)
    vis_dir = root / "vis"
    render_checkpoint(cfg, checkpoint, vis_dir, "val", 0.3, PICTURE_FRAMES, "pred", device, data_root,
                      progress=progress_bar)
    console.print(f"pictures of {PICTURE_FRAMES} frames -> {vis_dir}", highlight=False)

    console.rule("[bold]6. export: four ONNX files + FP16 IR + manifest (guide §4.2.3-4.2.4)")
    model = load_model(cfg, checkpoint)
    exported = export_artifacts(cfg, model, root / "artifacts", checkpoint_source(config_path, checkpoint),
                                fixed_v=FIXED_V, progress=progress_bar)
    console.print(f"{len(exported.files)} files -> {exported.folder}", highlight=False)

    console.rule(f"[bold]7. NNCF INT8 ({CALIBRATION_FRAMES} calibration + {VALIDATION_FRAMES} validation frames, "
                 f"guide §4.2.5)")
    calibration, validation = split_frames(cfg, "val", CALIBRATION_FRAMES, VALIDATION_FRAMES, data_root)
    report, _ = quantize_pipeline_a(exported.folder, model, calibration, validation,
                                    ap_score_threshold=train_settings(cfg).val_score_threshold,
                                    progress=progress_bar)
    console.print("INT8 vs FP32 on the validation frames: " + json.dumps(report.agreement.as_dict()), highlight=False)

    runs = {}
    for step, precision in ((8, "fp32"), (9, "int8")):
        console.rule(f"[bold]{step}. offline runner, {precision.upper()} (guide §4.2.7 ./bevfusion)")
        runs[precision] = offline_run(preset, dataset_dir, exported.folder, precision, root / f"pred_{precision}",
                                      console)

    console.rule(f"[bold]10. ROS 2: a {BAG_FRAMES}-frame bag replayed through "
                 f"`ros2 launch v2xfusion_perception v2xfusion.launch.py preset:={preset}`")
    from v2xfusion_tools.bags import make_bag
    from v2xfusion_tools.bags.replay import replay_through_node

    bag = root / "bag"
    if bag.exists():
        import shutil

        shutil.rmtree(bag)
    make_bag(dataset_dir, bag, preset=preset, max_frames=BAG_FRAMES, progress=progress_bar)
    replay = replay_through_node(bag, preset, exported.folder, root / "node.log", rate=BAG_RATE)
    console.print(replay.format(), highlight=False)
    return {"run": checkpoint.parent, "vis": vis_dir, "artifacts": exported.folder, **runs, "bag": bag}


def offline_run(preset: str, dataset_dir: Path, artifacts: Path, precision: str, pred_dir: Path,
                console: Console) -> Path:
    """`v2xfusion run` on the validation split; prints its latency table and AP, returns the prediction folder."""
    from v2xfusion_perception.pipeline_options import PipelineOptions
    from v2xfusion_tools.run import RunOptions, data_set, frame_ids, run
    from v2xfusion_tools.training.evaluate import headline

    options = RunOptions(data_root=dataset_dir, preset=preset, pipeline="A", artifacts=artifacts,
                         pipeline_options=PipelineOptions(precision=precision), split="val", pred_dir=pred_dir)
    total = len(frame_ids(data_set(dataset_dir), "val", None))
    with progress_bar(f"run {preset} A {precision}", total) as advance:
        result = run(options, progress=advance)
    console.print(result.format_latency(), highlight=False)
    if result.evaluation is not None:
        console.print("  ".join(f"{k} {v:.2f}" for k, v in headline(result.evaluation).items()), highlight=False)
    return pred_dir


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
