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
    frames: int = typer.Option(20, "--frames", "-n", min=1, help="Frames of the synthetic set."),
    out_dir: Path = typer.Option(Path("outputs/demo"), "--out", "-o", help="Where everything is written."),
    seed: int = typer.Option(0, "--seed", help="Random seed of the synthetic set."),
) -> None:
    """The main job on built-in data: generate a synthetic set, print its statistics, draw a frame.

    Writes OUT/<preset>/dataset (the synthetic set) and OUT/<preset>/pictures (camera + BEV PNGs).
    """
    from v2xfusion_tools.demo import run_demo

    run_demo(preset, frames, out_dir, seed=seed, console=out)


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
