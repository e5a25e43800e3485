"""End-to-end speed of the runtime pipelines (both presets, A and B, FP32 and INT8) against the PyTorch model.

Run: .venv/bin/python benchmarks/runtime.py [--presets kitti v2x] [--pipelines A B] [--frames 6]
     [--torch-frames 3] [--threads 2] [--precisions fp32 int8] [--work outputs/bench_runtime]

Per preset x pipeline: a synthetic data set at the preset's native camera size (`v2xfusion data
synth`), the full-size model of configs/<preset>/{pointpillars,second_bevpoolv2}.yaml randomly
initialised (speed does not depend on the weights) and exported to an artifact folder, INT8 models
(pipeline A: the quantize step's NNCF PTQ of its four stages on a few frames; pipeline B: NNCF PTQ of
the unified model, mixed preset and histogram ranges as guide §5.2.6, on inputs recorded by the
runtime). Then, each in a process of its own (torch and OpenVINO in one process fight over threads):
the runtime over the frames (`v2xfusion_tools.run.run`: frames read ahead, the latency table) at each
precision, and the PyTorch model's forward on the same frames. Every process runs `--threads` threads.

Printed per case: frames/s end to end (first frame, the warm-up, left out), the mean per-stage split,
the share of the frame time outside model inference (target: <= 15%), and the runtime / PyTorch
frame-rate ratio. Set-up results are kept in --work and reused when present; the timings are not.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODEL_CONFIGS = {"A": "pointpillars", "B": "second_bevpoolv2"}
STATIC_V = 7000   # guide §4.2.4: the deploy PFE's V
CALIBRATION_FRAMES = 4
OVERHEAD_TARGET = 0.15


def config_of(preset: str, pipeline: str) -> dict:
    from v2xfusion_perception.config import CONFIG_ROOT, load_config

    return load_config(CONFIG_ROOT / preset / f"{MODEL_CONFIGS[pipeline]}.yaml")


def fusion_batch(config: dict, frame):
    """One raw frame as the data pipeline feeds it at evaluation time (FusionBatch of one)."""
    import numpy as np
    import torch
    from PIL import Image

    from v2xfusion_tools.data import transforms
    from v2xfusion_tools.datasets.v2x_infos import ground_denorm
    from v2xfusion_tools.models import FusionBatch

    geo = config["geometry"]
    image = np.asarray(Image.open(frame.image_path).convert("RGB"))
    crop = transforms.image_crop((image.shape[1], image.shape[0]), geo["image_size"])
    picture = transforms.apply_image_crop(Image.fromarray(image), crop, geo["image_size"])
    intrinsics = np.eye(4)
    intrinsics[:3, :3] = frame.intrinsics
    plane = transforms.ground_plane_from_denorm(ground_denorm(frame.lidar2cam), frame.lidar2cam)
    return FusionBatch(
        img=torch.from_numpy(transforms.normalise_image(picture, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)))[None],
        points=[torch.from_numpy(np.ascontiguousarray(frame.points, dtype=np.float32))],
        camera_intrinsics=torch.from_numpy(intrinsics).float()[None],
        lidar2camera=torch.from_numpy(frame.lidar2cam).float()[None],
        img_aug_matrix=torch.from_numpy(crop.matrix).float()[None], lidar_aug_matrix=torch.eye(4)[None],
        ground_plane=torch.from_numpy(plane).float()[None])


# ---- steps, each run in its own process ----------------------------------------------------------

def step_prepare(args) -> dict:
    """Synthetic frames, a random full-size model exported, pipeline A's INT8 stages (torch process)."""
    import torch
    from PIL import Image

    from v2xfusion_tools.data import transforms
    from v2xfusion_tools.datasets.raw import open_raw_dataset
    from v2xfusion_tools.datasets.v2x_infos import ground_denorm
    from v2xfusion_tools.export.artifacts import export_artifacts
    from v2xfusion_tools.export.calibration import CameraCalibration
    from v2xfusion_tools.models import build_model
    from v2xfusion_tools.synth import generate

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    case = Path(args.case)
    config = config_of(args.preset, args.pipeline)
    generate(config, args.preset, args.frames, case / "data", seed=0, workers=1)
    dataset = open_raw_dataset(case / "data")
    frames = [dataset.read(frame_id) for frame_id in dataset.frame_ids]
    model = build_model(config).eval()
    torch.save(model.state_dict(), case / "model.pth")
    calibration = None
    if args.pipeline == "B":
        first = frames[0]
        with Image.open(first.image_path) as image:
            size = image.size
        plane = transforms.ground_plane_from_denorm(ground_denorm(first.lidar2cam), first.lidar2cam)
        calibration = CameraCalibration(first.intrinsics, first.lidar2cam, size, plane)
    started = time.perf_counter()
    result = export_artifacts(config, model, case / "artifacts", {"config": f"benchmark {args.preset} {args.pipeline}"},
                              fixed_v=STATIC_V if args.pipeline == "A" else None, calibration=calibration)
    timings = {"export_s": time.perf_counter() - started}
    if args.pipeline == "A" and "int8" in args.precisions:
        from v2xfusion_tools.quantize.pipeline_a import quantize_pipeline_a

        batches = [fusion_batch(config, frame) for frame in frames[:CALIBRATION_FRAMES]]
        started = time.perf_counter()
        quantize_pipeline_a(result.folder, model, batches, batches[:1], threads=args.threads)
        timings["quantize_s"] = time.perf_counter() - started
    return timings


