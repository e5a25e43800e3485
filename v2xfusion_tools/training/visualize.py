"""`v2xfusion vis`: the guide's inference_vis (§4.2.2 / §5.2.2): pictures of a checkpoint's detections.

One PNG pair per frame: <out_dir>/camera/<frame>.png (the native image with the 3-D boxes projected)
and <out_dir>/lidar/<frame>.png (top-down view of the points with the ground truth as white footprints
and the boxes in class colours with their scores). mode 'pred' draws the detections above
score_threshold, 'gt' the ground truth alone.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from v2xfusion_perception.errors import V2XError
from v2xfusion_tools.data import V2XDataset, build_dataset, data_settings
from v2xfusion_tools.training.distributed import choose_device
from v2xfusion_tools.training.evaluate import FramePrediction, ProgressFactory, load_model, no_progress, predict
from v2xfusion_tools.vis.frame import draw_bev, draw_camera

MODES = ("pred", "gt")


def render_checkpoint(config: Mapping[str, Any], checkpoint: str | Path, out_dir: str | Path, split: str = "val",
                      score_threshold: float = 0.3, frames: int | None = None, mode: str = "pred",
                      device: str = "auto", data_root: str | Path | None = None,
                      progress: ProgressFactory | None = None) -> list[tuple[Path, Path]]:
    """Write the pictures of the first `frames` frames of a split (None: all); returns the (camera,
    lidar) paths per frame. progress: as evaluate.evaluate_checkpoint's."""
    if mode not in MODES:
        raise V2XError(f"--mode {mode!r}: choose one of {', '.join(MODES)}")
    dataset = build_dataset(config, split, False, data_root)
    indices = list(range(len(dataset) if frames is None else min(frames, len(dataset))))
    predictions: list[FramePrediction | None] = [None] * len(indices)
    if mode == "pred":
        model = load_model(config, checkpoint, choose_device(device))
        with (progress or no_progress)(f"predicting {split}", len(indices)) as advance:
            predictions = predict(model, dataset, 1, data_settings(config).workers, next(model.parameters()).device,
                                  score_threshold, advance, indices=indices)
    out_dir = Path(out_dir)
    (out_dir / "camera").mkdir(parents=True, exist_ok=True)
    (out_dir / "lidar").mkdir(parents=True, exist_ok=True)
    written = []
    with (progress or no_progress)("pictures", len(indices)) as advance:
        for index, found in zip(indices, predictions):
            written.append(render_frame(dataset, index, found, list(config["class_names"]),
                                        config["geometry"]["pc_range"], out_dir))
            advance(1)
    return written


def render_frame(dataset: V2XDataset, index: int, found: FramePrediction | None, class_names: list[str],
                 pc_range: Sequence[float], out_dir: Path) -> tuple[Path, Path]:
    """One frame's picture pair: the predictions `found` over the ground truth, or (found None) the
    ground truth alone. Returns the camera and lidar PNG paths."""
    meta = dataset.meta(index)
    raw = dataset.read(index)
    gt_boxes, gt_labels = dataset.ground_truth(index)
    if found is not None:
        camera = draw_camera(raw.image, found.boxes, found.labels, meta.lidar2img, class_names, found.scores)
        bev = draw_bev(raw.points, found.boxes, found.labels, pc_range, class_names, found.scores,
                       ground_truth=gt_boxes)
    else:
        camera = draw_camera(raw.image, gt_boxes, gt_labels, meta.lidar2img, class_names)
        bev = draw_bev(raw.points, gt_boxes, gt_labels, pc_range, class_names)
    paths = (out_dir / "camera" / f"{meta.frame_id}.png", out_dir / "lidar" / f"{meta.frame_id}.png")
    camera.save(paths[0])
    bev.save(paths[1])
    return paths
