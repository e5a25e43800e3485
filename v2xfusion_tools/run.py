"""`v2xfusion run DATA_ROOT`: the offline runner (guide §4.2.7, the deploy repo's ./bevfusion).

Every frame of a raw data set (the KITTI or DAIR-V2X-I layouts of datasets/raw.py; a `.../training`
folder as the guide passes it works too) goes through the runtime pipeline the ROS node uses
(v2xfusion_perception.pipelines, no torch). Frames are read and decoded ahead on a thread, a bounded
queue apart, so disk I/O overlaps inference and memory stays flat however many frames run. Optional
outputs: KITTI-format prediction txt files per frame (`--dump-pred`, the evaluator's input), camera +
BEV pictures and an mp4 (`--vis`). The run ends with a per-stage latency table (mean / p50 / p99) and,
where the set has KITTI-format labels (label_2), the AP under the preset's protocol.
"""
from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import numpy as np
from PIL import Image

from v2xfusion_perception.errors import DatasetError, V2XError
from v2xfusion_perception.frame import Calibration, Detections
from v2xfusion_perception.manifest import PIPELINES
from v2xfusion_perception.pipeline_options import PipelineOptions
from v2xfusion_perception.pipelines import open_pipeline
from v2xfusion_tools.datasets import kitti_format
from v2xfusion_tools.datasets.kitti_format import KittiLabels
from v2xfusion_tools.datasets.raw import RawDataset, open_raw_dataset
from v2xfusion_tools.evaluation.io import write_predictions
from v2xfusion_tools.evaluation.kitti_ap import PROTOCOLS, KittiEvaluation, evaluate
from v2xfusion_tools.evaluation.lidar_detections import kitti_from_lidar_detections
from v2xfusion_tools.vis.frame import render_frame

VIDEO_NAME = "bevfusion.mp4"
VIDEO_FPS = 10
# the video's frames are padded to a multiple of this (H.264 macroblocks)
VIDEO_BLOCK = 16
# at most this many frames wait decoded in memory
PREFETCH = 4


@dataclass(frozen=True)
class RunOptions:
    """data_root: a raw data set; preset: kitti | v2x (geometry and AP protocol); pipeline: A | B;
    artifacts: the artifact folder (default artifacts/<preset>/<pipeline>); pipeline_options: device,
    precision, INT8 stages, threads ...; num_samples: only the first N frames; split: frames of one
    split (ImageSets / split_data.json) instead of all; pred_dir: write KITTI-format predictions there;
    vis_dir: write pictures and VIDEO_NAME there."""

    data_root: Path
    preset: str = "v2x"
    pipeline: str = "A"
    artifacts: Path | None = None
    pipeline_options: PipelineOptions = field(default_factory=PipelineOptions)
    num_samples: int | None = None
    split: str | None = None
    pred_dir: Path | None = None
    vis_dir: Path | None = None

    @property
    def artifact_folder(self) -> Path:
        return self.artifacts if self.artifacts is not None else Path("artifacts") / self.preset / self.pipeline


@dataclass(frozen=True)
class LoadedFrame:
    """One frame read from disk: image (H, W, 3) uint8 RGB; points (N, 4) float32 (intensity 0-1);
    calibration for the pipeline; lidar2cam / lidar2img (4, 4) for the KITTI conversion; ground_truth:
    the frame's label_2 objects, or None where the set has no KITTI-format labels."""

    frame_id: str
    image: np.ndarray
    points: np.ndarray
    calibration: Calibration
    lidar2cam: np.ndarray
    lidar2img: np.ndarray
    ground_truth: KittiLabels | None


@dataclass(frozen=True)
class StageLatency:
    """Milliseconds of one stage over the timed frames."""

    mean: float
    p50: float
    p99: float


@dataclass
class RunResult:
    """What a run measured. latency: per stage (pipeline order) plus `total` (the pipeline's time per
    frame); model_stages: the stages that are model inference; fps: frames per second end to end
    (reading, inference, outputs) over the timed frames (the first frame, the warm-up, is left out of
    the timings when there are more); evaluation: the AP, None without labels."""

    frames: int
    seconds: float
    fps: float
    latency: dict[str, StageLatency]
    model_stages: tuple[str, ...]
    counters: dict[str, int]
    evaluation: KittiEvaluation | None = None
    pred_dir: Path | None = None
    video: Path | None = None
    detections: int = 0

    @property
    def model_share(self) -> float:
        """Fraction of the pipeline's mean frame time spent in model inference."""
        total = self.latency["total"].mean if "total" in self.latency else 0.0
        model = sum(self.latency[s].mean for s in self.model_stages if s in self.latency)
        return model / total if total > 0 else 0.0

    def format_latency(self) -> str:
        """The per-stage latency table, the overhead share and the frame rate, as text."""
        lines = [f"{'stage':<12}{'mean ms':>10}{'p50 ms':>10}{'p99 ms':>10}"]
        for name, stats in self.latency.items():
            marker = " *" if name in self.model_stages else ""
            lines.append(f"{name:<12}{stats.mean:>10.1f}{stats.p50:>10.1f}{stats.p99:>10.1f}{marker}")
        lines.append(f"* model inference: {100 * self.model_share:.1f}% of the frame time; runtime overhead "
                     f"(image, voxelization, pooling, scatter, decode, NMS) {100 * (1 - self.model_share):.1f}%")
        lines.append(f"{self.frames} frames, {self.detections} detections, {self.fps:.2f} frames/s end to end "
                     f"({self.seconds:.1f} s)")
        return "\n".join(lines)


