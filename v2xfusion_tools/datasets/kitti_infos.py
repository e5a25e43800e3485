"""Write mmdet3d v1.x KITTI infos (`kitti_infos_{train,val,trainval,test}.pkl`) from the raw KITTI layout.

Guide §2.2.1 runs upstream mmdet3d's `tools/create_data.py kitti [--with-plane]`; this module writes the
same files without mmdet3d: what its kitti_converter.create_kitti_info_file gathers (kitti_data_utils:
calib, image shape, labels, difficulty, points in boxes) passed through update_infos_to_v2.update_kitti_infos,
as a dict {metainfo, data_list}. Per frame (keys as mmdet3d leaves them after dropping empty ones):

    sample_idx                      int frame number
    images.CAM0..CAM3               cam2img (P_i, 4x4), lidar2img (P_i @ lidar2cam); CAM2 also img_path,
                                    height, width (numpy int32, from the image file) and lidar2cam
    images.R0_rect                  4x4 (float32 values)
    lidar_points                    num_pts_feats 4, lidar_path, Tr_velo_to_cam, Tr_imu_to_velo (4x4, float32)
    instances                       one per label line, DontCare included: bbox, bbox_label (index in
                                    METAINFO_CLASSES, -1 otherwise), bbox_3d (camera-rect bottom centre x, y, z,
                                    size l, h, w, rotation_y), bbox_label_3d, depth and center_2d (the gravity
                                    centre through P2), num_lidar_pts, difficulty, truncated, occluded, alpha,
                                    score, index, group_id
    plane                           (4,) camera-rect road plane from training/planes (only with_plane)
    cam_instances.CAM2              the mono-3D records of convert_utils.get_kitti_style_2d_boxes

Rules kept from mmdet3d: lidar2cam = R0_rect @ Tr_velo_to_cam computed in float32; num_lidar_pts counts
the velodyne points inside the box among those in image_2's viewing frustum (depth 0.001-100 m), -1 for
DontCare; difficulty 0 / 1 / 2 by the KITTI benchmark's box height (> 40 / 25 / 25 px), occlusion (<= 0 /
1 / 2) and truncation (<= 0.15 / 0.3 / 0.5), -1 when none fits; metainfo.categories maps the eight
classes to 0-7 and each other name seen in the split (DontCare) to -1. Where mmdet3d relies on DontCare
lines coming last (true of every KITTI file) we go by the name, which gives the same values on real
files. Test frames (testing/, no labels) get `instances: []` and no cam_instances, as mmdet3d v1.4.
Not written: velodyne_reduced and the ground-truth database (guide §2.2.1: not used here).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from v2xfusion_perception import boxes as box_ops
from v2xfusion_perception.errors import DatasetError
from v2xfusion_tools.datasets import kitti_format
from v2xfusion_tools.datasets.safe_pickle import write_pickle
from v2xfusion_tools.progress import ProgressFactory, stage

METAINFO_CLASSES = ("Pedestrian", "Cyclist", "Car", "Van", "Truck", "Person_sitting", "Tram", "Misc")
NUM_POINT_FEATURES = 4
FRUSTUM_NEAR, FRUSTUM_FAR = 0.001, 100.0        # box_np_ops.get_frustum's clip distances (m)
DIFFICULTY_MIN_HEIGHT = (40.0, 25.0, 25.0)      # easy, moderate, hard (px)
DIFFICULTY_MAX_OCCLUSION = (0, 1, 2)
DIFFICULTY_MAX_TRUNCATION = (0.15, 0.3, 0.5)
CAMERA_OCCLUSION_LEVELS = (0, 1, 2, 3)          # generate_kitti_camera_instances keeps these
INFO_SPLITS = ("train", "val", "trainval", "test")



@dataclass
class KittiInfosSummary:
    """What create_kitti_infos wrote: per split (file, frames, labelled instances), and the wall time."""

    out_dir: Path
    seconds: float = 0.0
    files: dict[str, tuple[Path, int, int]] = field(default_factory=dict)

    def format(self) -> str:
        """Printable lines."""
        lines = [f"{split}: {frames} frames, {instances} instances -> {path}"
                 for split, (path, frames, instances) in self.files.items()]
        return "\n".join(lines + [f"kitti infos written in {self.seconds:.1f} s"])


def create_kitti_infos(root: str | Path, out_dir: str | Path | None = None, with_plane: bool = False,
                       progress: ProgressFactory | None = None) -> KittiInfosSummary:
    """Write kitti_infos_{train,val,trainval,test}.pkl for the KITTI raw folder `root` into `out_dir`
    (default: `root`, as create_data.py --out-dir ./data/kitti). Splits come from ImageSets/*.txt
    (train and val required; without test.txt no test file is written). with_plane reads
    training/planes/NNNNNN.txt. progress: a progress_bar-like factory (description, total)."""
    started = time.perf_counter()
    root = Path(root)
    out_dir = Path(out_dir) if out_dir is not None else root
    if not (root / "training" / "calib").is_dir():
        raise DatasetError(f"{root}: not a KITTI raw folder (no training/calib); expected "
                           f"ImageSets/, training/{{calib,image_2,label_2,velodyne}}, testing/")
    splits = {}
    for split in ("train", "val", "test"):
        path = root / "ImageSets" / f"{split}.txt"
        if path.exists():
            splits[split] = kitti_format.read_image_set(path)
        elif split != "test":
            raise DatasetError(f"{path}: missing; mmdet3d's KITTI infos need ImageSets/train.txt and val.txt")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatasetError(f"{out_dir}: cannot create the output folder: {exc.strerror}") from None
    total = sum(len(ids) for ids in splits.values())
    frames: dict[str, list[tuple[dict, set[str]]]] = {}
    with stage(progress, "kitti infos", total) as advance:
        for split, ids in splits.items():
            training = split != "test"
            frames[split] = []
            for frame_id in ids:
                frames[split].append(kitti_frame_info(root, frame_id, training, with_plane and training))
                advance(1)
    if "train" in frames and "val" in frames:
        frames["trainval"] = frames["train"] + frames["val"]
    summary = KittiInfosSummary(out_dir)
    for split in INFO_SPLITS:
        if split not in frames:
            continue
        data_list = [info for info, _ in frames[split]]
        ignored = sorted(set().union(*(names for _, names in frames[split])))
        categories = {name: index for index, name in enumerate(METAINFO_CLASSES)}
        categories.update({name: -1 for name in ignored})
        path = out_dir / f"kitti_infos_{split}.pkl"
        write_pickle(path, {"metainfo": {"categories": categories, "dataset": "kitti", "info_version": "1.1"},
                            "data_list": data_list})
        labelled = sum(1 for info in data_list for inst in info["instances"] if inst["bbox_label"] >= 0)
        summary.files[split] = (path, len(data_list), labelled)
    summary.seconds = time.perf_counter() - started
    return summary


def kitti_frame_info(root: Path, frame_id: str, training: bool, with_plane: bool) -> tuple[dict, set[str]]:
    """One data_list entry and the label names outside METAINFO_CLASSES that it holds."""
    folder = root / ("training" if training else "testing")
    image_path = _existing(folder / "image_2" / f"{frame_id}.png", "image")
    lidar_path = _existing(folder / "velodyne" / f"{frame_id}.bin", "velodyne scan")
    calib = kitti_format.read_calib(folder / "calib" / f"{frame_id}.txt")
    height, width = image_shape(image_path)
    projections = {name: kitti_format.pad4(getattr(calib, name)) for name in ("P0", "P1", "P2", "P3")}
    rect = kitti_format.pad4(calib.R0_rect)
    velo_to_cam = kitti_format.pad4(calib.Tr_velo_to_cam).astype(np.float32)
    lidar2cam = rect.astype(np.float32) @ velo_to_cam
    images: dict = {}
    for index, name in enumerate(projections):
        camera = {"cam2img": projections[name].tolist(), "lidar2img": (projections[name] @ lidar2cam).tolist()}
        if index == 2:
            camera = {"img_path": image_path.name, "height": np.int32(height), "width": np.int32(width),
                      **camera, "lidar2cam": lidar2cam.tolist()}
        images[f"CAM{index}"] = camera
    images["R0_rect"] = rect.astype(np.float32).tolist()
    info: dict = {
        "sample_idx": int(frame_id),
        "images": images,
        "lidar_points": {"num_pts_feats": NUM_POINT_FEATURES, "lidar_path": lidar_path.name,
                         "Tr_velo_to_cam": velo_to_cam.tolist(),
                         "Tr_imu_to_velo": kitti_format.pad4(calib.Tr_imu_to_velo).astype(np.float32).tolist()},
        "instances": [],
    }
    if not training:
        return info, set()
    labels = kitti_format.read_labels(folder / "label_2" / f"{frame_id}.txt")
    points = kitti_format.read_velodyne(lidar_path)
    in_view = points_in_image_frustum(points, calib, (height, width))
    counts = lidar_points_in_labels(points[in_view], labels, calib.lidar2cam)
    info["instances"] = kitti_instances(labels, projections["P2"], counts)
    if with_plane:
        info["plane"] = read_plane(folder / "planes" / f"{frame_id}.txt")
    info["cam_instances"] = {"CAM2": kitti_camera_instances(labels, projections["P2"], (height, width))}
    ignored = {name for name in labels.types if name not in METAINFO_CLASSES}
    return info, ignored


def kitti_instances(labels: kitti_format.KittiLabels, cam2img: np.ndarray, num_lidar_pts: np.ndarray) -> list[dict]:
    """update_kitti_infos' instance dicts for every label line. cam2img: (4, 4) P2; num_lidar_pts: (N,)."""
    difficulty = kitti_difficulty(labels.bbox, labels.occluded, labels.truncated)
    scores = labels.score if labels.score is not None else np.zeros(len(labels))
    instances, index = [], 0
    for i, name in enumerate(labels.types):
        label = METAINFO_CLASSES.index(name) if name in METAINFO_CLASSES else -1
        dims_lhw = labels.dimensions[i][[2, 0, 1]]
        centre = labels.location[i] + dims_lhw * np.array([0.0, -0.5, 0.0])
        u, v, depth = _project(centre[None, :], cam2img)[0]
        dont_care = name == kitti_format.DONT_CARE
        instances.append({
            "bbox": labels.bbox[i].tolist(), "bbox_label": label,
            "bbox_3d": [*labels.location[i].tolist(), *dims_lhw.tolist(), float(labels.rotation_y[i])],
            "bbox_label_3d": label, "depth": float(depth), "center_2d": [float(u), float(v)],
            "num_lidar_pts": int(num_lidar_pts[i]), "difficulty": int(difficulty[i]),
            "truncated": float(labels.truncated[i]), "occluded": int(labels.occluded[i]),
            "alpha": float(labels.alpha[i]), "score": float(scores[i]), "index": -1 if dont_care else index,
            "group_id": i,
        })
        index += 0 if dont_care else 1
    return instances


def kitti_camera_instances(labels: kitti_format.KittiLabels, cam2img: np.ndarray,
                           image_hw: tuple[int, int]) -> list[dict]:
    """get_kitti_style_2d_boxes for CAM2: objects of METAINFO_CLASSES with a known occlusion level whose
    projected box overlaps the image and whose centre is in front of the camera."""
    height, width = image_hw
    records = []
    for i, name in enumerate(labels.types):
        if name not in METAINFO_CLASSES or int(labels.occluded[i]) not in CAMERA_OCCLUSION_LEVELS:
            continue
        dims_lhw = labels.dimensions[i][[2, 0, 1]]
        centre = labels.location[i] + dims_lhw * np.array([0.0, -0.5, 0.0])
        corners = camera_box_corners(centre, dims_lhw, float(labels.rotation_y[i]))
        front = corners[corners[:, 2] > 0]
        image_box = hull_box_in_image(_project(front, cam2img)[:, :2], width, height) if len(front) else None
        if image_box is None:
            continue
        u, v, depth = _project(centre[None, :], cam2img)[0]
        if depth <= 0:
            continue
        label = METAINFO_CLASSES.index(name)
        bottom_box = np.concatenate([labels.location[i], dims_lhw, [labels.rotation_y[i]]]).astype(np.float32)
        records.append({"bbox_label": label, "bbox_label_3d": label, "bbox": [float(c) for c in image_box],
                        "bbox_3d_isvalid": True, "bbox_3d": bottom_box.tolist(), "velocity": -1,
                        "center_2d": [float(u), float(v)], "depth": float(depth)})
    return records


def kitti_difficulty(bbox: np.ndarray, occluded: np.ndarray, truncated: np.ndarray) -> np.ndarray:
    """KITTI benchmark difficulty per object (kitti_data_utils.add_difficulty_to_annos).

    bbox: (N, 4) left, top, right, bottom; occluded: (N,); truncated: (N,). Returns (N,) int32: 0 easy,
    1 moderate, 2 hard, -1 none.
    """
    height = np.asarray(bbox, dtype=np.float64).reshape(-1, 4)
    height = height[:, 3] - height[:, 1]
    occluded, truncated = np.asarray(occluded), np.asarray(truncated)
    fits = [(occluded <= max_occ) & (height > min_h) & (truncated <= max_trunc) for min_h, max_occ, max_trunc
            in zip(DIFFICULTY_MIN_HEIGHT, DIFFICULTY_MAX_OCCLUSION, DIFFICULTY_MAX_TRUNCATION)]
    easy, moderate, hard = fits
    # mmdet3d's xor-s: moderate means "fits moderate, not easy", hard "fits hard, not moderate"
    return np.select([easy, easy ^ moderate, hard ^ moderate], [0, 1, 2], default=-1).astype(np.int32)


def points_in_image_frustum(points: np.ndarray, calib: kitti_format.KittiCalib,
                            image_hw: tuple[int, int]) -> np.ndarray:
    """Which points box_np_ops.remove_outside_points keeps: inside the frustum of image_2's pixel
    rectangle [0, W] x [0, H] between FRUSTUM_NEAR and FRUSTUM_FAR metres from the camera.

    points: (N, >=3) LiDAR frame. Returns (N,) bool. The depth is along camera 2's optical axis: P2's
    third row over its norm (P2 = C [R | T] with C's last row (0, 0, 1)).
    """
    height, width = image_hw
    projected = _project(box_ops.transform_points(points[:, :3], calib.lidar2cam), kitti_format.pad4(calib.P2))
    depth = projected[:, 2] / np.linalg.norm(calib.P2[2, :3])
    u, v = projected[:, 0], projected[:, 1]
    return ((depth > FRUSTUM_NEAR) & (depth < FRUSTUM_FAR) & (u > 0) & (u < width) & (v > 0) & (v < height))


def lidar_points_in_labels(points: np.ndarray, labels: kitti_format.KittiLabels, lidar2cam: np.ndarray) -> np.ndarray:
    """Points inside each labelled box, -1 on DontCare lines. points: (N, >=3); returns (M,) int32."""
    care = np.array([name != kitti_format.DONT_CARE for name in labels.types], dtype=bool)
    counts = np.full(len(labels), -1, dtype=np.int32)
    if care.any():
        boxes = box_ops.lidar_boxes_from_kitti(labels.dimensions[care], labels.location[care],
                                               labels.rotation_y[care], lidar2cam)
        counts[care] = box_ops.points_in_boxes(points, boxes).sum(axis=0)
    return counts


def camera_box_corners(centre: np.ndarray, dims_lhw: np.ndarray, rotation_y: float) -> np.ndarray:
    """Corners (8, 3) of a KITTI camera-rect box around its gravity centre: size (l, h, w) along the box's
    x, y, z, turned by rotation_y about camera y (x' = x cos + z sin, z' = -x sin + z cos)."""
    signs = np.array([[sx, sy, sz] for sx in (-0.5, 0.5) for sy in (-0.5, 0.5) for sz in (-0.5, 0.5)])
    local = signs * np.asarray(dims_lhw, dtype=np.float64)
    cos, sin = np.cos(rotation_y), np.sin(rotation_y)
    x = local[:, 0] * cos + local[:, 2] * sin
    z = -local[:, 0] * sin + local[:, 2] * cos
    return np.stack([x, local[:, 1], z], axis=1) + np.asarray(centre, dtype=np.float64)


def hull_box_in_image(uv: np.ndarray, width: float, height: float) -> tuple[float, float, float, float] | None:
    """Extent of (convex hull of the points) ∩ (image rectangle [0, W] x [0, H]), as mmdet3d's
    post_process_coords; None when that intersection has no area. uv: (N, 2)."""
    polygon = _convex_hull(np.asarray(uv, dtype=np.float64))
    for axis, bound, keep_below in ((0, 0.0, False), (0, float(width), True), (1, 0.0, False),
                                    (1, float(height), True)):
        polygon = _clip(polygon, axis, bound, keep_below)
        if len(polygon) < 3:
            return None
    if _area(polygon) <= 0.0:
        return None
    return (float(polygon[:, 0].min()), float(polygon[:, 1].min()), float(polygon[:, 0].max()),
            float(polygon[:, 1].max()))


def image_shape(path: Path) -> tuple[int, int]:
    """(height, width) of an image file, from its header."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            width, height = image.size
    except (OSError, UnidentifiedImageError) as exc:
        raise DatasetError(f"{path}: cannot read the image size: {exc}") from None
    return height, width


def read_plane(path: Path) -> np.ndarray:
    """KITTI road plane file: '# Plane', 'Width 4', 'Height 1', then a b c d (camera-rect). Returns (4,)."""
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read road plane file: {exc.strerror} (drop --with-plane when "
                           f"training/planes is absent)") from None
    try:
        plane = np.array([float(v) for v in lines[3].split()], dtype=np.float64)
    except (IndexError, ValueError):
        raise DatasetError(f"{path}: a road plane file has the four plane numbers on its 4th line") from None
    if plane.shape != (4,) or not np.all(np.isfinite(plane)):
        raise DatasetError(f"{path}: the 4th line must hold four finite numbers a b c d, got {lines[3]!r}")
    return plane


def _project(points: np.ndarray, cam2img: np.ndarray) -> np.ndarray:
    """mmdet3d's points_cam2img with depth: (N, 3) -> (N, 3) u, v, depth through a (4, 4) matrix."""
    projected = np.asarray(points, dtype=np.float64) @ cam2img[:3, :3].T + cam2img[:3, 3]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.concatenate([projected[:, :2] / projected[:, 2:3], projected[:, 2:3]], axis=1)


def _convex_hull(points: np.ndarray) -> np.ndarray:
    """Counter-clockwise convex hull (Andrew's monotone chain); (K, 2), K < 3 when degenerate."""
    unique = np.unique(points, axis=0)
    if len(unique) < 3:
        return unique

    def cross(o: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: list[np.ndarray] = []
    upper: list[np.ndarray] = []
    for point in unique:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], point) <= 0:
            lower.pop()
        lower.append(point)
    for point in unique[::-1]:
        while len(upper) >= 2 and cross(upper[-2], upper[-1], point) <= 0:
            upper.pop()
        upper.append(point)
    return np.array(lower[:-1] + upper[:-1])


def _clip(polygon: np.ndarray, axis: int, bound: float, keep_below: bool) -> np.ndarray:
    """Sutherland-Hodgman: the part of a convex polygon on one side of the line `coordinate[axis] = bound`."""
    if len(polygon) == 0:
        return polygon
    sign = -1.0 if keep_below else 1.0
    inside = sign * (polygon[:, axis] - bound) >= 0.0
    out = []
    for i in range(len(polygon)):
        current, following = polygon[i], polygon[(i + 1) % len(polygon)]
        if inside[i]:
            out.append(current)
        if inside[i] != inside[(i + 1) % len(polygon)]:
            t = (bound - current[axis]) / (following[axis] - current[axis])
            out.append(current + t * (following - current))
    return np.array(out).reshape(-1, 2)


def _area(polygon: np.ndarray) -> float:
    x, y = polygon[:, 0], polygon[:, 1]
    return 0.5 * float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def _existing(path: Path, what: str) -> Path:
    if not path.is_file():
        raise DatasetError(f"{path}: {what} missing (every frame of ImageSets needs it)")
    return path

