"""The sensor rig of a synthetic data set: LiDAR beam pattern and the camera calibration, from the config.

Every number comes from cfg["synthetic"] of the preset (lidar / camera / image_native_size); what is
built here is the geometry both sensors and all label writers share:

* LiDAR frame (design.md §2): the LiDAR sits at the origin, the ground plane is z = -lidar.mount_height.
* Camera: a pinhole with focal `camera.focal`, principal point at the image centre, optical centre at
  `camera.lidar_to_camera_offset` in the LiDAR frame, looking along +x, pitched down by `pitch_deg`.
  The camera frame is the usual one (x right, y down, z forward).
* kitti: the camera frame is camera-rect of a KITTI rig whose colour camera image_2 is the one above.
  P0..P3 carry KITTI's stereo offsets (cameras 0/1 grey, 2/3 colour, devkit setup figure), R0_rect is a
  small rotation as in real calib files and Tr_velo_to_cam undoes it, so only R0_rect @ Tr_velo_to_cam
  is the LiDAR -> camera-rect transform (a reader that skips R0_rect is caught by the tests). The rig's
  matrices are the ones a reader gets back from the written calib text.
* v2x: DAIR's virtual-LiDAR -> camera rotation / translation, cam_K, zero cam_D (the renderer has no
  lens distortion) and a fixed virtual-LiDAR -> world pose drawn from the data set's seed.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from v2xfusion_perception.errors import ConfigError
from v2xfusion_tools.datasets import kitti_format

# KITTI rig: x offset (m) of each rectified camera from camera 0 as it enters P_i = K [I | t_i]
# (real P1/P2/P3 give -0.537, +0.062, -0.471 m), and the IMU -> LiDAR lever arm of the car.
KITTI_STEREO_OFFSETS = {"P0": 0.0, "P1": -0.537, "P2": 0.062, "P3": -0.471}
KITTI_IMU_TO_VELO_TRANSLATION = (-0.81, 0.32, -0.80)
# R0_rect of a real KITTI drive is a rotation of well under a degree; this one (axis-angle, rad) keeps
# it far from identity enough that leaving it out moves a box by centimetres at 40 m.
KITTI_R0_RECT_ROTVEC = (0.0042, -0.0071, 0.0013)


@dataclass(frozen=True)
class LidarSpec:
    """Beam pattern and error model of the ray-cast LiDAR (cfg["synthetic"]["lidar"])."""

    beams: int
    fov_up_deg: float
    fov_down_deg: float
    azimuth_steps: int
    horizontal_fov_deg: float
    max_range: float
    mount_height: float
    range_noise: float
    dropout: float

    def ray_directions(self) -> np.ndarray:
        """Unit ray directions (beams * azimuth_steps, 3) float64, beam-major, azimuth centred on +x."""
        elevation = np.deg2rad(np.linspace(self.fov_down_deg, self.fov_up_deg, self.beams))
        fov = np.deg2rad(self.horizontal_fov_deg)
        azimuth = -fov / 2.0 + (np.arange(self.azimuth_steps) + 0.5) * fov / self.azimuth_steps
        el, az = np.meshgrid(elevation, azimuth, indexing="ij")
        return np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], axis=-1).reshape(-1, 3)


@dataclass(frozen=True)
class Rig:
    """Everything geometric about a synthetic frame's sensors (float64 matrices).

    lidar2cam: (4, 4) LiDAR -> camera (camera-rect for kitti); intrinsic: (3, 3) K;
    lidar2img: (4, 4) LiDAR -> pixels (P2 @ lidar2cam for kitti, K @ lidar2cam for v2x);
    image_size: (W, H) native; kitti_calib: the calib file content (kitti only);
    lidar2world: (4, 4) virtual LiDAR -> world (v2x only).
    """

    preset: str
    lidar: LidarSpec
    ground_z: float
    image_size: tuple[int, int]
    lidar2cam: np.ndarray
    intrinsic: np.ndarray
    lidar2img: np.ndarray
    kitti_calib: kitti_format.KittiCalib | None
    lidar2world: np.ndarray | None


def build_rig(synthetic: dict, preset: str, seed: int) -> Rig:
    """The rig of cfg["synthetic"] for preset 'kitti' or 'v2x'; `seed` draws v2x's world pose."""
    lidar = LidarSpec(**{key: synthetic["lidar"][key] for key in LidarSpec.__dataclass_fields__})
    _check_lidar(lidar)
    camera = synthetic["camera"]
    width, height = (int(v) for v in synthetic["image_native_size"])
    offset = np.asarray(camera["lidar_to_camera_offset"], dtype=np.float64)
    if abs(lidar.mount_height + offset[2] - camera["mount_height"]) > 1e-6:
        raise ConfigError(
            f"synthetic.camera.mount_height ({camera['mount_height']}) must equal synthetic.lidar.mount_height "
            f"+ synthetic.camera.lidar_to_camera_offset[2] ({lidar.mount_height} + {offset[2]}): both sensors "
            f"stand on the same ground plane")
    if width <= 0 or height <= 0 or camera["focal"] <= 0:
        raise ConfigError("synthetic.image_native_size and synthetic.camera.focal must be positive")
    focal = float(camera["focal"])
    intrinsic = np.array([[focal, 0.0, width / 2.0], [0.0, focal, height / 2.0], [0.0, 0.0, 1.0]])
    rotation = _lidar_to_camera_rotation(np.deg2rad(camera["pitch_deg"]))
    ground_z = -lidar.mount_height
    if preset == "kitti":
        calib = _kitti_calib(intrinsic, rotation, offset)
        return Rig(preset, lidar, ground_z, (width, height), calib.lidar2cam, intrinsic, calib.lidar2img,
                   calib, None)
    if preset == "v2x":
        lidar2cam = np.eye(4)
        lidar2cam[:3, :3] = rotation
        lidar2cam[:3, 3] = -rotation @ offset
        lidar2img = kitti_format.pad4(intrinsic) @ lidar2cam
        return Rig(preset, lidar, ground_z, (width, height), lidar2cam, intrinsic, lidar2img, None,
                   _world_pose(seed))
    raise ConfigError(f"synthetic data: unknown preset {preset!r}; choose kitti or v2x")


