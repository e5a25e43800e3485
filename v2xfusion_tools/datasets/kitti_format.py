"""Read and write the raw KITTI 3D Object files: calib/*.txt, label_2/*.txt, velodyne/*.bin, ImageSets.

Formats (KITTI object devkit, readme.txt):
* calib: one `KEY: numbers` line per matrix, row-major: P0..P3 (3x4 projection of the rectified
  cameras 0-3; image_2 is P2), R0_rect (3x3 rectifying rotation), Tr_velo_to_cam and Tr_imu_to_velo
  (3x4 rigid). A LiDAR point maps into camera-rect by lidar2cam = R0_rect @ Tr_velo_to_cam (both padded
  to 4x4) and into image_2 pixels by P2 @ lidar2cam. The KITTI tracking spellings R_rect, Tr_velo_cam,
  Tr_imu_velo are read as the same matrices.
* label_2: one object per line, 15 fields (16 with a detection score): type, truncated (0..1),
  occluded (0 visible, 1 partly, 2 largely occluded, 3 unknown), alpha, bbox left top right bottom
  (image_2 pixels), dimensions h w l (m), location x y z (bottom centre, camera-rect, m), rotation_y.
  `DontCare` lines mark unlabelled regions with -1 / -10 / -1000 placeholders in the 3-D fields.
* velodyne: little-endian float32 (x, y, z, reflectance) per point, reflectance in [0, 1].
* ImageSets/{train,val,trainval,test}.txt: one six-digit frame id per line.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from v2xfusion_perception import boxes as box_ops
from v2xfusion_perception.errors import DatasetError

CALIB_SHAPES = {
    "P0": (3, 4), "P1": (3, 4), "P2": (3, 4), "P3": (3, 4),
    "R0_rect": (3, 3), "Tr_velo_to_cam": (3, 4), "Tr_imu_to_velo": (3, 4),
}
_CALIB_ALIASES = {"R_rect": "R0_rect", "Tr_velo_cam": "Tr_velo_to_cam", "Tr_imu_velo": "Tr_imu_to_velo"}
LABEL_FIELDS = ("type", "truncated", "occluded", "alpha", "bbox_left", "bbox_top", "bbox_right",
                "bbox_bottom", "height", "width", "length", "x", "y", "z", "rotation_y")
DONT_CARE = "DontCare"
SPLITS = ("train", "val", "trainval", "test")


def frame_id(index: int) -> str:
    """KITTI's six-digit frame name: 7 -> '000007'."""
    return f"{index:06d}"


def pad4(matrix: np.ndarray) -> np.ndarray:
    """A 3x3 or 3x4 matrix as a 4x4 homogeneous transform (bottom row 0 0 0 1)."""
    out = np.eye(4)
    matrix = np.asarray(matrix, dtype=np.float64)
    out[:3, :matrix.shape[1]] = matrix
    return out


@dataclass(frozen=True)
class KittiCalib:
    """The seven matrices of a KITTI object calib file (float64, shapes as in CALIB_SHAPES)."""

    P0: np.ndarray
    P1: np.ndarray
    P2: np.ndarray
    P3: np.ndarray
    R0_rect: np.ndarray
    Tr_velo_to_cam: np.ndarray
    Tr_imu_to_velo: np.ndarray

    @property
    def lidar2cam(self) -> np.ndarray:
        """(4, 4) LiDAR -> camera-rect: R0_rect @ Tr_velo_to_cam."""
        return pad4(self.R0_rect) @ pad4(self.Tr_velo_to_cam)

    @property
    def lidar2img(self) -> np.ndarray:
        """(4, 4) LiDAR -> image_2 pixels (homogeneous): P2 @ R0_rect @ Tr_velo_to_cam."""
        return pad4(self.P2) @ self.lidar2cam


