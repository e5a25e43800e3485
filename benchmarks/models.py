"""Latency of every exported model: PyTorch eager vs OpenVINO FP32 vs FP16 vs INT8, as ratios, in one run.

    .venv/bin/python benchmarks/models.py [--preset v2x|kitti] [--threads 2] [--repeats 5] [--workdir DIR]

Builds the preset's Pipeline A and B models at full size (random weights with BatchNorm statistics of
the inputs: latency does not depend on training), exports them (export/artifacts.py), quantizes them
on a few frames (quantize/), then times each model in its own process, torch and OpenVINO never
sharing one (they fight over threads, design.md §3 (c)), both pinned to --threads. Inputs are one
synthetic frame: the preset's synthetic camera (the geometry of the unified model) and a point cloud
whose density falls with range as a spinning LiDAR's. Prints per model the median latency and the
ratios the project targets (camera backbone: OpenVINO FP32 >= 1.5x PyTorch, INT8 >= 1.5x FP32), and
the share of the unified model's time spent in our custom ops (OpenVINO per-node profiling).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
STAGES_A = ("camera.backbone", "lidar_pfe", "fuser", "head")
CUSTOM_OPS = ("BevPoolV2", "SparseConvolution", "SparseToDense")
STATIC_V = 7000
TARGETS = {"OpenVINO FP32 vs PyTorch (camera.backbone)": 1.5, "INT8 vs OpenVINO FP32 (camera.backbone)": 1.5}


def synthetic_points(config: dict, seed: int = 0, count: int = 120_000) -> np.ndarray:
    """(N, 4) float32: ground returns with a spinning LiDAR's 1/r density plus returns off a few boxes."""
    rng = np.random.default_rng(seed)
    pc = np.asarray(config["geometry"]["pc_range"], dtype=np.float32)
    ground = -float(config["synthetic"]["lidar"]["mount_height"])
    radius = rng.uniform(2.0, math.hypot(pc[3], max(abs(pc[1]), abs(pc[4]))), count)
    angle = rng.uniform(-math.pi, math.pi, count)
    xyz = np.stack([radius * np.cos(angle), radius * np.sin(angle), ground + 0.05 * rng.standard_normal(count)], 1)
    centres = np.stack([rng.uniform(pc[0] + 5, pc[3] - 5, 20), rng.uniform(pc[1] + 5, pc[4] - 5, 20)], 1)
    objects = np.repeat(centres, 400, 0) + rng.normal(0, 0.8, (8000, 2))
    objects = np.concatenate([objects, ground + rng.uniform(0, 1.6, (8000, 1))], 1)
    points = np.concatenate([xyz, objects]).astype(np.float32)
    return np.concatenate([points, rng.uniform(0, 1, (len(points), 1)).astype(np.float32)], 1)


def frame_batch(config: dict, seed: int = 0):
    """One FusionBatch at full size: random image, the synthetic rig's camera and ground plane."""
    import torch

    from v2xfusion_tools.models import FusionBatch
    from v2xfusion_tools.synth.rig import build_rig
    from v2xfusion_tools.export.calibration import image_aug_matrix

    rig = build_rig(config["synthetic"], config["preset"], seed)
    width, height = config["geometry"]["image_size"]
    intrinsics = torch.eye(4)
    intrinsics[:3, :3] = torch.from_numpy(rig.intrinsic)
    points = torch.from_numpy(synthetic_points(config, seed))
    gen = torch.Generator().manual_seed(seed)
    return FusionBatch(
        img=torch.randn(1, 3, height, width, generator=gen), points=[points],
        camera_intrinsics=intrinsics.unsqueeze(0), lidar2camera=torch.from_numpy(rig.lidar2cam).float().unsqueeze(0),
        img_aug_matrix=torch.from_numpy(image_aug_matrix(rig.image_size, (width, height))).unsqueeze(0),
        lidar_aug_matrix=torch.eye(4).unsqueeze(0),
        ground_plane=torch.tensor([[0.0, 0.0, -1.0, float(rig.ground_z)]]))


def calibration_of(config: dict, batch):
    from v2xfusion_tools.export.calibration import CameraCalibration
    from v2xfusion_tools.synth.rig import build_rig

    rig = build_rig(config["synthetic"], config["preset"], 0)
    return CameraCalibration(rig.intrinsic, rig.lidar2cam, rig.image_size, batch.ground_plane[0].double().numpy())


