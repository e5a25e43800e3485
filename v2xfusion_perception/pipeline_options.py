"""How a runtime pipeline runs: device, precision, per-stage INT8, threads, kernels backend, thresholds.

The same options serve the offline runner's flags (guide §4.2.7: --int8, --int8-camera, --fp16,
--device ...) and the node's parameters (design.md §5); each is checked here, once, with an error that
names it.
"""
from __future__ import annotations

from dataclasses import dataclass

from v2xfusion_perception.errors import V2XError

PRECISIONS = ("fp32", "fp16", "int8")
DEVICES = ("CPU", "GPU", "AUTO")
KERNEL_BACKENDS = ("host", "sycl", "auto")
# Pipeline A's four models by their INT8 toggle (guide §4.2.7 --int8-camera / -pfe / -fuser / -head)
INT8_STAGES = {"camera": "camera.backbone", "pfe": "lidar_pfe", "fuser": "fuser", "head": "head"}


class OptionError(V2XError):
    """A pipeline option is invalid; the message names it."""


@dataclass(frozen=True)
class PipelineOptions:
    """device: OpenVINO device CPU | GPU | AUTO (or GPU.<n>); precision: fp32 | fp16 | int8;
    int8_stages: with int8, which of pipeline A's models (camera, pfe, fuser, head) run in INT8, the
    others in FP32 (empty: all four; pipeline B has one model and takes none); threads: CPU inference
    threads (OpenVINO and the kernels), None for the defaults; kernels_backend: host | sycl | auto
    (design.md §4) and kernels_device, the SYCL device selector for sycl / auto (the configs'
    kernels_device; None: the kernels' default, the first GPU); score_threshold: replaces the manifest's when set; ground_plane: (a, b, c, d) in
    the LiDAR frame for height-bin models, replacing what the artifacts record; prefer_static_pfe:
    use the static-V PFE when the artifacts have one (guide §4.2.4)."""

    device: str = "CPU"
    precision: str = "fp32"
    int8_stages: tuple[str, ...] = ()
    threads: int | None = None
    kernels_backend: str = "host"
    kernels_device: str | None = None
    score_threshold: float | None = None
    ground_plane: tuple[float, float, float, float] | None = None
    prefer_static_pfe: bool = True

    def __post_init__(self) -> None:
        if self.device not in DEVICES and not self.device.startswith(("GPU.", "AUTO:")):
            raise OptionError(f"device: expected one of {', '.join(DEVICES)} (or GPU.<n>), got {self.device!r}")
        if self.precision not in PRECISIONS:
            raise OptionError(f"precision: expected one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        unknown = [s for s in self.int8_stages if s not in INT8_STAGES]
        if unknown:
            raise OptionError(f"int8_stages: unknown stage(s) {unknown}; choose from {', '.join(INT8_STAGES)}")
        if self.int8_stages and self.precision != "int8":
            raise OptionError(f"int8_stages {list(self.int8_stages)} need precision int8, got {self.precision}")
        if self.threads is not None and self.threads < 1:
            raise OptionError(f"threads: expected a positive count, got {self.threads}")
        if self.kernels_backend not in KERNEL_BACKENDS:
            raise OptionError(f"kernels_backend: expected one of {', '.join(KERNEL_BACKENDS)}, "
                              f"got {self.kernels_backend!r}")
        if self.score_threshold is not None and not 0.0 <= self.score_threshold < 1.0:
            raise OptionError(f"score_threshold: expected a value in [0, 1), got {self.score_threshold}")
        if self.ground_plane is not None and len(self.ground_plane) != 4:
            raise OptionError(f"ground_plane: expected (a, b, c, d), got {self.ground_plane!r}")

    def stage_precision(self, stage: str) -> str:
        """The model precision of one of pipeline A's stages (manifest stage name)."""
        if self.precision != "int8":
            return self.precision
        chosen = self.int8_stages or tuple(INT8_STAGES)
        return "int8" if stage in (INT8_STAGES[s] for s in chosen) else "fp32"