def parse_calib(text: str, source: str | Path) -> KittiCalib:
    """Parse a calib file's text; `source` names the file in errors."""
    found: dict[str, np.ndarray] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        key, sep, values = line.partition(":")
        key = _CALIB_ALIASES.get(key.strip(), key.strip())
        if not sep:
            raise DatasetError(f"{source}: line {number}: expected 'KEY: numbers', got {line.strip()!r}")
        if key not in CALIB_SHAPES:
            continue
        shape = CALIB_SHAPES[key]
        try:
            numbers = np.array([float(v) for v in values.split()], dtype=np.float64)
        except ValueError:
            raise DatasetError(f"{source}: {key}: holds a non-number: {values.strip()!r}") from None
        if numbers.size != shape[0] * shape[1]:
            raise DatasetError(f"{source}: {key}: expected {shape[0] * shape[1]} numbers, got {numbers.size}")
        if not np.all(np.isfinite(numbers)):
            raise DatasetError(f"{source}: {key}: holds inf or nan")
        found[key] = numbers.reshape(shape)
    missing = [key for key in CALIB_SHAPES if key not in found]
    if missing:
        raise DatasetError(f"{source}: calib lacks {', '.join(missing)}")
    return KittiCalib(**found)


def read_calib(path: str | Path) -> KittiCalib:
    """Read calib/NNNNNN.txt."""
    return parse_calib(_read_text(path, "calib"), path)


def format_calib(calib: KittiCalib) -> str:
    """The calib file text, numbers as KITTI writes them (%.12e)."""
    lines = []
    for key in CALIB_SHAPES:
        values = np.asarray(getattr(calib, key), dtype=np.float64).reshape(-1)
        lines.append(f"{key}: " + " ".join(f"{v:.12e}" for v in values))
    return "\n".join(lines) + "\n\n"


def write_calib(path: str | Path, calib: KittiCalib) -> None:
    """Write calib/NNNNNN.txt."""
    Path(path).write_text(format_calib(calib))


@dataclass(frozen=True)
class KittiLabels:
    """The objects of one label_2 file, column-wise (N objects).

    types: N class names; truncated (N,) float64; occluded (N,) int64; alpha (N,); bbox (N, 4) left,
    top, right, bottom; dimensions (N, 3) h, w, l; location (N, 3) bottom centre in camera-rect;
    rotation_y (N,); score (N,) for detections, None for ground truth.
    """

    types: tuple[str, ...]
    truncated: np.ndarray
    occluded: np.ndarray
    alpha: np.ndarray
    bbox: np.ndarray
    dimensions: np.ndarray
    location: np.ndarray
    rotation_y: np.ndarray
    score: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.types)

    def select(self, mask: np.ndarray) -> KittiLabels:
        """The objects where `mask` (N,) bool is set, in order."""
        mask = np.asarray(mask, dtype=bool)
        return KittiLabels(
            types=tuple(t for t, keep in zip(self.types, mask) if keep), truncated=self.truncated[mask],
            occluded=self.occluded[mask], alpha=self.alpha[mask], bbox=self.bbox[mask],
            dimensions=self.dimensions[mask], location=self.location[mask], rotation_y=self.rotation_y[mask],
            score=None if self.score is None else self.score[mask])

    def lidar_boxes(self, lidar2cam: np.ndarray) -> np.ndarray:
        """(N, 7) internal LiDAR-frame boxes (meaningless for DontCare rows: filter them first)."""
        return box_ops.lidar_boxes_from_kitti(self.dimensions, self.location, self.rotation_y, lidar2cam)


def empty_labels() -> KittiLabels:
    """A label file with no objects."""
    return KittiLabels((), np.zeros(0), np.zeros(0, np.int64), np.zeros(0), np.zeros((0, 4)),
                       np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(0))