def prepare(preset: str, workdir: Path) -> dict:
    """Export + quantize both pipelines into workdir; save each model's benchmark inputs; return a plan."""
    import torch

    from v2xfusion_perception.config import CONFIG_ROOT, load_config
    from v2xfusion_tools.export.artifacts import export_artifacts
    from v2xfusion_tools.export.geometry import read_geometry
    from v2xfusion_tools.models import build_model
    from v2xfusion_tools.quantize import pipeline_b
    from v2xfusion_tools.quantize.pipeline_a import ChainA, quantize_pipeline_a, torch_runners

    torch.set_num_threads(2)
    plan: dict = {"models": []}
    for pipeline, name in (("A", "pointpillars"), ("B", "second_bevpoolv2")):
        config_path = CONFIG_ROOT / preset / f"{name}.yaml"
        config = load_config(config_path)
        torch.manual_seed(0)
        model = build_model(config)
        batches = [frame_batch(config, seed) for seed in range(3)]
        for module in model.modules():  # BatchNorm statistics of real activations, as after training
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.reset_running_stats()
                module.momentum = None
        model.train()
        with torch.no_grad():
            model.bev_features(batches[0])
        model.eval()
        torch.save(model.state_dict(), workdir / f"{pipeline}.pth")
        if pipeline == "A":
            result = export_artifacts(config, model, workdir, {"config": str(config_path)}, fixed_v=STATIC_V)
            quantize_pipeline_a(result.folder, model, batches[:2], batches[2:])
            chain = ChainA(model, torch_runners(model), model.heads["object"].output_names, STATIC_V)
            inputs = chain.run(batches[2]).stage_inputs
            for stage in STAGES_A:
                path = workdir / f"A_{stage}_inputs.npz"
                np.savez(path, **inputs[stage])
                stem = f"lidar_pfe_v{STATIC_V}" if stage == "lidar_pfe" else stage
                plan["models"].append({"name": f"A {stage}", "config": str(config_path), "pipeline": "A",
                                       "stage": stage, "inputs": str(path), "fp32": str(result.folder / f"{stem}.onnx"),
                                       "fp16": str(result.folder / f"{stem}_fp16.xml"),
                                       "int8": str(result.folder / f"{stem}_int8.xml"),
                                       "weights": str(workdir / "A.pth")})
        else:
            result = export_artifacts(config, model, workdir, {"config": str(config_path)},
                                      calibration=calibration_of(config, batches[0]))
            geometry = read_geometry(result.folder / "geometry")
            calib_dir = workdir / "calib_b"
            calib_dir.mkdir(exist_ok=True)
            for i, batch in enumerate(batches):
                features, coors = model.encoders["lidar"]["voxelize"](batch.points)
                np.savez(pipeline_b.frame_file(calib_dir, i), img=batch.img.numpy(),
                         voxel_features=features.numpy(), coors=coors.int().numpy())
            pipeline_b.pseudo_gt(result.folder, calib_dir, calib_dir / "pgt.npz", n_calib=2, n_val=1)
            pipeline_b.quantize_unified(result.folder, calib_dir, calib_dir / "pgt.npz", n_calib=2, n_val=1)
            inputs = pipeline_b.load_frame(calib_dir, 2, geometry.indices, geometry.intervals)
            path = workdir / "B_unified_inputs.npz"
            np.savez(path, **inputs)
            plan["models"].append({"name": "B unified", "config": str(config_path), "pipeline": "B",
                                   "stage": "unified", "inputs": str(path),
                                   "fp32": str(result.folder / "bevfusion_unified.onnx"),
                                   "fp16": str(result.folder / "bevfusion_unified_fp16.xml"),
                                   "int8": str(result.folder / "bevfusion_unified_int8.xml"),
                                   "weights": str(workdir / "B.pth")})
    return plan


def time_calls(call, repeats: int) -> list[float]:
    """Seconds per call after two warm-up calls."""
    call()
    call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return times


def worker_torch(entry: dict, threads: int, repeats: int) -> dict:
    import torch

    from v2xfusion_perception.config import load_config
    from v2xfusion_tools.export.onnx_pipeline_a import stage_modules
    from v2xfusion_tools.models import build_model
    from v2xfusion_tools.models.stages import UnifiedStage

    torch.set_num_threads(threads)
    model = build_model(load_config(entry["config"]))
    model.load_state_dict(torch.load(entry["weights"], weights_only=True))
    model.eval()
    with np.load(entry["inputs"]) as data:
        inputs = {k: torch.from_numpy(data[k]) for k in data.files}
    if entry["stage"] == "unified":
        from v2xfusion_tools.export.custom_ops import bev_pool_v2_intervals

        stage = UnifiedStage(model)
        bev_dims = model.encoders["camera"]["vtransform"].grid.shape

        def call():  # the unified chain with BEVPool-v2 over the same precomputed geometry
            with torch.no_grad():
                depth, feature = stage.camera(inputs["img"])
                camera_bev = stage.vtransform.downsample(bev_pool_v2_intervals(
                    depth, feature, inputs["indices"], inputs["intervals"], bev_dims))
                lidar_bev = stage.sparse_encoder(inputs["voxel_features"], inputs["coors"], 1)
                stage.head(stage.fuser(camera_bev, lidar_bev))
    else:
        module = stage_modules(model)[entry["stage"]]

        def call():
            with torch.no_grad():
                module(*inputs.values())
    return {"times": time_calls(call, repeats)}


