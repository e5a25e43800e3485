"""Pipeline A at run time (guide §4, design.md §3): four OpenVINO models joined by our kernels.

    image ──resize/crop/normalise──► camera.backbone ──depth, feature──► BEVPool-v2 ─┐
    points ──hard voxelize (b, x, y, z)──► lidar_pfe ──► PointPillarsScatter ────────┴► fuser ► head
                                                              CenterHead decode + rotated NMS ◄──┘

Every number comes from the artifact manifest; every model file is sha256-checked and its metadata
matched against the manifest before it is compiled. A static-V PFE (guide §4.2.4) is preferred when
the artifacts have one: pillars are padded to V and voxelization keeps at most V of them (the overflow
is counted). Buffers are allocated once; the fuser reads the BEV maps in place, the head reads the
fuser's output tensor.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import openvino as ov

from v2xfusion_perception.frame import Calibration, Detections
from v2xfusion_perception.manifest import Manifest, ManifestError, read_manifest
from v2xfusion_perception.openvino_models import CompiledStage, load_stage, make_core
from v2xfusion_perception.pipeline_base import PipelineBase, StageClock
from v2xfusion_perception.pipeline_options import PipelineOptions

CAMERA, PFE, FUSER, HEAD = "camera.backbone", "lidar_pfe", "fuser", "head"
STAGES = (CAMERA, PFE, FUSER, HEAD)


class PipelineA(PipelineBase):
    """The split PointPillars pipeline of an artifact folder (artifacts/<preset>/A)."""

    model_stages = ("camera", "pfe", "fuser", "head")

    def __init__(self, manifest: Manifest, options: PipelineOptions | None = None) -> None:
        options = options or PipelineOptions()
        if manifest.pipeline != "A":
            raise ManifestError(f"{manifest.path}: pipeline {manifest.pipeline}, not A")
        super().__init__(manifest, options)
        geometry = manifest.geometry
        self.pillar_size = [float(v) for v in manifest.value("geometry", "pillar_size")]
        self.max_points = int(manifest.value("geometry", "max_points"))
        self.bev_size = tuple(int(v) for v in manifest.value("geometry", "bev_size"))
        if list(geometry.get("coors_layout", ["batch", "x", "y", "z"])) != ["batch", "x", "y", "z"]:
            raise ManifestError(f"{manifest.path}: pipeline A's PFE takes coors (batch, x, y, z), the manifest says "
                                f"{geometry['coors_layout']}")
        self.core = make_core()
        self.stages: dict[str, CompiledStage] = {}
        for stage in STAGES:
            entry = manifest.model(stage, options.stage_precision(stage), prefer_static=options.prefer_static_pfe)
            self.stages[stage] = load_stage(self.core, manifest, entry, options.device, options.threads)
        self.static_voxels = self.stages[PFE].entry.static_voxels
        max_voxels = int(manifest.value("geometry", "max_voxels"))
        self.max_voxels = min(max_voxels, self.static_voxels) if self.static_voxels else max_voxels
        self._grid_bounds = self.camera_geometry.bounds
        self._check_shapes()
        self._bind_buffers()

    @classmethod
    def from_folder(cls, folder: str | Path, options: PipelineOptions | None = None,
                    preset: str | None = None) -> PipelineA:
        """The pipeline of an artifact folder; `preset` (when given) must be the manifest's."""
        return cls(read_manifest(folder, preset=preset, pipeline="A"), options)

    # ---- set-up --------------------------------------------------------------------------------
    def _shape(self, stage: str, name: str) -> tuple[int, ...]:
        port = self.stages[stage].compiled.input(name) if name in self.stages[stage].input_names \
            else self.stages[stage].compiled.output(name)
        return tuple(d.get_length() if d.is_static else -1 for d in port.get_partial_shape())

    def _check_shapes(self) -> None:
        """The four models fit each other and the manifest's geometry (a clear error, not a crash later)."""
        where = self.manifest.path
        width, height = self.network_size
        depth = self._shape(CAMERA, "camera_depth")
        feature = self._shape(CAMERA, "camera_feature")
        grid = [int(v) for v in self.manifest.value("geometry", "camera_bev_grid")]
        bins, feat_w, feat_h = self.camera_geometry.bins, *self.camera_geometry.feature_size
        img, camera_bev = self._shape(CAMERA, "img"), self._shape(FUSER, "camera_bev")
        lidar_bev, pillars, voxels = self._shape(FUSER, "lidar_bev"), self._shape(PFE, "pillar_features"), \
            self._shape(PFE, "voxels")
        checks = [
            (img == (1, 3, height, width), f"camera img {img} vs geometry.image_size {[width, height]}"),
            (depth == (1, len(bins), feat_h, feat_w),
             f"camera_depth {depth} vs {len(bins)} bins over feature_size {[feat_w, feat_h]}"),
            (feature[:3] == (1, feat_h, feat_w), f"camera_feature {feature} vs feature_size {[feat_w, feat_h]}"),
            (camera_bev == (1, grid[2] * feature[3], grid[0], grid[1]),
             f"fuser camera_bev {camera_bev} vs camera_bev_grid {grid} x {feature[3]} channels"),
            (lidar_bev[2:] == self.bev_size, f"fuser lidar_bev {lidar_bev} vs bev_size {list(self.bev_size)}"),
            (lidar_bev[1] == pillars[1], f"fuser lidar_bev {lidar_bev} vs PFE output {pillars}"),
            (voxels[1:] == (self.max_points, 4), f"PFE voxels {voxels} vs max_points {self.max_points} x 4 features"),
        ]
        for ok, text in checks:
            if not ok:
                raise ManifestError(f"{where}: the models do not fit the manifest's geometry: {text}")
        missing = [n for n in self.decoder.output_names if n not in self.stages[HEAD].output_names]
        if missing:
            raise ManifestError(f"{where}: the head model has no output(s) {missing}")

    def _bind_buffers(self) -> None:
        """Allocate the inputs that stay in place and bind them to their requests once."""
        camera_bev_shape = self._shape(FUSER, "camera_bev")
        lidar_bev_shape = self._shape(FUSER, "lidar_bev")
        self._camera_bev = np.zeros(camera_bev_shape, dtype=np.float32)
        self._lidar_bev = np.zeros(lidar_bev_shape, dtype=np.float32)
        self.stages[CAMERA].request.set_tensor("img", ov.Tensor(self._image_input, shared_memory=True))
        fuser = self.stages[FUSER].request
        fuser.set_tensor("camera_bev", ov.Tensor(self._camera_bev, shared_memory=True))
        fuser.set_tensor("lidar_bev", ov.Tensor(self._lidar_bev, shared_memory=True))
        if self.static_voxels:
            v = self.static_voxels
            self._voxels = np.zeros((v, self.max_points, 4), dtype=np.float32)
            self._num_points = np.zeros(v, dtype=np.int32)
            self._coors = np.zeros((v, 4), dtype=np.int32)
            pfe = self.stages[PFE].request
            for name, array in (("voxels", self._voxels), ("num_points", self._num_points), ("coors", self._coors)):
                pfe.set_tensor(name, ov.Tensor(array, shared_memory=True))
            self._padded_from = v

    # ---- inference -----------------------------------------------------------------------------
    def infer(self, image: np.ndarray, points: np.ndarray, calibration: Calibration) -> Detections:
        """image: (H, W, 3) uint8 RGB of calibration.image_size; points: (N, 4) float32 x, y, z,
        intensity 0-1 (LiDAR frame). Returns Detections with per-stage timings (ms). A cloud with no
        point inside pc_range gives no detections; malformed input raises FrameError."""
        clock = StageClock()
        image, points = self.check_frame(image, points, calibration)
        self.counters["frames"] += 1
        if not len(points):
            return self.empty(clock)
        self.camera_input(image, calibration)
        clock.lap("preprocess")
        voxels, coors, num_points, stats = self.kernels.voxelize_hard(
            points, self.pillar_size, self.pc_range, self.max_points, self.max_voxels)
        self.count_voxels(stats)
        clock.lap("voxelize")
        count = len(num_points)
        if count == 0:
            return self.empty(clock)
        camera = self.stages[CAMERA].request
        camera.infer()
        clock.lap("camera")
        geometry = self.bev_pool_geometry(calibration)
        depth = camera.get_tensor("camera_depth").data
        feature = camera.get_tensor("camera_feature").data
        self.kernels.bev_pool(depth[0], feature[0], geometry.indices, geometry.intervals, *self._grid_bounds,
                              out=self._camera_bev[0])
        clock.lap("bevpool")
        pillars = self._pillar_features(voxels, num_points, coors)
        clock.lap("pfe")
        self.kernels.pillar_scatter(pillars, coors, self.bev_size[0], self.bev_size[1], out=self._lidar_bev[0])
        clock.lap("scatter")
        fuser = self.stages[FUSER].request
        fuser.infer()
        clock.lap("fuser")
        head = self.stages[HEAD].request
        head.set_tensor("middle", fuser.get_tensor("middle"))
        head.infer()
        clock.lap("head")
        outputs = {name: head.get_tensor(name).data for name in self.decoder.output_names}
        return self.detections(outputs, clock)

    def _pillar_features(self, voxels: np.ndarray, num_points: np.ndarray, coors: np.ndarray) -> np.ndarray:
        """The PFE over this frame's pillars: (V, C) float32 (a view of the request's output)."""
        count = len(num_points)
        request = self.stages[PFE].request
        if self.static_voxels:
            self._voxels[:count] = voxels
            self._num_points[:count] = num_points
            self._coors[:count] = coors
            # slots past this frame's pillars must be empty pillars again
            if self._padded_from > count:
                self._voxels[count:self._padded_from] = 0.0
                self._num_points[count:self._padded_from] = 0
                self._coors[count:self._padded_from] = 0
            self._padded_from = count
            request.infer()
        else:
            request.infer({"voxels": voxels, "num_points": num_points, "coors": coors})
        return np.ascontiguousarray(request.get_tensor("pillar_features").data[:count])