def _check_lidar(lidar: LidarSpec) -> None:
    problems = []
    if lidar.beams < 1 or lidar.azimuth_steps < 1:
        problems.append("beams and azimuth_steps must be >= 1")
    if not lidar.fov_down_deg <= lidar.fov_up_deg:
        problems.append("fov_down_deg must not exceed fov_up_deg")
    if not 0.0 < lidar.horizontal_fov_deg <= 360.0:
        problems.append("horizontal_fov_deg must be in (0, 360]")
    if lidar.max_range <= 0 or lidar.mount_height <= 0:
        problems.append("max_range and mount_height must be positive")
    if lidar.range_noise < 0 or not 0.0 <= lidar.dropout < 1.0:
        problems.append("range_noise must be >= 0 and dropout in [0, 1)")
    if problems:
        raise ConfigError("synthetic.lidar: " + "; ".join(problems))


def _lidar_to_camera_rotation(pitch: float) -> np.ndarray:
    """Rows are the camera axes (x right, y down, z forward) written in the LiDAR frame."""
    forward = np.array([np.cos(pitch), 0.0, -np.sin(pitch)])
    right = np.array([0.0, -1.0, 0.0])
    down = np.cross(forward, right)
    return np.stack([right, down, forward]) + 0.0   # + 0.0 turns the cross product's -0.0 into 0.0


def _rotation_from_rotvec(rotvec: np.ndarray) -> np.ndarray:
    angle = float(np.linalg.norm(rotvec))
    axis = rotvec / angle
    skew = np.array([[0.0, -axis[2], axis[1]], [axis[2], 0.0, -axis[0]], [-axis[1], axis[0], 0.0]])
    return np.eye(3) + np.sin(angle) * skew + (1.0 - np.cos(angle)) * skew @ skew


def _kitti_calib(intrinsic: np.ndarray, rotation: np.ndarray, image2_centre: np.ndarray
                 ) -> kitti_format.KittiCalib:
    projections = {}
    for key, offset in KITTI_STEREO_OFFSETS.items():
        projections[key] = intrinsic @ np.hstack([np.eye(3), np.array([[offset], [0.0], [0.0]])])
    # image_2's optical centre is camera 0's moved by -offset along camera x: place camera 0 so that
    # image_2 sits at the configured offset.
    cam0_centre = image2_centre + rotation.T @ np.array([KITTI_STEREO_OFFSETS["P2"], 0.0, 0.0])
    lidar2rect = np.hstack([rotation, (-rotation @ cam0_centre)[:, None]])
    r0_rect = _rotation_from_rotvec(np.asarray(KITTI_R0_RECT_ROTVEC))
    tr_imu_to_velo = np.hstack([np.eye(3), np.asarray(KITTI_IMU_TO_VELO_TRANSLATION)[:, None]])
    calib = kitti_format.KittiCalib(R0_rect=r0_rect, Tr_velo_to_cam=r0_rect.T @ lidar2rect,
                                    Tr_imu_to_velo=tr_imu_to_velo, **projections)
    # labels and pictures must use exactly what a reader of the calib file gets
    return kitti_format.parse_calib(kitti_format.format_calib(calib), "synthetic calib")


def _world_pose(seed: int) -> np.ndarray:
    """A fixed roadside pole pose in a UTM-like world frame, drawn from the data set seed."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x57A7]))
    yaw = rng.uniform(-np.pi, np.pi)
    pose = np.eye(4)
    pose[:3, :3] = [[np.cos(yaw), -np.sin(yaw), 0.0], [np.sin(yaw), np.cos(yaw), 0.0], [0.0, 0.0, 1.0]]
    pose[:3, 3] = [rng.uniform(4.6e5, 4.7e5), rng.uniform(4.41e6, 4.42e6), rng.uniform(20.0, 40.0)]
    return pose
