"""What both runtime pipelines share: the manifest, the kernels backend, the camera input and its
BEVPool-v2 geometry, decoding, the frame checks and the per-stage clock.

A pipeline object owns compiled models and reusable buffers: one `infer` at a time (the node and the
runner call it from one thread).
"""
from __future__ import annotations

import os
import time
from collections import OrderedDict
from typing import Any

import numpy as np

# OpenVINO's thread pool and the kernels' OpenMP threads share the cores frame after frame; OpenMP
# workers that spin after each kernel (libgomp's default) took the cores OpenVINO needed next: on two
# busy cores a 3 ms voxelization measured 60 ms. Passive waiting is the default here unless the user
# chose otherwise; libgomp reads it once, when the kernels module first loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import v2xfusion_kernels  # after the OpenMP setting above

from v2xfusion_perception.camera_geometry import CameraGeometry, lidar_z0_ground_plane
from v2xfusion_perception.frame import Calibration, Detections
from v2xfusion_perception.frame_inputs import check_calibration, check_image, check_points
from v2xfusion_perception.head_decode import HeadDecoder
from v2xfusion_perception.image_transform import NetworkImage
from v2xfusion_perception.manifest import Manifest, ManifestError
from v2xfusion_perception.pipeline_options import OptionError, PipelineOptions

# native image sizes whose resampling plans are kept
IMAGE_CACHE_SIZE = 4


class StageClock:
    """Milliseconds per stage: `lap(name)` records the time since the previous lap (or the start)."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.timings[name] = self.timings.get(name, 0.0) + (now - self._last) * 1e3
        self._last = now


class PipelineBase:
    """Manifest-driven parts of a pipeline. Subclasses load their models and implement `infer`.

    model_stages: the timing keys that are model inference (the rest is the runtime's own work).
    counters: frames, empty_clouds (no point or no voxel: empty detections), voxel_overflow_frames
    (pillars beyond max_voxels dropped), points_dropped_overflow, points_nonfinite;
    camera_geometry.computed counts BEVPool geometries computed (calibration changes).
    """

    model_stages: tuple[str, ...] = ()

    def __init__(self, manifest: Manifest, options: PipelineOptions) -> None:
        self.manifest = manifest
        self.options = options
        self.class_names = manifest.class_names
        geometry = manifest.geometry
        try:
            self.kernels: Any = v2xfusion_kernels.backend(options.kernels_backend, device=options.kernels_device)
        except (ValueError, v2xfusion_kernels.SyclUnavailableError) as exc:
            raise OptionError(f"kernels_backend {options.kernels_backend!r}: {exc}") from None
        if options.threads:
            v2xfusion_kernels.set_num_threads(options.threads)
        self.network_size = tuple(int(v) for v in manifest.value("geometry", "image_size"))
        image = manifest.image
        if list(image.get("network_size", self.network_size)) != list(self.network_size):
            raise ManifestError(f"{manifest.path}: image.network_size {image['network_size']} differs from "
                                f"geometry.image_size {list(self.network_size)}")
        if image.get("channel_order", "RGB") != "RGB" or list(image.get("value_range", [0.0, 1.0])) != [0.0, 1.0]:
            raise ManifestError(f"{manifest.path}: the runtime feeds RGB values in 0-1 before mean / std; the "
                                f"manifest asks for {image.get('channel_order')} in {image.get('value_range')}")
        self.mean = [float(v) for v in manifest.value("image", "mean")]
        self.std = [float(v) for v in manifest.value("image", "std")]
        self.intensity_max = float(geometry.get("intensity_range", [0.0, 1.0])[1])
        self.pc_range = [float(v) for v in manifest.value("geometry", "pc_range")]
        self.camera_geometry = CameraGeometry(geometry, self.kernels, self._ground_plane())
        self.decoder = HeadDecoder(manifest, self.kernels, options.score_threshold)
        self._images: OrderedDict[tuple[int, int], NetworkImage] = OrderedDict()
        self._image_input = np.zeros((1, 3, self.network_size[1], self.network_size[0]), dtype=np.float32)
        self.counters = {"frames": 0, "empty_clouds": 0, "voxel_overflow_frames": 0, "points_dropped_overflow": 0,
                         "points_nonfinite": 0}
        self.last_voxel_stats: Any = None

    # ---- manifest-derived pieces ---------------------------------------------------------------
    def _ground_plane(self) -> np.ndarray | None:
        """Height bins need the ground plane: the option, else what the artifacts record, else the
        LiDAR z = 0 plane the training data describes (camera_geometry.lidar_z0_ground_plane)."""
        if self.options.ground_plane is not None:
            return np.asarray(self.options.ground_plane, dtype=np.float64)
        recorded = self.manifest.geometry.get("ground_plane")
        if recorded is not None:
            return np.asarray(recorded, dtype=np.float64)
        return lidar_z0_ground_plane()

    def network_image(self, image_size: tuple[int, int]) -> NetworkImage:
        """The resize / crop / normalise plan of a native image size (kept for the last few sizes)."""
        key = (int(image_size[0]), int(image_size[1]))
        plan = self._images.get(key)
        if plan is None:
            plan = NetworkImage(key, self.network_size, self.mean, self.std)
            self._images[key] = plan
            if len(self._images) > IMAGE_CACHE_SIZE:
                self._images.popitem(last=False)
        else:
            self._images.move_to_end(key)
        return plan

    # ---- per frame -----------------------------------------------------------------------------
    def check_frame(self, image: np.ndarray, points: np.ndarray, calibration: Calibration
                    ) -> tuple[np.ndarray, np.ndarray]:
        """The frame's inputs checked (frame_inputs) and in the layout the pipeline computes with."""
        check_calibration(calibration)
        return check_image(image, calibration.image_size), check_points(points, self.intensity_max)

    def camera_input(self, image: np.ndarray, calibration: Calibration) -> np.ndarray:
        """Write the normalised (1, 3, H, W) network input into the buffer the camera model reads."""
        return self.network_image(calibration.image_size)(image, out=self._image_input)

    def bev_pool_geometry(self, calibration: Calibration):
        """BEVPool-v2 geometry of the calibration (cached per calibration)."""
        crop = self.network_image(calibration.image_size).crop
        return self.camera_geometry(calibration, crop.matrix)

    def count_voxels(self, stats: Any) -> None:
        """Fold one frame's voxelization statistics into the counters."""
        self.last_voxel_stats = stats
        self.counters["points_nonfinite"] += int(stats.num_nonfinite)
        dropped = int(stats.num_voxel_overflow)
        if dropped:
            self.counters["voxel_overflow_frames"] += 1
            self.counters["points_dropped_overflow"] += dropped

    def empty(self, clock: StageClock) -> Detections:
        """No detections for a frame without LiDAR data inside pc_range (nothing to fuse)."""
        self.counters["empty_clouds"] += 1
        return Detections.empty(self.class_names, clock.timings)

    def detections(self, outputs: dict[str, np.ndarray], clock: StageClock) -> Detections:
        """Decode + NMS of the head outputs into the frame's Detections."""
        boxes, scores, labels = self.decoder.decode(outputs)
        clock.lap("decode")
        keep = self.decoder.suppress(boxes, scores, labels)
        clock.lap("nms")
        return Detections(np.ascontiguousarray(boxes[keep, :7], dtype=np.float32), scores[keep].astype(np.float32),
                          labels[keep].astype(np.int32), self.class_names, clock.timings)
