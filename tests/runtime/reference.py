"""Tools-side reference for the runtime tests, run in its own process (torch and OpenVINO fight over threads).

`python -m tests.runtime.reference OUT --pipeline A|B --preset kitti|v2x` writes under OUT:
* data/      a synthetic data set of the preset (raw KITTI / DAIR layout), objects inside the tiny range;
* artifacts/<preset>/<A|B>/  the export of a tiny model (tests/models/batches.py geometry) whose head was
  briefly fitted to those frames' labels, so that it detects something;
* reference.npz  the PyTorch model's own detections of every frame (eval mode, the data pipeline's
  evaluation-time image resize / crop and ground plane), per frame `<id>/boxes`, `/scores`, `/labels`;
* model.pth  the model's weights (for tests that need the model again).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from tests.models.batches import load_fixture
from v2xfusion_tools.data import transforms
from v2xfusion_tools.datasets.raw import open_raw_dataset
from v2xfusion_tools.datasets.v2x_infos import ground_denorm
from v2xfusion_tools.export.artifacts import export_artifacts
from v2xfusion_tools.export.calibration import CameraCalibration
from v2xfusion_tools.models import FusionBatch, build_model
from v2xfusion_tools.models.heads.losses import gaussian_focal_loss_sum, weighted_l1_sum
from v2xfusion_tools.models.heads.targets import center_targets, task_objects
from v2xfusion_tools.quantize.pipeline_a import quantize_pipeline_a
from v2xfusion_tools.synth import generate

FIT_STEPS = 600
FIT_LR = 0.1


def tiny_config(pipeline: str, preset: str) -> dict:
    """The preset's model config on the tiny geometry, its synthetic scenes moved inside that range."""
    config = load_fixture(pipeline.lower(), preset)
    pc = config["geometry"]["pc_range"]
    scene = dict(config["synthetic"]["scene"])
    scene["x_range"] = [pc[0] + 3.0, pc[3] - 3.0]
    scene["y_range"] = [pc[1] + 3.0, pc[4] - 3.0]
    scene["objects_per_frame"] = [3, 6]
    config["synthetic"] = {**config["synthetic"], "scene": scene}
    return config