def step_quantize_b(args) -> dict:
    """NNCF PTQ of the unified model on inputs the runtime records (OpenVINO process, no torch)."""
    from v2xfusion_perception.pipeline_options import PipelineOptions
    from v2xfusion_perception.pipelines import open_pipeline
    from v2xfusion_tools.export.manifest import add_model, read_manifest, write_manifest
    from v2xfusion_tools.export.openvino_ir import make_core, save_ir
    from v2xfusion_tools.quantize.ptq import PtqSettings, quantize_model
    from v2xfusion_tools.run import data_set, load_frame

    case = Path(args.case)
    folder = case / "artifacts" / args.preset / "B"
    pipeline = open_pipeline(folder, PipelineOptions(threads=args.threads))
    dataset = data_set(case / "data")
    samples = []
    for frame_id in dataset.frame_ids[:CALIBRATION_FRAMES]:
        frame = load_frame(dataset, frame_id)
        image, points = pipeline.check_frame(frame.image, frame.points, frame.calibration)
        features, coors, _, _ = pipeline.kernels.voxelize_dynamic(points, pipeline.voxel_size, pipeline.pc_range)
        geometry = pipeline.bev_pool_geometry(frame.calibration)
        samples.append({"img": pipeline.camera_input(image, frame.calibration).copy(), "indices": geometry.indices,
                        "intervals": geometry.intervals, "voxel_features": features, "coors": coors})
    manifest = read_manifest(folder)
    source = next(m for m in manifest["stages"]["unified"]["models"] if m["precision"] == "fp32")
    core = make_core(extension=True)
    model = core.read_model(str(folder / source["file"]))
    metadata = {key: json.dumps(value) for key, value in pipeline.stage.metadata.items()}
    started = time.perf_counter()
    quantized = quantize_model(model, samples, PtqSettings(preset="mixed", activation_range="histogram"))
    xml = save_ir(quantized, folder / "bevfusion_unified_int8.xml", metadata, compress_to_fp16=False)
    add_model(manifest, folder, "unified", "int8", xml.name)
    write_manifest(folder, manifest, "benchmark quantize")
    return {"quantize_s": time.perf_counter() - started}


def step_runtime(args) -> dict:
    """The runtime over the frames at one precision (OpenVINO process, no torch)."""
    from v2xfusion_perception.pipeline_options import PipelineOptions
    from v2xfusion_tools.run import RunOptions, run

    case = Path(args.case)
    options = RunOptions(data_root=case / "data", preset=args.preset, pipeline=args.pipeline,
                         artifacts=case / "artifacts" / args.preset / args.pipeline,
                         pipeline_options=PipelineOptions(precision=args.precision, threads=args.threads))
    result = run(options)
    return {"fps": result.fps, "frames": result.frames, "model_share": result.model_share,
            "latency": {name: stats.mean for name, stats in result.latency.items()},
            "model_stages": list(result.model_stages), "detections": result.detections,
            "counters": result.counters}


