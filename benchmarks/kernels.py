"""Speed of the C++ kernels, on both backends, against vectorized numpy / PyTorch / spconv versions.

Run: OMP_NUM_THREADS=2 .venv/bin/python benchmarks/kernels.py [--preset kitti] [--repeat 15]
     [--sycl-device opencl:cpu]

Every ratio is measured in this one run on this machine (median of --repeat timings after a warm-up),
on a 120k-point spinning-LiDAR cloud and the preset's geometry. Two columns per kernel: the host
backend (OpenMP) and the sycl backend (the same bodies compiled at run time by the DPC++ kernel
compiler, by default for the OpenCL CPU device; its one-time compile cost is printed, and its
results are checked against the host's). Targets (issue "Kernels", host backend): hard
voxelization >= 5x numpy, BEVPool-v2 >= 5x torch index_add, decode + NMS of 500 candidates >= 20x
numpy, sparse conv within 2x of spconv's CPU path (speed-up >= 0.5x; ours includes building the
rulebook, as spconv's forward builds its indices). The table also gives absolute times and the share
of the machine's memory bandwidth the hard voxelizer reaches (bytes it must read and write / time,
against the best of a large numpy and a large torch copy).
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Callable

import numpy as np
import spconv.pytorch as spconv
import torch

import v2xfusion_kernels as vk
from v2xfusion_perception.config import load_config, preset_config_path


def median_time(fn: Callable[[], object], repeat: int) -> float:
    """Median wall time of fn in seconds, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def lidar_cloud(rng: np.random.Generator, beams: int = 64, azimuths: int = 1875) -> np.ndarray:
    """A 64-beam spinning LiDAR on a car roof (1.73 m): ground returns, walls, boxes. (N, 4) float32."""
    elevation = np.deg2rad(np.linspace(2.0, -24.8, beams))[:, None]
    azimuth = np.linspace(-np.pi, np.pi, azimuths, endpoint=False)[None, :]
    direction = np.stack(np.broadcast_arrays(np.cos(elevation) * np.cos(azimuth),
                                             np.cos(elevation) * np.sin(azimuth),
                                             np.sin(elevation) + 0 * azimuth), axis=-1).reshape(-1, 3)
    ground = np.where(direction[:, 2] < -1e-3, 1.73 / -np.minimum(direction[:, 2], -1e-3), np.inf)
    walls = rng.uniform(15.0, 90.0, azimuths)[None, :].repeat(beams, 0).reshape(-1)
    objects = np.where(rng.random(direction.shape[0]) < 0.1, rng.uniform(4.0, 40.0, direction.shape[0]), np.inf)
    distance = np.minimum(np.minimum(ground, walls), objects) + rng.normal(0, 0.02, direction.shape[0])
    xyz = direction * distance[:, None]
    intensity = rng.random((xyz.shape[0], 1))
    return np.concatenate([xyz, intensity], axis=1).astype(np.float32)