def worker_openvino(entry: dict, precision: str, threads: int, repeats: int) -> dict:
    import openvino as ov

    core = ov.Core()
    if entry["pipeline"] == "B":
        import v2xfusion_ov_extension

        core.add_extension(str(v2xfusion_ov_extension.library_path()))
    # fp32 is true float32 (design.md §3 (a)); fp16 / int8 IRs run with the plugin's choice for the rest
    config = {"INFERENCE_NUM_THREADS": str(threads), "PERF_COUNT": "YES"}
    if precision == "fp32":
        config["INFERENCE_PRECISION_HINT"] = "f32"
    model = core.read_model(entry[precision])
    # the CPU plugin profiles extension ops as node_type "Reference": recognise them by name
    op_of = {op.get_friendly_name(): op.get_type_name() for op in model.get_ops()}
    compiled = core.compile_model(model, "CPU", config)
    request = compiled.create_infer_request()
    with np.load(entry["inputs"]) as data:
        inputs = {k: data[k] for k in data.files}
    times = time_calls(lambda: request.infer(inputs), repeats)
    result = {"times": times}
    if entry["pipeline"] == "B":
        profile = request.get_profiling_info()
        total = sum(p.real_time.total_seconds() for p in profile)
        by_op = {op: sum(p.real_time.total_seconds() for p in profile if op_of.get(p.node_name) == op)
                 for op in CUSTOM_OPS}
        custom = sum(by_op.values())
        result["custom_share"] = custom / total if total else 0.0
        result["custom_seconds"] = by_op
    return result


def run_worker(entry: dict, backend: str, threads: int, repeats: int) -> dict:
    """One measurement in a fresh process (torch and OpenVINO never in the same one)."""
    command = [sys.executable, __file__, "--worker", backend, "--entry", json.dumps(entry), "--threads", str(threads),
               "--repeats", str(repeats)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"{entry['name']} {backend}: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="v2x", choices=("kitti", "v2x"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workdir", type=Path, default=None, help="Keep the exported models here (default: temp).")
    parser.add_argument("--worker", choices=("torch", "fp32", "fp16", "int8"), help=argparse.SUPPRESS)
    parser.add_argument("--entry", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        entry = json.loads(args.entry)
        result = worker_torch(entry, args.threads, args.repeats) if args.worker == "torch" else \
            worker_openvino(entry, args.worker, args.threads, args.repeats)
        print(json.dumps(result))
        return
    with tempfile.TemporaryDirectory() as temp:
        workdir = args.workdir or Path(temp)
        workdir.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        plan = prepare(args.preset, workdir)
        print(f"preset {args.preset}: exported and quantized in {time.perf_counter() - started:.0f} s; "
              f"{args.threads} threads, median of {args.repeats} runs, each backend in its own process")
        print(f"{'model':<20}{'PyTorch':>10}{'OV FP32':>10}{'OV FP16':>10}{'OV INT8':>10}"
              f"{'FP32/PT':>9}{'FP16/FP32':>11}{'INT8/FP32':>11}")
        ratios, custom = {}, None
        for entry in plan["models"]:
            medians = {}
            for backend in ("torch", "fp32", "fp16", "int8"):
                result = run_worker(entry, backend, args.threads, args.repeats)
                medians[backend] = statistics.median(result["times"]) * 1000.0
                if backend == "fp32" and "custom_share" in result:
                    custom = result
            print(f"{entry['name']:<20}{medians['torch']:>8.1f}ms{medians['fp32']:>8.1f}ms{medians['fp16']:>8.1f}ms"
                  f"{medians['int8']:>8.1f}ms{medians['torch'] / medians['fp32']:>8.2f}x"
                  f"{medians['fp32'] / medians['fp16']:>10.2f}x{medians['fp32'] / medians['int8']:>10.2f}x")
            if entry["stage"] == "camera.backbone":
                ratios["OpenVINO FP32 vs PyTorch (camera.backbone)"] = medians["torch"] / medians["fp32"]
                ratios["INT8 vs OpenVINO FP32 (camera.backbone)"] = medians["fp32"] / medians["int8"]
        for name, value in ratios.items():
            print(f"target {name}: {value:.2f}x (target >= {TARGETS[name]}x) {'met' if value >= TARGETS[name] else 'MISSED'}")
        if custom is not None:
            parts = ", ".join(f"{op} {seconds * 1000:.1f} ms" for op, seconds in custom["custom_seconds"].items())
            print(f"unified model (FP32): {custom['custom_share'] * 100:.1f}% of the profiled time in custom ops ({parts})")


if __name__ == "__main__":
    main()
