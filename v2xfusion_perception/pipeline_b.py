"""Pipeline B at run time (guide §5, design.md §3): one OpenVINO model with our custom ops.

    image ──resize/crop/normalise──► ┐
    BEVPool-v2 geometry (cached) ───► ├─ bevfusion_unified (camera, BevPoolV2, SparseConvolution x N,
    points ──dynamic voxelize (b, z, y, x)─► ┘   SparseToDense, fuser, head) ──► decode + rotated NMS

The custom ops run from the installed `v2xfusion_ov_extension` library. The geometry the export
precomputed (guide §5.2.3, sha256-checked like every file) is used for the calibration it was made
from; any other calibration gets its geometry computed here (camera_geometry) and cached.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from v2xfusion_perception.camera_geometry import BevPoolGeometry
from v2xfusion_perception.frame import Calibration, Detections
from v2xfusion_perception.manifest import Manifest, ManifestError, read_manifest
from v2xfusion_perception.openvino_models import load_stage, make_core
from v2xfusion_perception.pipeline_base import PipelineBase, StageClock
from v2xfusion_perception.pipeline_options import OptionError, PipelineOptions

UNIFIED = "unified"
INPUTS = ("img", "indices", "intervals", "voxel_features", "coors")


class PipelineB(PipelineBase):
    """The unified SECOND pipeline of an artifact folder (artifacts/<preset>/B)."""

    model_stages = ("unified",)

    def __init__(self, manifest: Manifest, options: PipelineOptions | None = None) -> None:
        options = options or PipelineOptions()
        if manifest.pipeline != "B":
            raise ManifestError(f"{manifest.path}: pipeline {manifest.pipeline}, not B")
        if options.int8_stages:
            raise OptionError(f"int8_stages {list(options.int8_stages)}: per-stage INT8 applies to pipeline A's four "
                              f"models; pipeline B is one model (use precision int8)")
        self._export_calibration = _export_calibration(manifest)
        super().__init__(manifest, options)
        self.voxel_size = [float(v) for v in manifest.value("geometry", "voxel_size")]
        if list(manifest.geometry.get("coors_layout", ["batch", "z", "y", "x"])) != ["batch", "z", "y", "x"]:
            raise ManifestError(f"{manifest.path}: pipeline B's sparse encoder takes coors (batch, z, y, x), the "
                                f"manifest says {manifest.geometry['coors_layout']}")
        entry = manifest.model(UNIFIED, options.precision)
        # the Core holds the extension library the compiled model's custom ops live in: keep it
        self.core = make_core(extension=True)
        self.stage = load_stage(self.core, manifest, entry, options.device, options.threads)
        missing = [n for n in (*INPUTS, *self.decoder.output_names) if n not in
                   (*self.stage.input_names, *self.stage.output_names)]
        if missing:
            raise ManifestError(f"{manifest.folder / entry.file}: no input / output {missing}")
        width, height = self.network_size
        img_shape = tuple(self.stage.compiled.input("img").get_partial_shape().to_shape())
        if img_shape != (1, 3, height, width):
            raise ManifestError(f"{manifest.path}: the model's img {img_shape} vs geometry.image_size {[width, height]}")
        if self._export_calibration is not None:
            calibration, geometry, _ = self._export_calibration
            if len(geometry.indices) != self.camera_geometry.num_points:
                raise ManifestError(f"{manifest.path}: bevpool_geometry has {len(geometry.indices)} indices, the "
                                    f"model's frustum D * fH * fW = {self.camera_geometry.num_points}")
            self.camera_geometry.seed(calibration, geometry)

    @classmethod
    def from_folder(cls, folder: str | Path, options: PipelineOptions | None = None,
                    preset: str | None = None) -> PipelineB:
        """The pipeline of an artifact folder; `preset` (when given) must be the manifest's."""
        return cls(read_manifest(folder, preset=preset, pipeline="B"), options)

    def _ground_plane(self) -> np.ndarray | None:
        """As PipelineBase's, with the plane of the export's calibration ahead of the default."""
        if self.options.ground_plane is None and self.manifest.geometry.get("ground_plane") is None \
                and self._export_plane is not None:
            return self._export_plane
        return super()._ground_plane()

    def infer(self, image: np.ndarray, points: np.ndarray, calibration: Calibration) -> Detections:
        """image: (H, W, 3) uint8 RGB of calibration.image_size; points: (N, 4) float32 x, y, z,
        intensity 0-1 (LiDAR frame). Returns Detections with per-stage timings (ms). A cloud with no
        point inside pc_range gives no detections; malformed input raises FrameError."""
        clock = StageClock()
        image, points = self.check_frame(image, points, calibration)
        self.counters["frames"] += 1
        if not len(points):
            return self.empty(clock)
        image_input = self.camera_input(image, calibration)
        clock.lap("preprocess")
        features, coors, _, stats = self.kernels.voxelize_dynamic(points, self.voxel_size, self.pc_range)
        self.count_voxels(stats)
        clock.lap("voxelize")
        if len(coors) == 0:
            return self.empty(clock)
        geometry = self.bev_pool_geometry(calibration)
        clock.lap("geometry")
        request = self.stage.request
        request.infer({"img": image_input, "indices": geometry.indices, "intervals": geometry.intervals,
                       "voxel_features": features, "coors": coors})
        clock.lap("unified")
        outputs = {name: request.get_tensor(name).data for name in self.decoder.output_names}
        return self.detections(outputs, clock)

    @property
    def _export_plane(self) -> np.ndarray | None:
        return None if self._export_calibration is None else self._export_calibration[2]


def _export_calibration(manifest: Manifest) -> tuple[Calibration, BevPoolGeometry, np.ndarray | None] | None:
    """The calibration the export computed its BEVPool geometry from, that geometry, and its ground
    plane; None when the manifest records none (manifest `bevpool_geometry`, geometry/*.bin)."""
    record = manifest.data.get("bevpool_geometry")
    if record is None:
        return None
    try:
        values = json.loads(manifest.read_verified(record["calibration"]))
        calibration = Calibration(np.asarray(values["intrinsics"], dtype=np.float64),
                                  np.asarray(values["lidar2camera"], dtype=np.float64),
                                  (int(values["image_size"][0]), int(values["image_size"][1])))
        plane = values.get("ground_plane")
    except (KeyError, TypeError, ValueError) as exc:
        raise ManifestError(f"{manifest.folder / record.get('calibration', '?')}: not a calibration file "
                            f"({exc})") from None
    indices = np.frombuffer(manifest.read_verified(record["indices"]), dtype="<i4").astype(np.int32)
    raw = np.frombuffer(manifest.read_verified(record["intervals"]), dtype="<i4").astype(np.int32)
    if raw.size == 0 or raw.size % 3 or raw[-1] != -1:
        raise ManifestError(f"{manifest.folder / record['intervals']}: not rows of (start, end, rank) ending with "
                            f"the sentinel rank -1")
    geometry = BevPoolGeometry(indices, raw.reshape(-1, 3))
    return calibration, geometry, None if plane is None else np.asarray(plane, dtype=np.float64)