def frame_batch(config: dict, frame, image: np.ndarray) -> FusionBatch:
    """One frame as the data pipeline feeds it at evaluation time (no augmentation)."""
    geo = config["geometry"]
    native = (image.shape[1], image.shape[0])
    crop = transforms.image_crop(native, geo["image_size"])
    picture = transforms.apply_image_crop(Image.fromarray(image), crop, geo["image_size"])
    img = transforms.normalise_image(picture, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    intrinsics = np.eye(4)
    intrinsics[:3, :3] = frame.intrinsics
    plane = transforms.ground_plane_from_denorm(ground_denorm(frame.lidar2cam), frame.lidar2cam)
    labels = [config["class_names"].index(name) for name in frame.labels]
    inside = transforms.boxes_in_bev_range(frame.boxes, geo["pc_range"])
    return FusionBatch(
        img=torch.from_numpy(img)[None],
        points=[torch.from_numpy(np.ascontiguousarray(frame.points, dtype=np.float32))],
        camera_intrinsics=torch.from_numpy(intrinsics).float()[None],
        lidar2camera=torch.from_numpy(frame.lidar2cam).float()[None],
        img_aug_matrix=torch.from_numpy(crop.matrix).float()[None],
        lidar_aug_matrix=torch.eye(4)[None],
        ground_plane=torch.from_numpy(plane).float()[None],
        gt_boxes=[torch.from_numpy(frame.boxes[inside]).float()],
        gt_labels=[torch.tensor(labels, dtype=torch.long)[torch.from_numpy(inside)]])


def fit_head(model, batches: list[FusionBatch]) -> None:
    """Fit the last conv of every head branch to the frames' labels (the trunk's features computed
    once, targets drawn once, BatchNorm frozen): Adam on CenterHead's own loss terms, enough for
    heatmap peaks and boxes at the labelled objects."""
    head = model.heads["object"]
    fields = ["heatmap", *head.head_order]
    frames = []
    with torch.no_grad():
        for batch in batches:
            shared = head.shared_conv(model.bev_features(batch))
            tasks = []
            for task_head, class_ids in zip(head.task_heads, head.task_class_ids):
                target = center_targets(*task_objects(batch.gt_boxes[0], batch.gt_labels[0], class_ids),
                                        len(class_ids), head.geometry, head.gaussian_overlap, head.min_radius,
                                        head.max_objs, head.norm_bbox, head.with_velocity)
                features = {name: getattr(task_head, name)[:-1](shared) for name in fields}
                tasks.append((task_head, features, target))
            frames.append(tasks)
    last = [getattr(task_head, name)[-1] for task_head in head.task_heads for name in fields]
    optimiser = torch.optim.Adam([p for layer in last for p in layer.parameters()], lr=FIT_LR)
    for step in range(FIT_STEPS):
        loss = 0.0
        for task_head, features, target in frames[step % len(frames)]:
            out = {name: getattr(task_head, name)[-1](features[name]) for name in fields}
            probability = out["heatmap"].sigmoid().clamp(1e-4, 1 - 1e-4)
            positives = target.heatmap.eq(1).sum().clamp(min=1)
            loss = loss + gaussian_focal_loss_sum(probability[0], target.heatmap) / positives
            regression = torch.cat([out[name] for name in head.head_order], dim=1)[0].flatten(1)
            picked = regression[:, target.ind].T
            weight = target.mask.unsqueeze(-1).float() * head.code_weights
            loss = loss + 0.25 * weighted_l1_sum(picked, target.boxes, weight) / (target.mask.sum() + 1e-4)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--pipeline", choices=("A", "B"), required=True)
    parser.add_argument("--preset", choices=("kitti", "v2x"), required=True)
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--fixed-v", type=int, default=1500)
    parser.add_argument("--int8", action="store_true", help="also quantize pipeline A's four stages (NNCF)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    started = time.perf_counter()
    config = tiny_config(args.pipeline, args.preset)
    data = args.out / "data"
    generate(config, args.preset, args.frames, data, seed=0, workers=1)
    dataset = open_raw_dataset(data)
    frames = [dataset.read(frame_id) for frame_id in dataset.frame_ids]
    images = [np.asarray(Image.open(frame.image_path).convert("RGB")) for frame in frames]
    batches = [frame_batch(config, frame, image) for frame, image in zip(frames, images)]
    model = build_model(config).eval()
    fit_head(model, batches)
    reference = {}
    torch_ms = []
    with torch.no_grad():
        for frame, batch in zip(frames, batches):
            begin = time.perf_counter()
            found = model(batch).detections[0]
            torch_ms.append((time.perf_counter() - begin) * 1e3)
            reference[f"{frame.frame_id}/boxes"] = found.boxes[:, :7].numpy()
            reference[f"{frame.frame_id}/scores"] = found.scores.numpy()
            reference[f"{frame.frame_id}/labels"] = found.labels.numpy().astype(np.int32)
    np.savez(args.out / "reference.npz", **reference)
    torch.save(model.state_dict(), args.out / "model.pth")
    calibration = None
    if args.pipeline == "B":
        first = frames[0]
        plane = transforms.ground_plane_from_denorm(ground_denorm(first.lidar2cam), first.lidar2cam)
        calibration = CameraCalibration(first.intrinsics, first.lidar2cam, (images[0].shape[1], images[0].shape[0]),
                                        plane)
    result = export_artifacts(config, model, args.out / "artifacts", {"config": "tests/runtime tiny"},
                              fixed_v=args.fixed_v if args.pipeline == "A" else None, calibration=calibration)
    if args.int8:
        quantize_pipeline_a(result.folder, model, batches, batches[:1], threads=1)
    summary = {"frames": [f.frame_id for f in frames], "torch_ms": torch_ms,
               "detections": [len(reference[f"{f.frame_id}/scores"]) for f in frames],
               "labels_in_range": [len(b.gt_labels[0]) for b in batches],
               "seconds": time.perf_counter() - started}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