def parse_labels(text: str, source: str | Path) -> KittiLabels:
    """Parse a label_2 file's text (15 fields per line, or 16 with a score on every line)."""
    rows = [line.split() for line in text.splitlines() if line.strip()]
    if not rows:
        return empty_labels()
    widths = {len(row) for row in rows}
    if not widths <= {15, 16} or len(widths) != 1:
        bad = next(i for i, row in enumerate(rows) if len(row) not in (15, 16) or len(row) != len(rows[0]))
        raise DatasetError(f"{source}: label line {bad + 1} has {len(rows[bad])} fields; KITTI labels have 15 "
                           f"(16 with a score on every line)")
    numbers = np.empty((len(rows), len(rows[0]) - 1), dtype=np.float64)
    for i, row in enumerate(rows):
        for j, value in enumerate(row[1:]):
            try:
                numbers[i, j] = float(value)
            except ValueError:
                field = LABEL_FIELDS[j + 1] if j + 1 < len(LABEL_FIELDS) else "score"
                raise DatasetError(f"{source}: label line {i + 1} field {field!r} is not a number: {value!r}") from None
    occluded = numbers[:, 1]
    if not np.all(occluded == np.round(occluded)):
        bad = int(np.flatnonzero(occluded != np.round(occluded))[0])
        raise DatasetError(f"{source}: label line {bad + 1} field 'occluded' must be an integer, got {rows[bad][2]!r}")
    return KittiLabels(
        types=tuple(row[0] for row in rows), truncated=numbers[:, 0], occluded=occluded.astype(np.int64),
        alpha=numbers[:, 2], bbox=numbers[:, 3:7], dimensions=numbers[:, 7:10], location=numbers[:, 10:13],
        rotation_y=numbers[:, 13], score=numbers[:, 14] if numbers.shape[1] == 15 else None)


def read_labels(path: str | Path) -> KittiLabels:
    """Read label_2/NNNNNN.txt."""
    return parse_labels(_read_text(path, "label"), path)


def format_labels(labels: KittiLabels) -> str:
    """The label_2 text: KITTI's two decimals for every float field, four for a score."""
    lines = []
    for i, name in enumerate(labels.types):
        values = [labels.truncated[i], labels.occluded[i], labels.alpha[i], *labels.bbox[i],
                  *labels.dimensions[i], *labels.location[i], labels.rotation_y[i]]
        fields = [name, _fixed(values[0]), str(int(values[1]))] + [_fixed(v) for v in values[2:]]
        if labels.score is not None:
            fields.append(_fixed(labels.score[i], 4))
        lines.append(" ".join(fields))
    return "".join(line + "\n" for line in lines)


def write_labels(path: str | Path, labels: KittiLabels) -> None:
    """Write label_2/NNNNNN.txt."""
    Path(path).write_text(format_labels(labels))


def read_velodyne(path: str | Path) -> np.ndarray:
    """Read velodyne/NNNNNN.bin. Returns (N, 4) float32 x, y, z, reflectance."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read velodyne scan: {exc.strerror}") from None
    if len(raw) % 16:
        raise DatasetError(f"{path}: velodyne scan has {len(raw)} bytes, not a whole number of 16-byte "
                           f"(x, y, z, reflectance float32) points: truncated?")
    return np.frombuffer(raw, dtype="<f4").reshape(-1, 4).astype(np.float32)


def write_velodyne(path: str | Path, points: np.ndarray) -> None:
    """Write points (N, 4) as velodyne/NNNNNN.bin (little-endian float32)."""
    Path(path).write_bytes(np.ascontiguousarray(np.asarray(points).reshape(-1, 4), dtype="<f4").tobytes())


def read_image_set(path: str | Path) -> list[str]:
    """Read ImageSets/<split>.txt: the frame ids, in file order."""
    ids = _read_text(path, "ImageSets").split()
    bad = [i for i in ids if not i.isdigit()]
    if bad:
        raise DatasetError(f"{path}: ImageSets entry {bad[0]!r} is not a frame number")
    return ids


def write_image_set(path: str | Path, ids: list[str]) -> None:
    """Write ImageSets/<split>.txt, one id per line."""
    Path(path).write_text("".join(f"{i}\n" for i in ids))


def _fixed(value: float, decimals: int = 2) -> str:
    text = f"{value:.{decimals}f}"
    # a tiny negative number rounds to "-0.00"; KITTI files never carry the sign of zero
    return text[1:] if text.startswith("-") and float(text) == 0.0 else text


def _read_text(path: str | Path, what: str) -> str:
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read {what} file: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise DatasetError(f"{path}: {what} file is not text") from None