def numpy_hard_voxelize(points, voxel_size, pc_range, max_points, max_voxels):
    """Vectorized numpy hard voxelization with mmcv's rules (the speed baseline)."""
    lo = np.asarray(pc_range[:3], np.float32)
    vs = np.asarray(voxel_size, np.float32)
    grid = np.round((np.asarray(pc_range[3:], np.float32) - lo) / vs).astype(np.int64)
    with np.errstate(invalid="ignore"):
        cells = np.floor((points[:, :3] - lo) / vs)
        valid = np.isfinite(points).all(axis=1) & ((cells >= 0) & (cells < grid)).all(axis=1)
    kept_points = points[valid]
    cells = cells[valid].astype(np.int64)
    lin = (cells[:, 2] * grid[1] + cells[:, 1]) * grid[0] + cells[:, 0]
    _, first, inverse = np.unique(lin, return_index=True, return_inverse=True)
    rank = np.empty(len(first), np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    voxel = rank[inverse]
    order = np.argsort(voxel, kind="stable")
    sorted_voxel = voxel[order]
    slot = np.arange(len(order)) - np.searchsorted(sorted_voxel, sorted_voxel)
    keep = (sorted_voxel < max_voxels) & (slot < max_points)
    num_voxels = min(len(first), max_voxels)
    voxels = np.zeros((num_voxels, max_points, points.shape[1]), np.float32)
    voxels[sorted_voxel[keep], slot[keep]] = kept_points[order[keep]]
    num_points = np.bincount(sorted_voxel[keep], minlength=num_voxels).astype(np.int32)
    head = np.sort(first)[:num_voxels]
    coors = np.zeros((num_voxels, 4), np.int32)
    coors[:, 1:] = cells[head]
    return voxels, coors, num_points


def torch_bev_pool(depth, feat, ranks_depth, ranks_feat, ranks_bev, cells):
    """BEVPool with index_add (the speed baseline): (cells, C)."""
    values = depth.reshape(-1)[ranks_depth].unsqueeze(1) * feat.reshape(-1, feat.shape[-1])[ranks_feat]
    return torch.zeros(cells, feat.shape[-1]).index_add_(0, ranks_bev, values)


def numpy_bev_iou_one_to_many(box, boxes):
    """BEV IoU of one box with many, vectorized: intersection polygon from inside corners and edge
    crossings, ordered by angle around its centroid."""
    def corners(b):
        c, s = np.cos(b[:, 6]), np.sin(b[:, 6])
        hx, hy = b[:, 3] / 2, b[:, 4] / 2
        lx = np.stack([hx, -hx, -hx, hx], 1)
        ly = np.stack([hy, hy, -hy, -hy], 1)
        return np.stack([b[:, :1] + c[:, None] * lx - s[:, None] * ly, b[:, 1:2] + s[:, None] * lx + c[:, None] * ly], -1)

    a = np.broadcast_to(corners(box[None]), (len(boxes), 4, 2))
    b = corners(boxes)

    def cross(u, v):
        return u[..., 0] * v[..., 1] - u[..., 1] * v[..., 0]

    def inside(p, q):
        e = np.roll(q, -1, axis=1) - q
        return (cross(e[:, None], p[:, :, None] - q[:, None]) >= -1e-9).all(axis=2)

    p, r = a[:, :, None], (np.roll(a, -1, axis=1) - a)[:, :, None]
    q, s = b[:, None], (np.roll(b, -1, axis=1) - b)[:, None]
    den = cross(r, s)
    safe = np.where(np.abs(den) > 1e-12, den, 1.0)
    t, u = cross(q - p, s) / safe, cross(q - p, r) / safe
    hit = (np.abs(den) > 1e-12) & (t >= 0) & (t <= 1) & (u >= 0) & (u <= 1)
    pts = np.concatenate([a, b, (p + t[..., None] * r).reshape(len(boxes), 16, 2)], axis=1)
    valid = np.concatenate([inside(a, b), inside(b, a), hit.reshape(len(boxes), 16)], axis=1)
    count = valid.sum(1)
    centre = (pts * valid[..., None]).sum(1) / np.maximum(count, 1)[:, None]
    angle = np.where(valid, np.arctan2(pts[..., 1] - centre[:, 1:2], pts[..., 0] - centre[:, :1]), 10.0)
    order = np.argsort(angle, axis=1)
    pts = np.take_along_axis(pts, order[..., None], 1)
    ok = np.take_along_axis(valid, order, 1)
    pts = np.where(ok[..., None], pts, pts[:, :1])
    area = 0.5 * np.abs(cross(pts, np.roll(pts, -1, axis=1)).sum(1))
    inter = np.where(count >= 3, area, 0.0)
    return inter / (box[3] * box[4] + boxes[:, 3] * boxes[:, 4] - inter)


def numpy_decode_nms(maps, settings, max_num, iou_threshold, post_max_size):
    """Top-k, decode, threshold, centre range, per-class greedy rotated NMS in numpy (the baseline)."""
    heat = maps["heatmap"]
    k, nx, ny = heat.shape
    flat = heat.reshape(-1)
    top = np.argpartition(-flat, max_num)[:max_num]
    top = top[np.argsort(-flat[top], kind="stable")]
    scores = flat[top]
    label, cell = np.divmod(top, nx * ny)
    ix, iy = np.divmod(cell, ny)
    cx = settings["voxel_size"][0] * settings["out_size_factor"]
    cy = settings["voxel_size"][1] * settings["out_size_factor"]
    reg = maps["reg"].reshape(2, -1)[:, cell]
    rot = maps["rot"].reshape(2, -1)[:, cell]
    boxes = np.column_stack([(ix + reg[0]) * cx + settings["pc_range"][0], (iy + reg[1]) * cy + settings["pc_range"][1],
                             maps["height"].reshape(-1)[cell], np.exp(maps["dim"].reshape(3, -1)[:, cell].T),
                             np.arctan2(rot[0], rot[1])])
    pcr = np.asarray(settings["post_center_range"])
    keep = (scores > settings["score_threshold"]) & ((boxes[:, :3] >= pcr[:3]) & (boxes[:, :3] <= pcr[3:])).all(1)
    boxes, scores, label = boxes[keep], scores[keep], label[keep]
    kept = []
    for c in np.unique(label):
        idx = np.flatnonzero(label == c)
        count = 0
        while len(idx) and count < post_max_size:
            best, rest = idx[0], idx[1:]
            kept.append(best)
            count += 1
            if len(rest):
                rest = rest[numpy_bev_iou_one_to_many(boxes[best], boxes[rest]) <= iou_threshold]
            idx = rest
    kept = np.array(kept, np.int64)
    return boxes[kept], scores[kept], label[kept]


def head_maps(rng, classes, nx, ny):
    """Head outputs with about 500 candidate cells above the score threshold (scores, not logits)."""
    heat = rng.random((classes, nx, ny), dtype=np.float32) * np.float32(0.25)
    cells = rng.choice(classes * nx * ny, 520, replace=False)
    heat.reshape(-1)[cells] = rng.uniform(0.35, 1.0, 520).astype(np.float32)
    return {
        "heatmap": heat,
        "reg": rng.random((2, nx, ny), dtype=np.float32),
        "height": rng.uniform(-2, 0, (1, nx, ny)).astype(np.float32),
        "dim": rng.uniform(0.0, 1.5, (3, nx, ny)).astype(np.float32),
        "rot": rng.uniform(-1, 1, (2, nx, ny)).astype(np.float32),
    }


def spconv_forward(layer, features, coors, shape, threads):
    torch.set_num_threads(threads)
    x = spconv.SparseConvTensor(features, coors, list(shape), 1)
    with torch.no_grad():
        return layer(x)


def memory_bandwidth() -> float:
    """Best of a 256 MB numpy copy and a 256 MB torch copy, in bytes per second (read + write)."""
    src = np.ones(64 * 1024 * 1024, np.float32)
    dst = np.empty_like(src)
    t_np = median_time(lambda: np.copyto(dst, src), 5)
    tsrc, tdst = torch.from_numpy(src), torch.from_numpy(dst)
    t_torch = median_time(lambda: tdst.copy_(tsrc), 5)
    return 2 * src.nbytes / min(t_np, t_torch)


def same_outputs(a, b) -> bool:
    """Whether two kernel results (an array or a tuple of arrays and stats) hold the same arrays."""
    a = a if isinstance(a, tuple) else (a,)
    b = b if isinstance(b, tuple) else (b,)
    return all(np.array_equal(x, y) for x, y in zip(a, b) if isinstance(x, np.ndarray))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="kitti", choices=["kitti", "v2x"])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--sycl-device", default="opencl:cpu", help="SYCL selector of the sycl column")
    args = parser.parse_args()
    cfg = load_config(preset_config_path(args.preset))
    geo, post = cfg["geometry"], cfg["postprocess"]
    torch.set_num_threads(2)
    rng = np.random.default_rng(0)
    points = lidar_cloud(rng)
    host = vk.backend("host")
    opened = time.perf_counter()
    sycl = vk.backend("sycl", args.sycl_device)
    open_seconds = time.perf_counter() - opened
    rows: list[tuple[str, str, float, float, float, str]] = []

    def both(run: Callable[[object], object], exact: bool = True) -> tuple[float, float]:
        """Median times of run(host) and run(sycl); exact: their outputs must be the same arrays."""
        if exact:
            assert same_outputs(run(host), run(sycl)), "the sycl backend disagrees with the host backend"
        return median_time(lambda: run(host), args.repeat), median_time(lambda: run(sycl), args.repeat)

    def record(name, baseline_name, ours, theirs, target):
        rows.append((name, baseline_name, *ours, theirs, target))

    # 1. hard voxelization (pillars of the preset)
    pc = geo["pc_range"]
    pillar = [geo["voxel_size"][0], geo["voxel_size"][1], pc[5] - pc[2]]
    mp, mv = geo["max_points"], geo["max_voxels"]
    ours = host.voxelize_hard(points, pillar, pc, mp, mv)
    ref = numpy_hard_voxelize(points, pillar, pc, mp, mv)
    assert all(np.array_equal(a, b) for a, b in zip(ours[:3], ref)), "numpy baseline disagrees"
    t_hard = both(lambda k: k.voxelize_hard(points, pillar, pc, mp, mv))
    t_np = median_time(lambda: numpy_hard_voxelize(points, pillar, pc, mp, mv), max(3, args.repeat // 3))
    record("hard voxelize", "numpy (vectorized)", t_hard, t_np, ">= 5x")
    num_voxels = len(ours[1])
    moved = points.nbytes + ours[0].nbytes + ours[1].nbytes + ours[2].nbytes
    bandwidth = memory_bandwidth()

    t_dyn = both(lambda k: k.voxelize_dynamic(points, geo["voxel_size"], pc))
    record("dynamic voxelize", "-", t_dyn, float("nan"), "")
    pillar_features = rng.standard_normal((num_voxels, 64), dtype=np.float32)
    nx_pillar = int(round((pc[3] - pc[0]) / pillar[0]))
    ny_pillar = int(round((pc[4] - pc[1]) / pillar[1]))
    canvas = np.empty((64, nx_pillar, ny_pillar), np.float32)  # allocated once, as a pipeline does
    t_scatter = both(lambda k: k.pillar_scatter(pillar_features, ours[1], nx_pillar, ny_pillar, out=canvas).copy())
    record(f"pillar scatter 64x{nx_pillar}x{ny_pillar} (out=)", "-", t_scatter, float("nan"), "")

    # 2. BEVPool-v2 and its geometry. A height-bin preset (v2x) places its frustum points on height
    # planes in Python; the geometry kernel is timed here on a metric-depth frustum of the same size.
    w, h = geo["image_size"]
    fw, fh = geo["feature_size"]
    start, end, count = geo["dbound"]
    depths = (start + (end - start) / count * np.arange(int(count))).astype(np.float32)
    if geo.get("depth_mode", "depth") == "height":
        depths = np.linspace(1.0, 100.0, int(count), dtype=np.float32)
    intrinsics = np.array([[721.5, 0, w / 2], [0, 721.5, h / 2], [0, 0, 1]], np.float32)
    cam_to_lidar = np.eye(4, dtype=np.float32)
    cam_to_lidar[:3, :3] = [[0, 0, 1], [-1, 0, 0], [0, -1, 0]]
    bounds = (geo["xbound"], geo["ybound"], geo["zbound"])
    aug = np.eye(4, dtype=np.float32)

    def geometry(k):
        frustum = k.frustum_points(cam_to_lidar, intrinsics, aug, depths, (w, h), (fw, fh))
        return k.bev_pool_geometry(frustum, *bounds)

    t_geom = both(geometry)
    record(f"BEVPool geometry ({len(depths)}x{fh}x{fw})", "-", t_geom, float("nan"), "ms")
    indices, intervals = geometry(host)
    channels = 80
    depth = rng.random((len(depths), fh, fw), dtype=np.float32)
    context = rng.standard_normal((fh, fw, channels), dtype=np.float32)
    inside = int(intervals[-1, 0])
    lengths = intervals[:-1, 1] - intervals[:-1, 0]
    ranks_depth = torch.from_numpy(indices[:inside].astype(np.int64))
    ranks_feat = ranks_depth % (fh * fw)
    ranks_bev = torch.from_numpy(np.repeat(intervals[:-1, 2], lengths).astype(np.int64))
    nx, ny, nz = (int(round((b[1] - b[0]) / b[2])) for b in bounds)
    tdepth, tcontext = torch.from_numpy(depth), torch.from_numpy(context)
    pooled = host.bev_pool(depth, context, indices, intervals, *bounds)
    ref_pool = torch_bev_pool(tdepth, tcontext, ranks_depth, ranks_feat, ranks_bev, nx * ny * nz)
    ref_pool = ref_pool.view(nz, nx, ny, channels).permute(0, 3, 1, 2).reshape(-1, nx, ny).numpy()
    assert np.allclose(pooled, ref_pool, rtol=1e-4, atol=1e-4), "torch baseline disagrees"
    t_pool = both(lambda k: k.bev_pool(depth, context, indices, intervals, *bounds))
    t_torch = median_time(lambda: torch_bev_pool(tdepth, tcontext, ranks_depth, ranks_feat, ranks_bev, nx * ny * nz),
                          args.repeat)
    record(f"BEVPool-v2 C={channels}, {inside} points", "torch index_add", t_pool, t_torch, ">= 5x")

    # 3. decode + NMS of 500 candidates
    settings = {"pc_range": pc, "voxel_size": geo["voxel_size"], "out_size_factor": geo["out_size_factor"],
                "post_center_range": [-1e3, -1e3, -1e3, 1e3, 1e3, 1e3], "score_threshold": post["score_threshold"]}
    bx, by = geo["bev_size"]
    maps = head_maps(rng, len(cfg["class_names"]), bx, by)

    def ours_post(k):
        boxes, scores, labels = k.centerhead_decode(**maps, **settings, max_num=500, pool_size=1, apply_sigmoid=False)
        keep = k.rotated_nms(boxes, scores, labels, post["nms_iou_threshold"], post["pre_max_size"],
                             post["post_max_size"])
        return boxes[keep], scores[keep], labels[keep]

    def numpy_post():
        return numpy_decode_nms(maps, settings, 500, post["nms_iou_threshold"], post["post_max_size"])

    candidates = len(host.centerhead_decode(**maps, **settings, max_num=500, pool_size=1, apply_sigmoid=False)[0])
    a, b = ours_post(host), numpy_post()
    assert sorted(a[1].tolist()) == sorted(b[1].astype(np.float32).tolist()), "numpy baseline disagrees"
    # the boxes hold exp / atan2 of the device's math library: same kept scores, not the same bits
    assert np.array_equal(ours_post(sycl)[1], a[1]), "the sycl backend disagrees with the host backend"
    t_post = both(ours_post, exact=False)
    t_np_post = median_time(numpy_post, max(3, args.repeat // 3))
    record(f"decode + rotated NMS ({candidates} cand.)", "numpy (vectorized)", t_post, t_np_post, ">= 20x")

    # 4. sparse convolution: SubM 16->16 and strided 16->32 on the cloud's voxels (SECOND's first layers)
    feats, coors, _, _ = host.voxelize_dynamic(points, geo["voxel_size"], pc)
    shape = tuple(int(round((pc[i + 3] - pc[i]) / geo["voxel_size"][i])) for i in (2, 1, 0))
    in_features = np.ascontiguousarray(np.tile(feats, (1, 4)))  # 16 channels
    tf, tc = torch.from_numpy(in_features), torch.from_numpy(coors)
    for label, cin, cout, kw in (("SubMConv3d 16->16", 16, 16, dict(subm=True, stride=1, padding=1)),
                                 ("SparseConv3d 16->32 s2", 16, 32, dict(subm=False, stride=2, padding=1))):
        cls = spconv.SubMConv3d if kw["subm"] else spconv.SparseConv3d
        layer = cls(cin, cout, 3, stride=kw["stride"], padding=kw["padding"], bias=True)
        weight = layer.weight.detach().numpy()
        bias = layer.bias.detach().numpy()

        def ours_conv(k):
            rb = k.sparse_conv_rulebook(coors, shape, 3, kw["stride"], kw["padding"], subm=kw["subm"])
            return k.sparse_conv(in_features, rb, weight, bias, relu=True)

        rulebooks = {k: k.sparse_conv_rulebook(coors, shape, 3, kw["stride"], kw["padding"], subm=kw["subm"])
                     for k in (host, sycl)}
        t_ours_conv = both(ours_conv)
        t_gemm = both(lambda k: k.sparse_conv(in_features, rulebooks[k], weight, bias, relu=True))
        for threads in (1, 2):
            t_sp = median_time(lambda: spconv_forward(layer, tf, tc, shape, threads), args.repeat)
            note = "spconv CPU, 1 thread" if threads == 1 else "spconv CPU, 2 threads*"
            record(f"{label} ({len(coors)} sites)", note, t_ours_conv, t_sp, ">= 0.5x")
        record("  of which conv (rulebook reused)", "-", t_gemm, float("nan"), "")
        torch.set_num_threads(2)

    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"\nkernels benchmark, preset {args.preset}: {len(points)} points, kernel threads (host) "
          f"{vk.get_num_threads()} (OpenMP may use fewer on a busy machine), torch {torch.get_num_threads()} "
          f"threads, load average {load} on {os.cpu_count()} cores")
    print(f"sycl backend: {sycl.device}; kernels compiled by the DPC++ kernel compiler in "
          f"{sycl.compile_seconds:.2f} s (once per process and device; opening the backend took "
          f"{open_seconds:.2f} s)\n")
    header = (f"{'kernel':44s} {'host ms':>9s} {'sycl ms':>9s} {'baseline':24s} {'base ms':>9s} "
              f"{'host x':>8s} {'sycl x':>8s} {'target':>8s}")
    print(header)
    print("-" * len(header))
    for name, base, t_host, t_sycl, t_base, target in rows:
        line = f"{name:44s} {t_host * 1e3:9.2f} {t_sycl * 1e3:9.2f} {base:24s}"
        if np.isnan(t_base):
            print(f"{line} {'':>9s} {'':>8s} {'':>8s} {target:>8s}")
        else:
            print(f"{line} {t_base * 1e3:9.2f} {t_base / t_host:7.1f}x {t_base / t_sycl:7.1f}x {target:>8s}")
    achieved = moved / t_hard[0]
    print(f"\nhard voxelize (host): {num_voxels} voxels, {moved / 1e6:.1f} MB read + written -> "
          f"{achieved / 1e9:.2f} GB/s = {100 * achieved / bandwidth:.0f}% of this machine's copy bandwidth "
          f"({bandwidth / 1e9:.1f} GB/s)")
    print("Targets apply to the host column. The sycl column runs on the SYCL device named above, with "
          "its inputs and outputs copied to and from device memory as on a GPU.")
    print("* spconv 2.3.8's CPU path with more than one torch thread gives run-to-run different (wrong) "
          "outputs here; the 1-thread row is its correct speed.")


if __name__ == "__main__":
    main()
