"""The `data:` section of a config: where the infos are, how frames are read and how they are augmented.

The schema is the dataclasses below (field name = key, annotation = type, default = optional key);
`data_settings(config)` checks the section against them and raises a ConfigError naming the full key
path (`data.augment.rotation`) for an unknown, missing, mistyped or out-of-range value.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Mapping

from v2xfusion_perception.errors import ConfigError
from v2xfusion_tools.models.builder import config_section


@dataclass(frozen=True)
class ImageSettings:
    """Camera input. mean / std: RGB normalisation of 0-1 pixel values (ImageNet's by default);
    resize_jitter j: in training the resize factor that brings the native image to geometry.image_size
    is multiplied by U(1 - j, 1 + j) and the crop slides sideways (evaluation: exact factor, centred)."""

    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    resize_jitter: float = 0.0


@dataclass(frozen=True)
class AugmentSettings:
    """Global LiDAR-frame augmentation of training frames (points, boxes and the camera geometry alike).

    rotation: (low, high) radians about +z; scale: (low, high) uniform factor; translation_std: (x, y, z)
    metres of Gaussian shift; flip_y / flip_x: probability of mirroring y -> -y / x -> -x.
    """

    rotation: tuple[float, float] = (0.0, 0.0)
    scale: tuple[float, float] = (1.0, 1.0)
    translation_std: tuple[float, float, float] = (0.0, 0.0, 0.0)
    flip_y: float = 0.0
    flip_x: float = 0.0


@dataclass(frozen=True)
class DataSettings:
    """infos: split name -> V2X infos file (relative paths are relative to dataset_root); size_order:
    how the infos store `size` ('wlh' ours / the guide's, 'lwh' BEVHeight's DAIR script);
    intensity_divisor: the point files' intensity is divided by it (DAIR PCDs carry 0-255, KITTI 0-1);
    camera_fov_only: keep only points that project into the image (KITTI's velodyne_reduced);
    min_lidar_points: ground-truth boxes with fewer points (num_lidar_pts) are dropped;
    heading_mod_pi: train headings folded into [-pi/2, pi/2), for objects whose front and back look
    alike (the synthetic scenes' boxes): there the sign of the heading cannot be learned and the
    head's (sin, cos) regression averages the two answers to nothing; box IoU (AP) is blind to the
    fold, orientation is then known up to pi; workers: data loader processes (0: in the training
    process)."""

    infos: dict[str, str]
    size_order: Literal["wlh", "lwh"] = "wlh"
    intensity_divisor: float = 1.0
    camera_fov_only: bool = False
    min_lidar_points: int = 1
    heading_mod_pi: bool = False
    image: ImageSettings = field(default_factory=ImageSettings)
    augment: AugmentSettings = field(default_factory=AugmentSettings)
    workers: int = 2


def data_settings(config: Mapping[str, Any]) -> DataSettings:
    """The validated `data` section of a loaded config."""
    if config.get("data") is None:
        raise ConfigError("missing section 'data': training, evaluation and pictures read the infos it names")
    settings = config_section(DataSettings, config["data"], "data")
    settings = DataSettings(**{**settings.__dict__, "image": ImageSettings(**_tuples(settings.image)),
                               "augment": AugmentSettings(**_tuples(settings.augment))})
    _check(settings)
    return settings


def _tuples(section: Any) -> dict:
    # the converter returns lists for tuple fields; frozen settings keep tuples
    return {key: tuple(value) if isinstance(value, list) else value for key, value in section.__dict__.items()}


def _check(settings: DataSettings) -> None:
    if not settings.infos:
        raise ConfigError("data.infos: name at least one split (e.g. train: kitti_infos_train.pkl)")
    if settings.intensity_divisor <= 0:
        raise ConfigError(f"data.intensity_divisor: must be > 0, got {settings.intensity_divisor}")
    if settings.min_lidar_points < 0 or settings.workers < 0:
        key = "min_lidar_points" if settings.min_lidar_points < 0 else "workers"
        raise ConfigError(f"data.{key}: must be >= 0, got {getattr(settings, key)}")
    if any(value <= 0 for value in settings.image.std):
        raise ConfigError(f"data.image.std: every value must be > 0, got {list(settings.image.std)}")
    if not 0.0 <= settings.image.resize_jitter < 1.0:
        raise ConfigError(f"data.image.resize_jitter: must be in [0, 1), got {settings.image.resize_jitter}")
    augment = settings.augment
    for key in ("rotation", "scale"):
        low, high = getattr(augment, key)
        if low > high:
            raise ConfigError(f"data.augment.{key}: (low, high) with low <= high, got [{low}, {high}]")
    if augment.scale[0] <= 0:
        raise ConfigError(f"data.augment.scale: factors must be > 0, got {list(augment.scale)}")
    if any(value < 0 for value in augment.translation_std):
        raise ConfigError(f"data.augment.translation_std: must be >= 0, got {list(augment.translation_std)}")
    for key in ("flip_y", "flip_x"):
        if not 0.0 <= getattr(augment, key) <= 1.0:
            raise ConfigError(f"data.augment.{key}: a probability in [0, 1], got {getattr(augment, key)}")
