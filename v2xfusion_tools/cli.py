"""The `v2xfusion` command line: one entry point, one thin subcommand per job (style.md §5).

Each subcommand parses its arguments, calls one library function and prints what it produced. Bad
input surfaces as a V2XError and is printed as one line naming the file, key or argument, with a
non-zero exit and no traceback. Heavy modules (torch, openvino) are imported inside the subcommands
so `v2xfusion --help` stays fast.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from v2xfusion_perception.errors import V2XError

console = Console(stderr=True)
out = Console()

app = typer.Typer(
    name="v2xfusion",
    help="Camera + LiDAR BEVFusion for ROS 2: data sets, training, export, quantization, runtime.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
data_app = typer.Typer(help="Data sets: generate synthetic scenes in the KITTI / DAIR-V2X-I formats, prepare "
                            "infos and mirrors (guide §2), check a set.", no_args_is_help=True)
app.add_typer(data_app, name="data")

PresetOption = typer.Option("kitti", "--preset", "-p", help="Data set preset: kitti or v2x (design.md §2).")


@data_app.command("synth")
def data_synth(
    preset: str = PresetOption,
    frames: int = typer.Option(20, "--frames", "-n", min=1, help="Number of frames to generate."),
    out_dir: Path = typer.Option(..., "--out", "-o", help="Output folder (created; existing frames overwritten)."),
    seed: int = typer.Option(0, "--seed", help="Random seed: the same seed gives byte-identical files."),
    workers: int = typer.Option(2, "--workers", "-j", min=1, help="Processes generating frames in parallel."),
) -> None:
    """Generate a synthetic scene set in the exact on-disk format of KITTI (kitti) or DAIR-V2X-I (v2x).

    Ground plane, cars / pedestrians / cyclists, a ray-cast multi-beam LiDAR and a camera image rendered
    with the same calibration; labels in the data set's own coordinates. Seeded and reproducible.
    """
    from v2xfusion_perception.config import load_config, preset_config_path
    from v2xfusion_tools.progress import progress_bar
    from v2xfusion_tools.synth import generate

    cfg = load_config(preset_config_path(preset))
    with progress_bar(f"synthetic {preset}", frames) as advance:
        summary = generate(cfg, preset, frames, out_dir, seed=seed, progress=advance, workers=workers)
    out.print(summary.format(), highlight=False)


@data_app.command("check")
def data_check(
    root: Path = typer.Argument(..., help="Data set root: a KITTI raw folder or a DAIR-V2X-I native folder."),
    preset: Optional[str] = typer.Option(None, "--preset", "-p",
                                         help="Preset for classes and BEV range (default: from the layout)."),
    pictures: Optional[Path] = typer.Option(None, "--pictures", help="Folder for camera + BEV PNGs of frames."),
    picture_frames: int = typer.Option(1, "--picture-frames", min=0, help="How many frames to draw."),
) -> None:
    """Sanity-check a data set: frames per split, missing files, box / point statistics, pictures.

    A prepared folder (holding *_infos_*.pkl) is also summarised from its infos files: frames and objects
    per file, and the files they name that are missing.
    """
    from v2xfusion_perception.config import load_config, preset_config_path
    from v2xfusion_perception.errors import DatasetError
    from v2xfusion_tools.datasets.check import PRESET_OF_LAYOUT, check_dataset, check_infos
    from v2xfusion_tools.datasets.raw import open_raw_dataset
    from v2xfusion_tools.progress import progress_bar

    infos = check_infos(root) if root.is_dir() else []
    for info_report in infos:
        out.print(info_report.format(), highlight=False)
    try:
        dataset = open_raw_dataset(root)
    except DatasetError:
        if not infos:
            raise
        dataset = None
    missing = any(info_report.missing for info_report in infos)
    if dataset is not None:
        cfg = load_config(preset_config_path(preset or PRESET_OF_LAYOUT[dataset.layout]))
        with progress_bar("reading frames", len(dataset.frame_ids)) as advance:
            report = check_dataset(root, cfg, pictures, picture_frames, progress=advance)
        out.print(report.format(), highlight=False)
        missing = missing or bool(report.missing)
    if missing:
        raise typer.Exit(1)


@data_app.command("kitti-infos")
def data_kitti_infos(
    root: Path = typer.Option(..., "--root", help="KITTI 3D Object raw folder (ImageSets/, training/, testing/)."),
    out_dir: Optional[Path] = typer.Option(None, "--out-dir", help="Where the .pkl files go (default: --root)."),
    with_plane: bool = typer.Option(False, "--with-plane", help="Add each frame's road plane from training/planes."),
) -> None:
    """mmdet3d v1.x KITTI infos, as `create_data.py kitti` writes them (guide §2.2.1).

    Writes kitti_infos_{train,val,trainval,test}.pkl ({metainfo, data_list}); test only with ImageSets/test.txt.
    """
    from v2xfusion_tools.datasets.kitti_infos import create_kitti_infos
    from v2xfusion_tools.progress import progress_bar

    summary = create_kitti_infos(root, out_dir, with_plane=with_plane, progress=progress_bar)
    out.print(summary.format(), highlight=False)


@data_app.command("kitti-to-v2x")
def data_kitti_to_v2x(
    src_root: Path = typer.Option(..., "--src-root", help="KITTI raw folder holding kitti_infos_*.pkl."),
    dst_root: Path = typer.Option(..., "--dst-root", help="The V2X-format mirror to write (e.g. data/kitti-v2x)."),
) -> None:
    """The V2X-format mirror of a KITTI folder (guide §2.2.2): symlinks, calib JSONs, V2X infos."""
    from v2xfusion_tools.datasets.kitti_to_v2x import convert_kitti_to_v2x
    from v2xfusion_tools.progress import progress_bar

    summary = convert_kitti_to_v2x(src_root, dst_root, progress=progress_bar)
    out.print(summary.format(), highlight=False)


@data_app.command("dair-prepare")
def data_dair_prepare(
    root: Path = typer.Option(..., "--root", help="DAIR-V2X-I native folder (data_info.json, image/, velodyne/, ...)."),
    kitti_root: Optional[Path] = typer.Option(None, "--kitti-root",
                                              help="KITTI-format mirror to write (default: <root>-kitti beside it)."),
    split_file: Optional[Path] = typer.Option(
        None, "--split-file", help="DAIR's single-infrastructure split JSON (default: <root>/split*.json)."),
) -> None:
    """DAIR-V2X-I infos (dair_12hz_infos_{train,val}.pkl) and the KITTI-format mirror (guide §2.1)."""
    from v2xfusion_tools.datasets.dair_prepare import prepare_dair
    from v2xfusion_tools.progress import progress_bar

    summary = prepare_dair(root, kitti_root, split_file, progress=progress_bar)
    out.print(summary.format(), highlight=False)


@app.command("demo")
def demo(
    preset: str = PresetOption,
    frames: int = typer.Option(400, "--frames", "-n", min=1,
                               help="Frames of the synthetic set (half train, half val; the quick schedule wants 400)."),
    out_dir: Path = typer.Option(Path("outputs/demo"), "--out", "-o", help="Where everything is written."),
    seed: int = typer.Option(0, "--seed", help="Random seed of the synthetic set."),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint",
                                              help="Skip training: use this checkpoint of the quick schedule."),
    device: str = typer.Option("auto", "--device", help="Training / evaluation device: auto | cpu | cuda."),
    data_only: bool = typer.Option(False, "--data-only", help="Stop after the data preparation (steps 1-3)."),
) -> None:
    """The main job on built-in data, end to end: synthetic set -> data preparation -> training (quick
    schedule, ~15-20 min on 2 CPU cores) -> AP and pictures -> ONNX / IR export -> INT8 -> offline runner
    -> a bag replayed through the launched ROS 2 node.

    Writes under OUT/<preset>/: dataset, pictures, prepared, run, vis, artifacts, pred_fp32, pred_int8, bag.
    """
    from v2xfusion_tools.demo import run_demo

    run_demo(preset, frames, out_dir, seed=seed, console=out, checkpoint=checkpoint, device=device,
             data_only=data_only)


bag_app = typer.Typer(help="rosbag2 bags (mcap / sqlite3) of a data set for the ROS 2 node: write one, play one "
                           "back with its recorded timing.", no_args_is_help=True)
app.add_typer(bag_app, name="bag")


@bag_app.command("make")
def bag_make(
    data_root: Path = typer.Argument(..., help="Data set root: a KITTI raw folder or a DAIR-V2X-I native folder."),
    preset: Optional[str] = typer.Option(None, "--preset", "-p",
                                         help="Preset recorded in the bag (default: from the layout, kitti / v2x)."),
    out_bag: Path = typer.Option(..., "--out", "-o", help="The bag folder to create (must not exist)."),
    storage: str = typer.Option("mcap", "--storage", help="rosbag2 storage: mcap or sqlite3."),
    frames: Optional[int] = typer.Option(None, "--frames", "-n", min=1, help="Only the first N frames in time order."),
    frame_rate: float = typer.Option(10.0, "--frame-rate", min=0.001,
                                     help="Frames per second for data sets without timestamps (KITTI: 10 Hz)."),
) -> None:
    """Write Image, CameraInfo, PointCloud2 and /tf_static of every frame, at the data set's own timing.

    DAIR-V2X-I frames keep their camera and LiDAR timestamps; KITTI frames are stamped at --frame-rate.
    Topics: /camera/image_raw, /camera/camera_info, /lidar/points, /tf_static (the launch file's defaults).
    """
    from v2xfusion_perception.config import preset_config_path
    from v2xfusion_tools.bags import make_bag
    from v2xfusion_tools.progress import progress_bar

    if preset is not None:
        preset_config_path(preset)  # an unknown preset is an error naming the known ones
    summary = make_bag(data_root, out_bag, preset=preset, storage=storage, max_frames=frames, frame_rate=frame_rate,
                       progress=progress_bar)
    out.print(summary.format(), highlight=False)


@bag_app.command("play")
def bag_play(
    bag: Path = typer.Argument(..., help="A rosbag2 bag folder (mcap or sqlite3)."),
    rate: float = typer.Option(1.0, "--rate", "-r", min=0.001, help="Playback speed: 2.0 plays twice as fast."),
    delay: float = typer.Option(1.0, "--delay", min=0.0,
                                help="Seconds to wait after creating the publishers, for subscribers to connect."),
    wait_for_subscribers: int = typer.Option(0, "--wait-for-subscribers", min=0,
                                             help="Then also wait until every topic has this many subscribers."),
) -> None:
    """Publish a bag's messages with their recorded timing (raw CDR, not re-encoded) on ROS_DOMAIN_ID.

    There is no `ros2 bag` without rclcpp; this is the player for the node's bags. Ctrl-C stops it.
    """
    from v2xfusion_tools.bags import play_bag

    summary = play_bag(bag, rate=rate, delay=delay, wait_for_subscribers=wait_for_subscribers)
    out.print(summary.format(), highlight=False)


ConfigArgument = typer.Argument(..., help="Model config with data / train sections "
                                          "(e.g. configs/kitti/pointpillars.yaml).")
CheckpointArgument = typer.Argument(..., help="Checkpoint written by `v2xfusion train` (e.g. RUN_DIR/latest.pth).")
DeviceOption = typer.Option("auto", "--device", help="auto | cpu | cuda.")
DataRootOption = typer.Option(None, "--data-root", help="Replaces the config's dataset_root (dataset_kitti_root "
                                                        "moves with it when it lies under it).")
SplitOption = typer.Option("val", "--split", help="Split of the config's data.infos.")


@app.command("train")
def train_command(
    config: Path = ConfigArgument,
    run_dir: Path = typer.Option(..., "--run-dir", help="Folder for epoch_N.pth, latest.pth, resume.pth, metrics.csv."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --run-dir after its last saved epoch."),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda (under torchrun: the GPU LOCAL_RANK)."),
    data_root: Optional[Path] = DataRootOption,
) -> None:
    """Train the config's model on its train split (guide §4.2.1 / §5.2.1), validating on its val split.

    One process on the CPU or one GPU (AMP); several GPUs or hosts with torchrun, the same command:
    torchrun --nproc_per_node 4 $(which v2xfusion) train CONFIG --run-dir DIR
    """
    import os

    from v2xfusion_perception.config import load_config
    from v2xfusion_tools.training.loop import describe, train

    result = train(load_config(config), run_dir, device=device, resume=resume, data_root=data_root, console=console)
    if int(os.environ.get("RANK", "0")) == 0:
        out.print(describe(result), highlight=False)


@app.command("eval")
def eval_command(
    config: Path = ConfigArgument,
    checkpoint: Path = CheckpointArgument,
    split: str = SplitOption,
    protocol: Optional[str] = typer.Option(None, "--protocol",
                                           help="kitti | v2x (the DAIR-V2X-I variant); default: the config's preset."),
    score_threshold: Optional[float] = typer.Option(
        None, "--score-threshold", help="Score threshold of the decoded boxes (default: train.val_score_threshold)."),
    labels: Optional[Path] = typer.Option(None, "--labels", help="label_2 folder of the ground truth "
                                                                 "(default: the config's dataset_kitti_root)."),
    data_root: Optional[Path] = DataRootOption,
    device: str = DeviceOption,
    out_json: Optional[Path] = typer.Option(None, "--out", help="Write every AP as JSON (mmdet3d's key names)."),
    dump_pred: Optional[Path] = typer.Option(None, "--dump-pred",
                                             help="Also write the predictions as KITTI txt files."),
) -> None:
    """KITTI-style AP of a checkpoint on a split: R40 and R11, 2-D / BEV / 3-D, easy / moderate / hard."""
    import json

    from v2xfusion_perception.config import load_config
    from v2xfusion_tools.progress import progress_bar
    from v2xfusion_tools.training.evaluate import evaluate_checkpoint, headline

    result = evaluate_checkpoint(load_config(config), checkpoint, split, device, data_root, labels, score_threshold,
                                 protocol, dump_dir=dump_pred, progress=progress_bar)
    evaluation = result.evaluation
    out.print(evaluation.report("R40"), highlight=False)
    out.print(evaluation.report("R11"), highlight=False)
    out.print("  ".join(f"{name} {value:.2f}" for name, value in headline(evaluation).items())
              + f"   ({len(result.predictions)} frames, labels {result.labels}, {result.seconds:.1f} s)",
              highlight=False)
    if out_json is not None:
        out_json.parent.mkdir(parents=True, exist_ok=True)
        out_json.write_text(json.dumps(evaluation.as_dict(), indent=1))


@app.command("vis")
def vis_command(
    config: Path = ConfigArgument,
    checkpoint: Path = CheckpointArgument,
    split: str = SplitOption,
    mode: str = typer.Option("pred", "--mode", help="pred: the checkpoint's boxes; gt: the ground truth."),
    bbox_score: float = typer.Option(0.3, "--bbox-score", help="Score threshold of the drawn boxes."),
    out_dir: Path = typer.Option(Path("viz"), "--out-dir",
                                 help="Writes OUT/camera/<frame>.png and OUT/lidar/<frame>.png."),
    frames: Optional[int] = typer.Option(None, "--frames", "-n", min=1, help="Only the first N frames of the split."),
    data_root: Optional[Path] = DataRootOption,
    device: str = DeviceOption,
) -> None:
    """Pictures of a checkpoint's detections (guide §4.2.2 inference_vis): camera view with projected 3-D boxes,
    top-down view with points, ground truth (white) and predictions, one PNG pair per frame."""
    from v2xfusion_perception.config import load_config
    from v2xfusion_tools.progress import progress_bar
    from v2xfusion_tools.training.visualize import render_checkpoint

    written = render_checkpoint(load_config(config), checkpoint, out_dir, split, bbox_score, frames, mode, device,
                                data_root, progress=progress_bar)
    out.print(f"{len(written)} frames -> {out_dir / 'camera'}, {out_dir / 'lidar'}", highlight=False)


@app.command("run")
def run_command(
    data_root: Path = typer.Argument(..., help="Data set: a KITTI-layout folder (or its training/ folder, as the "
                                               "guide passes it) or a DAIR-V2X-I native folder."),
    preset: str = typer.Option("v2x", "--preset", "-p", help="kitti | v2x: geometry, artifacts and AP protocol."),
    pipeline: str = typer.Option("A", "--pipeline", help="A (PointPillars split, 4 models) | B (SECOND unified)."),
    artifacts: Optional[Path] = typer.Option(None, "--artifacts",
                                             help="Artifact folder (default: artifacts/<preset>/<pipeline>)."),
    int8: bool = typer.Option(False, "--int8", help="INT8 models (pipeline A: all four stages)."),
    int8_camera: bool = typer.Option(False, "--int8-camera", help="Pipeline A: INT8 camera backbone."),
    int8_pfe: bool = typer.Option(False, "--int8-pfe", help="Pipeline A: INT8 PFE (static V)."),
    int8_fuser: bool = typer.Option(False, "--int8-fuser", help="Pipeline A: INT8 fuser."),
    int8_head: bool = typer.Option(False, "--int8-head", help="Pipeline A: INT8 head."),
    fp16: bool = typer.Option(False, "--fp16", help="FP16 models (IR with FP16 weights)."),
    num_samples: Optional[int] = typer.Option(None, "--num-samples", min=1, help="Only the first N frames."),
    split: Optional[str] = typer.Option(None, "--split", help="Only the frames of this split (default: all)."),
    dump_pred: bool = typer.Option(False, "--dump-pred", help="Write KITTI-format predictions (one txt per frame)."),
    pred_dir: Path = typer.Option(Path("pred"), "--pred-dir", help="Where --dump-pred writes."),
    vis: bool = typer.Option(False, "--vis", help="Write camera + BEV PNGs per frame and bevfusion.mp4."),
    vis_dir: Path = typer.Option(Path("vis"), "--vis-dir", help="Where --vis writes."),
    device: str = typer.Option("CPU", "--device", help="OpenVINO device: CPU | GPU | AUTO."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="CPU inference threads."),
    score_threshold: Optional[float] = typer.Option(None, "--score-threshold",
                                                    help="Replaces the manifest's score threshold."),
    kernels_backend: str = typer.Option("host", "--kernels-backend", help="Kernels: host | sycl | auto."),
    kernels_device: Optional[str] = typer.Option(None, "--kernels-device",
                                                 help="SYCL device selector for sycl / auto (e.g. level_zero:gpu)."),
) -> None:
    """Run a data set through the runtime pipeline (guide §4.2.7 ./bevfusion): per-stage latency table
    (mean / p50 / p99) and, where the set has label_2 files, the AP of the preset's protocol."""
    from v2xfusion_perception.pipeline_options import PipelineOptions
    from v2xfusion_tools.progress import progress_bar
    from v2xfusion_tools.run import RunOptions, data_set, frame_ids, run

    toggles = tuple(name for name, on in (("camera", int8_camera), ("pfe", int8_pfe), ("fuser", int8_fuser),
                                          ("head", int8_head)) if on)
    if fp16 and (int8 or toggles):
        raise V2XError("--fp16 and --int8 / --int8-<stage>: choose one precision")
    precision = "int8" if int8 or toggles else "fp16" if fp16 else "fp32"
    options = RunOptions(
        data_root=data_root, preset=preset, pipeline=pipeline, artifacts=artifacts,
        pipeline_options=PipelineOptions(device=device, precision=precision, int8_stages=() if int8 else toggles,
                                         threads=threads, score_threshold=score_threshold,
                                         kernels_backend=kernels_backend, kernels_device=kernels_device),
        num_samples=num_samples, split=split, pred_dir=pred_dir if dump_pred else None,
        vis_dir=vis_dir if vis else None)
    total = len(frame_ids(data_set(data_root), split, num_samples))
    with progress_bar(f"run {preset} {pipeline} {precision}", total) as advance:
        result = run(options, progress=advance)
    out.print(result.format_latency(), highlight=False)
    if result.evaluation is not None:
        out.print(result.evaluation.report("R40"), highlight=False)
    else:
        out.print("AP: the data set has no KITTI-format labels (label_2) for these frames", highlight=False)
    if result.pred_dir is not None:
        out.print(f"predictions -> {result.pred_dir}", highlight=False)
    if result.video is not None:
        out.print(f"pictures and video -> {result.video}", highlight=False)


ArtifactsOption = typer.Option(Path("artifacts"), "--out", "-o",
                               help="Artifacts root: writes OUT/<preset>/<A|B>/ with its manifest.json.")


@app.command("export")
def export_command(
    config: Path = ConfigArgument,
    checkpoint: Optional[Path] = typer.Argument(None, help="Checkpoint written by `v2xfusion train` "
                                                           "(not needed with --geometry-only)."),
    out_dir: Path = ArtifactsOption,
    fixed_v: Optional[int] = typer.Option(None, "--fixed-v", min=1,
                                          help="Pipeline A: also a static-V PFE padded to V pillars (guide: 7000)."),
    calib: Optional[Path] = typer.Option(None, "--calib", help="Pipeline B: calibration file (JSON / YAML, or KITTI "
                                                               "calib .txt) for the BEVPool-v2 geometry."),
    split: str = typer.Option("val", "--split", help="Pipeline B without --calib: split of the frame whose "
                                                     "calibration gives the geometry."),
    sample_idx: int = typer.Option(0, "--sample-idx", min=0, help="That frame's index in the split."),
    image_size: Optional[tuple[int, int]] = typer.Option(None, "--image-size", help="Native image W H (a KITTI "
                                                                                    "calib .txt lacks it)."),
    ground_plane: Optional[tuple[float, float, float, float]] = typer.Option(
        None, "--ground-plane", help="a b c d of the ground plane in the LiDAR frame (height bins; overrides the file's)."),
    fp16: bool = typer.Option(False, "--fp16", help="Pipeline B: also the FP16-weight ONNX (guide §5.3 step 7)."),
    geometry_only: bool = typer.Option(False, "--geometry-only",
                                       help="Only the BEVPool-v2 geometry files into --out (guide precompute_geometry)."),
    data_root: Optional[Path] = DataRootOption,
) -> None:
    """Export a trained model to the artifact folder the runtime loads (guide §4.2.3-4.2.4, §5.2.3-5.2.4).

    Pipeline A (PointPillars config): camera.backbone / lidar_pfe (dynamic V, and static V with --fixed-v) /
    fuser / head ONNX, FP16 IR of each. Pipeline B (SparseEncoder config): BEVPool-v2 geometry of one
    calibration, the unified ONNX with custom ops, its FP16 IR. Both: manifest.json with every geometry
    number and file hash.
    """
    from dataclasses import replace

    import numpy as np

    from v2xfusion_perception.config import load_config
    from v2xfusion_tools.export.artifacts import checkpoint_source, export_artifacts, load_model, pipeline_of
    from v2xfusion_tools.export.calibration import calibration_from_dataset, read_calibration_file
    from v2xfusion_tools.export.geometry import precompute_geometry, write_geometry
    from v2xfusion_tools.models import build_model
    from v2xfusion_tools.progress import progress_bar

    cfg = load_config(config)
    calibration = None
    if calib is not None:
        calibration = read_calibration_file(calib, image_size, ground_plane)
    if geometry_only:
        if calibration is None:
            calibration = calibration_from_dataset(cfg, split, sample_idx, data_root)
        if ground_plane is not None:
            calibration = replace(calibration, ground_plane=np.asarray(ground_plane, dtype=np.float64))
        geometry = precompute_geometry(build_model(cfg).encoders["camera"]["vtransform"], calibration)
        names = write_geometry(out_dir, geometry, calibration)
        out.print(f"{geometry.indices.shape[0]} indices, {geometry.intervals.shape[0]} intervals -> "
                  f"{', '.join(str(out_dir / n) for n in names)}", highlight=False)
        return
    if checkpoint is None:
        raise V2XError("CHECKPOINT: export needs the trained weights (only --geometry-only works without)")
    model = load_model(cfg, checkpoint)
    if pipeline_of(model) == "B" and calibration is None:
        calibration = calibration_from_dataset(cfg, split, sample_idx, data_root)
    if calibration is not None and ground_plane is not None:
        calibration = replace(calibration, ground_plane=np.asarray(ground_plane, dtype=np.float64))
    result = export_artifacts(cfg, model, out_dir, checkpoint_source(config, checkpoint), fixed_v=fixed_v,
                              calibration=calibration, fp16_onnx=fp16, progress=progress_bar)
    out.print(f"{len(result.files)} files -> {result.folder}\nmanifest: {result.manifest}", highlight=False,
              soft_wrap=True)


@app.command("quantize")
def quantize_command(
    config: Path = ConfigArgument,
    checkpoint: Optional[Path] = typer.Argument(None, help="Pipeline A: the checkpoint the artifacts were exported "
                                                           "from (stage inputs come from the PyTorch model)."),
    artifacts: Optional[Path] = typer.Option(None, "--artifacts", help="Artifact folder (default: "
                                                                       "artifacts/<preset>/<A|B>)."),
    split: str = typer.Option("val", "--split", help="Split the calibration and validation frames come from."),
    n_calib: int = typer.Option(300, "--n-calib", min=1, help="Calibration frames (the first of the split)."),
    n_val: int = typer.Option(100, "--n-val", min=1, help="Held-out validation frames (the next ones)."),
    stage_name: str = typer.Option("all", "--stage", help="Pipeline B: all | dump | pseudo-gt | quantize "
                                                          "(guide §5.2.6's three stages)."),
    calib_dir: Optional[Path] = typer.Option(None, "--calib-dir", help="Pipeline B: where the voxel dump goes "
                                                                       "(default: work_dirs/calib_voxels/<preset>)."),
    preset_name: str = typer.Option("mixed", "--preset", help="Pipeline B: NNCF preset, mixed | performance."),
    activation_range: str = typer.Option("histogram", "--activation-range",
                                         help="Pipeline B: histogram | minmax activation range estimator."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="OpenVINO inference threads."),
    data_root: Optional[Path] = DataRootOption,
) -> None:
    """NNCF post-training INT8 quantization of an exported artifact folder (guide §4.2.5, §5.2.6).

    Pipeline A: each of the four stages on its own FP32 inputs (static-V PFE preferred), then INT8 vs FP32
    box agreement on the held-out frames. Pipeline B: voxel dump, FP32 pseudo ground truth, PTQ; the
    agreement with the pseudo ground truth is reported. Results go into the folder's manifest.
    """
    import json

    from v2xfusion_perception.config import load_config
    from v2xfusion_tools.export.manifest import artifact_dir
    from v2xfusion_tools.progress import progress_bar

    cfg = load_config(config)
    lidar_type = cfg["model"]["encoders"]["lidar"]["backbone"]["type"]
    pipeline = "A" if lidar_type == "PointPillarsEncoder" else "B"
    folder = artifacts or artifact_dir("artifacts", cfg["preset"], pipeline)
    if pipeline == "A":
        from v2xfusion_tools.export.artifacts import load_model
        from v2xfusion_tools.quantize.ground_truth import ap_against_labels, record_ap
        from v2xfusion_tools.quantize.pipeline_a import quantize_pipeline_a
        from v2xfusion_tools.quantize.samples import split_frames
        from v2xfusion_tools.training.evaluate import label_root
        from v2xfusion_tools.training.settings import train_settings

        if checkpoint is None:
            raise V2XError("CHECKPOINT: Pipeline A's quantization runs the PyTorch model for each stage's inputs")
        calibration, validation = split_frames(cfg, split, n_calib, n_val, data_root)
        labels = label_root(cfg, data_root)
        low = train_settings(cfg).val_score_threshold if cfg.get("train") is not None else None
        report, boxes = quantize_pipeline_a(folder, load_model(cfg, checkpoint), calibration, validation,
                                            threads=threads, ap_score_threshold=low, progress=progress_bar)
        result = report.as_dict()
        if labels.is_dir() and low is not None:
            result["ap_against_labels"] = {"fp32": ap_against_labels(cfg, validation, boxes.fp32_for_ap, labels),
                                           "int8": ap_against_labels(cfg, validation, boxes.int8_for_ap, labels)}
            record_ap(folder, result["ap_against_labels"])
        out.print(json.dumps(result, indent=1), highlight=False)
        return
    from dataclasses import replace

    from v2xfusion_tools.quantize import pipeline_b

    if stage_name not in ("all", "dump", "pseudo-gt", "quantize"):
        raise V2XError(f"--stage: expected all, dump, pseudo-gt or quantize, got {stage_name!r}")
    calib_dir = calib_dir or Path("work_dirs") / "calib_voxels" / cfg["preset"]
    cache = calib_dir / "_pseudo_gt.npz"
    if stage_name in ("all", "dump"):
        written = pipeline_b.dump_voxels(cfg, calib_dir, split, n_calib + n_val, data_root, progress_bar)
        if written < n_calib + n_val:
            raise V2XError(f"--n-calib {n_calib} + --n-val {n_val}: split {split!r} has only {written} frames")
    if stage_name in ("all", "pseudo-gt"):
        pipeline_b.pseudo_gt(folder, calib_dir, cache, n_calib, n_val, threads, progress_bar)
    if stage_name in ("all", "quantize"):
        settings = replace(pipeline_b.DEFAULT_SETTINGS, preset=preset_name, activation_range=activation_range)
        result = pipeline_b.quantize_unified(folder, calib_dir, cache, n_calib, n_val, settings, threads, progress_bar)
        out.print(json.dumps(result.agreement.as_dict(), indent=1) + f"\nINT8 IR -> {result.int8_file}",
                  highlight=False)


@app.command("convert-checkpoint")
def convert_checkpoint_command(
    config: Path = ConfigArgument,
    checkpoint: Path = typer.Argument(..., help="Published PointPillars BEVFusion / CUDA-V2XFusion state dict (.pth)."),
    out_dir: Path = ArtifactsOption,
    fixed_v: Optional[int] = typer.Option(None, "--fixed-v", min=1, help="Also a static-V PFE (guide: 7000)."),
    save: Optional[Path] = typer.Option(None, "--save", help="Also save the mapped weights as our checkpoint."),
    allow_missing: bool = typer.Option(False, "--allow-missing",
                                       help="Export even when model weights are missing from the checkpoint."),
) -> None:
    """Map a published Pipeline A checkpoint onto our model by name and export it (the guide's weight-conversion
    path: NVIDIA .pth -> 4 ONNX + IR, no retraining). Unmatched keys are listed."""
    from v2xfusion_perception.config import load_config
    from v2xfusion_tools.export.convert_checkpoint import convert_checkpoint
    from v2xfusion_tools.progress import progress_bar

    report, result = convert_checkpoint(load_config(config), checkpoint, out_dir, config, fixed_v, save, allow_missing,
                                        progress_bar)
    out.print(report.format(), highlight=False, soft_wrap=True)
    out.print(f"{len(result.files)} files -> {result.folder}\nmanifest: {result.manifest}", highlight=False,
              soft_wrap=True)


def main(argv: Optional[list[str]] = None) -> int:
    """Run the CLI; a V2XError becomes one red line on stderr and exit code 2.

    Click handles usage errors, --help and exit codes itself (it raises SystemExit); only our own
    input errors are caught here.
    """
    started = time.perf_counter()
    try:
        app(args=argv)
    except V2XError as exc:
        console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        console.print(f"[yellow]interrupted after {time.perf_counter() - started:.1f} s[/]")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