def step_torch(args) -> dict:
    """The PyTorch model's forward on the same frames (torch process)."""
    import torch

    from v2xfusion_tools.datasets.raw import open_raw_dataset
    from v2xfusion_tools.models import build_model

    torch.set_num_threads(args.threads)
    case = Path(args.case)
    config = config_of(args.preset, args.pipeline)
    model = build_model(config).eval()
    model.load_state_dict(torch.load(case / "model.pth", weights_only=True))
    dataset = open_raw_dataset(case / "data")
    times = []
    with torch.no_grad():
        for frame_id in dataset.frame_ids[:args.torch_frames + 1]:
            batch = fusion_batch(config, dataset.read(frame_id))
            started = time.perf_counter()
            model(batch)
            times.append(time.perf_counter() - started)
    timed = times[1:] if len(times) > 1 else times
    return {"fps": len(timed) / sum(timed), "ms": [t * 1e3 for t in times]}


STEPS = {"prepare": step_prepare, "quantize_b": step_quantize_b, "runtime": step_runtime, "torch": step_torch}


def call(step: str, **values) -> dict:
    """Run one step in a fresh process; its JSON result is the last line it prints."""
    command = [sys.executable, __file__, "--step", step]
    for key, value in values.items():
        flag = "--" + key.replace("_", "-")
        command += [flag, *map(str, value)] if isinstance(value, (list, tuple)) else [flag, str(value)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"step {step} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def report(name: str, runtime: dict, torch_fps: float | None) -> list[str]:
    lines = []
    for precision, found in runtime.items():
        latency = found["latency"]
        total = latency["total"]
        overhead = 1.0 - found["model_share"]
        ratio = f"{found['fps'] / torch_fps:5.2f}x" if torch_fps else "  n/a"
        verdict = "ok" if overhead <= OVERHEAD_TARGET else "OVER TARGET"
        lines.append(f"{name:<10}{precision:<6}{found['fps']:>8.3f}{total:>10.0f}{100 * overhead:>10.1f}%  {verdict:<12}"
                     f"{ratio}")
        split = "  ".join(f"{stage} {ms:.1f}" for stage, ms in latency.items() if stage != "total")
        lines.append(f"{'':<16}split (mean ms): {split}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--step", choices=sorted(STEPS))
    parser.add_argument("--presets", nargs="+", default=["kitti", "v2x"])
    parser.add_argument("--pipelines", nargs="+", default=["A", "B"])
    parser.add_argument("--precisions", nargs="+", default=["fp32", "int8"])
    parser.add_argument("--frames", type=int, default=6)
    parser.add_argument("--torch-frames", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--work", type=Path, default=Path("outputs/bench_runtime"))
    parser.add_argument("--preset", help=argparse.SUPPRESS)
    parser.add_argument("--pipeline", help=argparse.SUPPRESS)
    parser.add_argument("--precision", help=argparse.SUPPRESS)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        print(json.dumps(STEPS[args.step](args)), flush=True)
        # leave without C++ static destructors: the OpenVINO extension's sparse-conv rulebook cache
        # frees its buffers through a SYCL queue destroyed before it and crashes at exit (reported)
        os._exit(0)
    lines = [f"{'case':<10}{'prec':<6}{'frames/s':>8}{'ms/frame':>10}{'overhead':>11}  {'(<= 15%)':<12}vs torch"]
    for preset in args.presets:
        for pipeline in args.pipelines:
            case = args.work / f"{preset}_{pipeline}"
            common = {"preset": preset, "pipeline": pipeline, "case": case, "threads": args.threads}
            ready = case / "prepared.json"
            if not ready.is_file():
                case.mkdir(parents=True, exist_ok=True)
                prepared = call("prepare", frames=args.frames, precisions=args.precisions, **common)
                if pipeline == "B" and "int8" in args.precisions:
                    prepared.update(call("quantize_b", **common))
                ready.write_text(json.dumps(prepared))
            runtime = {precision: call("runtime", precision=precision, **common) for precision in args.precisions}
            torch_result = call("torch", torch_frames=args.torch_frames, **common) if args.torch_frames else None
            torch_fps = torch_result["fps"] if torch_result else None
            case_lines = report(f"{preset} {pipeline}", runtime, torch_fps)
            if torch_result:
                case_lines.append(f"{'':<16}PyTorch FP32: {torch_fps:.3f} frames/s ({args.torch_frames} frames)")
            print("\n".join(case_lines), flush=True)
            lines += case_lines
    print(f"\nthreads: {args.threads}; frames: {args.frames} per case (first left out); overhead = share of the "
          f"pipeline's frame time outside model inference")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