def data_set(root: str | Path) -> RawDataset:
    """The raw data set under root; the guide's `<set>/training` folder means its parent."""
    root = Path(root)
    if root.name == "training" and (root / "calib").is_dir() and not (root / "training").is_dir():
        root = root.parent
    return open_raw_dataset(root)


def frame_ids(dataset: RawDataset, split: str | None, num_samples: int | None) -> list[str]:
    """The frames to run: a split's (in its file's order) or all (sorted), the first num_samples."""
    if split is not None:
        if split not in dataset.splits:
            raise DatasetError(f"{dataset.root}: no split {split!r} (has: {', '.join(dataset.splits) or 'none'})")
        ids = list(dataset.splits[split])
    else:
        ids = dataset.frame_ids
    if not ids:
        raise DatasetError(f"{dataset.root}: no frames to run")
    return ids[:num_samples] if num_samples is not None else ids


def load_frame(dataset: RawDataset, frame_id: str) -> LoadedFrame:
    """Read one frame: points, calibration (the training data's convention: intrinsics = P2's 3x3,
    lidar2cam = R0_rect Tr_velo_to_cam for KITTI), image decoded to RGB, label_2 where it exists."""
    raw = dataset.read(frame_id)
    try:
        with Image.open(raw.image_path) as picture:
            image = np.asarray(picture.convert("RGB"))
    except FileNotFoundError:
        raise DatasetError(f"{raw.image_path}: image file not found") from None
    except OSError as exc:
        raise DatasetError(f"{raw.image_path}: cannot read the image ({exc})") from None
    calibration = Calibration(np.asarray(raw.intrinsics, np.float64), np.asarray(raw.lidar2cam, np.float64),
                              (image.shape[1], image.shape[0]))
    label = dataset.files(frame_id).get("label")
    ground_truth = kitti_format.read_labels(label) if dataset.layout == "kitti" and label is not None \
        and label.is_file() else None
    return LoadedFrame(frame_id, image, raw.points, calibration, np.asarray(raw.lidar2cam, np.float64),
                       np.asarray(raw.lidar2img, np.float64), ground_truth)


class FrameReader:
    """Reads frames on a thread into a bounded queue: iterate it for LoadedFrames in order. An error of
    the reader is raised in the iterating thread; `close` stops the thread early."""

    _DONE = object()

    def __init__(self, load: Callable[[str], LoadedFrame], ids: Sequence[str], prefetch: int = PREFETCH) -> None:
        self._load, self._ids = load, list(ids)
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, prefetch))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="frame-reader", daemon=True)
        self._thread.start()

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for frame_id in self._ids:
                if not self._put(self._load(frame_id)):
                    return
        except Exception as exc:  # noqa: BLE001  (any failure is handed to the consumer, which raises it)
            self._put(exc)
            return
        self._put(self._DONE)

    def __iter__(self) -> Iterator[LoadedFrame]:
        while True:
            item = self._queue.get()
            if item is self._DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class VideoWriter:
    """Camera + BEV pictures side by side into an mp4 (the first frame fixes the size), and each
    frame's two PNGs beside it."""

    def __init__(self, folder: Path) -> None:
        import imageio.v2 as imageio

        folder.mkdir(parents=True, exist_ok=True)
        self.folder, self.path = folder, folder / VIDEO_NAME
        self._writer = imageio.get_writer(self.path, fps=VIDEO_FPS, codec="libx264", macro_block_size=1)
        self._size: tuple[int, int] | None = None

    def add(self, frame: LoadedFrame, found: Detections, pc_range: Sequence[float]) -> None:
        """Draw a frame's detections (camera view and bird's-eye view), save both PNGs, append the video."""
        pictures = render_frame(frame.image, frame.points, found.boxes, found.labels, frame.lidar2img, pc_range,
                                found.class_names, found.scores)
        pictures.save(self.folder, frame.frame_id)
        camera, bev = pictures.camera, pictures.bev
        height = camera.height
        bev = bev.resize((max(1, round(bev.width * height / bev.height)), height), Image.BILINEAR)
        canvas = Image.new("RGB", (camera.width + bev.width, height))
        canvas.paste(camera, (0, 0))
        canvas.paste(bev, (camera.width, 0))
        if self._size is None:
            self._size = canvas.size
        if canvas.size != self._size:  # a frame of another image size: fit it to the video's
            canvas = canvas.resize(self._size, Image.BILINEAR)
        padded = Image.new("RGB", (_round_up(self._size[0]), _round_up(self._size[1])))
        padded.paste(canvas, (0, 0))
        self._writer.append_data(np.asarray(padded))

    def close(self) -> None:
        self._writer.close()


def _round_up(value: int) -> int:
    return -(-value // VIDEO_BLOCK) * VIDEO_BLOCK


def latency_table(timings: Sequence[dict[str, float]]) -> dict[str, StageLatency]:
    """Mean / p50 / p99 per stage over frames (stages in first-seen order) plus `total` per frame."""
    names: list[str] = []
    for frame in timings:
        names += [name for name in frame if name not in names]
    table = {}
    for name in [*names, "total"]:
        values = np.array([sum(frame.values()) if name == "total" else frame.get(name, 0.0) for frame in timings])
        if len(values):
            table[name] = StageLatency(float(values.mean()), float(np.percentile(values, 50)),
                                       float(np.percentile(values, 99)))
    return table


def run(options: RunOptions, progress: Callable[[int], None] | None = None) -> RunResult:
    """Run every chosen frame through the pipeline (module docstring). progress: called with 1 per frame."""
    if options.preset not in PROTOCOLS:
        raise V2XError(f"preset: expected one of {', '.join(PROTOCOLS)}, got {options.preset!r}")
    if options.pipeline not in PIPELINES:
        raise V2XError(f"pipeline: expected one of {', '.join(PIPELINES)}, got {options.pipeline!r}")
    dataset = data_set(options.data_root)
    ids = frame_ids(dataset, options.split, options.num_samples)
    pipeline = open_pipeline(options.artifact_folder, options.pipeline_options, preset=options.preset,
                             pipeline=options.pipeline)
    class_names = list(pipeline.class_names)
    pc_range = pipeline.pc_range
    video = VideoWriter(options.vis_dir) if options.vis_dir is not None else None
    timings: list[dict[str, float]] = []
    ground_truth: list[KittiLabels] = []
    predictions: list[KittiLabels] = []
    labelled = True
    count = detections_total = 0
    started = timed_from = time.perf_counter()
    try:
        with FrameReader(lambda frame_id: load_frame(dataset, frame_id), ids) as reader:
            for frame in reader:
                found: Detections = pipeline.infer(frame.image, frame.points, frame.calibration)
                image_size = (frame.image.shape[1], frame.image.shape[0])
                labels = kitti_from_lidar_detections(found.boxes, found.scores, found.labels, class_names,
                                                     frame.lidar2cam, frame.lidar2img, image_size)
                # scored as KITTI-format text (two decimals): the AP of the run is the AP of what
                # --dump-pred writes and the devkit reads back
                labels = kitti_format.parse_labels(kitti_format.format_labels(labels),
                                                   f"predictions of frame {frame.frame_id}")
                if options.pred_dir is not None:
                    write_predictions(options.pred_dir, {frame.frame_id: labels})
                if frame.ground_truth is None:
                    labelled = False
                elif labelled:
                    ground_truth.append(frame.ground_truth)
                    predictions.append(labels)
                if video is not None:
                    video.add(frame, found, pc_range)
                count += 1
                detections_total += len(found)
                if count == 1:
                    timed_from = time.perf_counter()
                timings.append(found.timings)
                if progress is not None:
                    progress(1)
    finally:
        if video is not None:
            video.close()
    ended = time.perf_counter()
    timed = timings[1:] if len(timings) > 1 else timings
    seconds = ended - (timed_from if len(timings) > 1 else started)
    evaluation = None
    if labelled and ground_truth:
        evaluation = evaluate(ground_truth, predictions, protocol=PROTOCOLS[options.preset])
    return RunResult(frames=count, seconds=ended - started, fps=len(timed) / seconds if seconds > 0 else 0.0,
                     latency=latency_table(timed), model_stages=tuple(pipeline.model_stages),
                     counters=dict(pipeline.counters), evaluation=evaluation, pred_dir=options.pred_dir,
                     video=None if video is None else video.path, detections=detections_total)
