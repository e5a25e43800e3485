"""Pictures of one frame (camera view with 3-D boxes, bird's-eye view of the cloud) and data set statistics.

Everything takes arrays, never file paths, so the data tools, training and the runtime can share it:
points (N, >=3) LiDAR frame, boxes (M, 7) internal (design.md §2), labels (M,) class indices,
lidar2img (4, 4) or (3, 4), image (H, W, 3) uint8 RGB. Pillow and numpy only.

Camera picture: each box's 12 edges projected (cut at the near plane so boxes reaching behind the
camera still draw correctly), in its class colour, the front face crossed so the heading reads,
with the class name (and score) above it.
BEV picture: x (forward) points up, y (left) points left, the sensor at the origin; points coloured by
height or intensity; 10 m grid and range rings; the pc_range outline; boxes as rotated rectangles
with a heading tick from the centre to the front edge; a legend.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from v2xfusion_perception import boxes as box_ops
from v2xfusion_perception.errors import V2XError

# Class colours (RGB): Car orange, Pedestrian blue, Cyclist magenta, then more for longer class lists.
CLASS_COLOURS = ((255, 140, 0), (30, 144, 255), (230, 40, 200), (50, 205, 50), (255, 215, 0), (0, 206, 209),
                 (220, 20, 60), (160, 110, 255))
NEAR = 0.1                       # metres in front of the camera where edges are cut
BEV_BACKGROUND = (16, 18, 24)
BEV_GRID = (52, 56, 66)
BEV_RING = (70, 76, 90)
BEV_RANGE = (235, 235, 235)
GROUND_TRUTH = (255, 255, 255)   # ground-truth footprints under predictions in the BEV picture
GRID_STEP = 10.0                 # metres between grid lines and between range rings
HEIGHT_SPAN = 2.5                # metres above the ground that the height colours cover
# Colour map for heights / intensities: dark blue -> cyan -> green -> yellow -> red.
_COLOUR_MAP = np.array([[40, 60, 200], [0, 190, 255], [60, 230, 120], [250, 230, 40], [255, 70, 30]], np.float64)


def class_colour(label: int) -> tuple[int, int, int]:
    """The RGB colour of class index `label`."""
    return CLASS_COLOURS[int(label) % len(CLASS_COLOURS)]


def colour_map(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """Map values (N,) onto the colour ramp between low and high. Returns (N, 3) uint8."""
    scaled = np.clip((np.asarray(values, dtype=np.float64) - low) / max(high - low, 1e-9), 0.0, 1.0)
    position = scaled * (len(_COLOUR_MAP) - 1)
    lower = np.minimum(np.floor(position).astype(int), len(_COLOUR_MAP) - 2)
    fraction = (position - lower)[:, None]
    return (_COLOUR_MAP[lower] * (1 - fraction) + _COLOUR_MAP[lower + 1] * fraction).astype(np.uint8)


def draw_camera(image: np.ndarray, boxes: np.ndarray, labels: np.ndarray, lidar2img: np.ndarray,
                class_names: Sequence[str], scores: np.ndarray | None = None, line_width: int | None = None
                ) -> Image.Image:
    """The camera picture: image (H, W, 3) uint8 with boxes (M, 7) drawn through lidar2img."""
    picture = Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).convert("RGB")
    draw = ImageDraw.Draw(picture)
    width = line_width or max(2, round(picture.width / 640))
    font = _font(max(12, picture.height // 40))
    matrix = np.asarray(lidar2img, dtype=np.float64)
    corners = box_ops.box_corners(boxes)
    # far boxes first so near ones draw over them
    depth = box_ops.project_points(np.asarray(boxes, dtype=np.float64).reshape(-1, 7)[:, :3], matrix)[1]
    for index in np.argsort(-depth):
        colour = class_colour(labels[index])
        segments = [_clip_segment(corners[index, a], corners[index, b], matrix) for a, b in box_ops.BOX_EDGES]
        front = box_ops.FRONT_FACE
        segments += [_clip_segment(corners[index, front[0]], corners[index, front[2]], matrix),
                     _clip_segment(corners[index, front[1]], corners[index, front[3]], matrix)]
        drawn = [s for s in segments if s is not None]
        for (u0, v0), (u1, v1) in drawn:
            draw.line([(u0, v0), (u1, v1)], fill=colour, width=width)
        if not drawn:
            continue
        points = np.array([p for segment in drawn for p in segment])
        low, high = points.min(axis=0), points.max(axis=0)
        if high[0] < 0 or high[1] < 0 or low[0] > picture.width - 1 or low[1] > picture.height - 1:
            continue   # the whole box projects outside the picture: no caption clamped to its border
        text = _caption(class_names, labels[index], None if scores is None else scores[index])
        anchor = (max(float(low[0]), 0.0), max(float(low[1]), 0.0) - font.size - 4)
        _text_with_background(draw, anchor, text, colour, font, picture.size)
    return picture


def draw_bev(points: np.ndarray, boxes: np.ndarray, labels: np.ndarray, pc_range: Sequence[float],
             class_names: Sequence[str], scores: np.ndarray | None = None, colour_by: str = "height",
             pixels_per_metre: float = 10.0, margin: float = 4.0,
             ground_truth: np.ndarray | None = None) -> Image.Image:
    """The bird's-eye picture of points (N, >=4) and boxes (M, 7) over pc_range [x0, y0, z0, x1, y1, z1].

    colour_by: 'height' (height above the ground, taken as the cloud's 2nd-percentile z, over
    HEIGHT_SPAN metres) or 'intensity' (column 3 over its 1st-99th percentile, so 0-1 and 0-255 clouds
    both show). margin: metres drawn around pc_range. ground_truth: (K, 7) boxes drawn first as white
    footprints, so that predicted boxes (class colours) read against them.
    """
    if colour_by not in ("height", "intensity"):
        raise V2XError(f"colour_by must be 'height' or 'intensity', got {colour_by!r}")
    x0, y0, _, x1, y1, _ = (float(v) for v in pc_range)
    scale = float(pixels_per_metre)
    top, left = x1 + margin, y1 + margin
    width = int(round((y1 - y0 + 2 * margin) * scale))
    height = int(round((x1 - x0 + 2 * margin) * scale))

    def to_pixel(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (left - np.asarray(y)) * scale, (top - np.asarray(x)) * scale

    picture = Image.new("RGB", (width, height), BEV_BACKGROUND)
    draw = ImageDraw.Draw(picture)
    _draw_grid(draw, to_pixel, (x0 - margin, y0 - margin, x1 + margin, y1 + margin), scale)
    canvas = np.asarray(picture).copy()
    points = np.asarray(points, dtype=np.float64)
    if len(points):
        u, v = to_pixel(points[:, 0], points[:, 1])
        col, row = np.floor(u).astype(np.int64), np.floor(v).astype(np.int64)
        inside = (col >= 0) & (col < width - 1) & (row >= 0) & (row < height - 1)
        colours = colour_map(*_point_values(points, colour_by))
        order = np.flatnonzero(inside)[np.argsort(points[inside, 2])]   # higher points drawn last
        for d_row, d_col in ((0, 0), (0, 1), (1, 0), (1, 1)):             # 2x2 pixels per point
            canvas[row[order] + d_row, col[order] + d_col] = colours[order]
    picture = Image.fromarray(canvas)
    draw = ImageDraw.Draw(picture)
    u, v = to_pixel(np.array([x0, x0, x1, x1]), np.array([y0, y1, y1, y0]))
    draw.polygon(list(zip(u.tolist(), v.tolist())), outline=BEV_RANGE, width=2)
    line = max(2, round(scale / 5))
    if ground_truth is not None:
        for corners in box_ops.box_corners(ground_truth):
            u, v = to_pixel(corners[:4, 0], corners[:4, 1])
            draw.polygon(list(zip(u.tolist(), v.tolist())), outline=GROUND_TRUTH, width=line + 2)
    for index, corners in enumerate(box_ops.box_corners(boxes)):
        colour = class_colour(labels[index])
        u, v = to_pixel(corners[:4, 0], corners[:4, 1])
        draw.polygon(list(zip(u.tolist(), v.tolist())), outline=colour, width=line)
        box = np.asarray(boxes, dtype=np.float64).reshape(-1, 7)[index]
        front = box[:2] + box[3] / 2.0 * np.array([np.cos(box[6]), np.sin(box[6])])
        uc, vc = to_pixel(np.array([box[0], front[0]]), np.array([box[1], front[1]]))
        draw.line([(uc[0], vc[0]), (uc[1], vc[1])], fill=colour, width=line)
        if scores is not None:
            draw.text((float(u.max()) + 3, float(v.min())), f"{scores[index]:.2f}", fill=colour,
                      font=_font(max(10, int(scale * 1.2))))
    _draw_legend(draw, class_names, colour_by, _font(max(12, height // 60)))
    return picture


@dataclass(frozen=True)
class FramePictures:
    """The camera and BEV pictures of one frame."""

    camera: Image.Image
    bev: Image.Image

    def save(self, directory: str | Path, stem: str) -> tuple[Path, Path]:
        """Write <directory>/<stem>_camera.png and <stem>_bev.png; return both paths."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        paths = (directory / f"{stem}_camera.png", directory / f"{stem}_bev.png")
        self.camera.save(paths[0])
        self.bev.save(paths[1])
        return paths


def render_frame(image: np.ndarray, points: np.ndarray, boxes: np.ndarray, labels: np.ndarray,
                 lidar2img: np.ndarray, pc_range: Sequence[float], class_names: Sequence[str],
                 scores: np.ndarray | None = None, colour_by: str = "height") -> FramePictures:
    """Both pictures of one frame (see draw_camera and draw_bev for the arguments)."""
    return FramePictures(camera=draw_camera(image, boxes, labels, lidar2img, class_names, scores),
                         bev=draw_bev(points, boxes, labels, pc_range, class_names, scores, colour_by))


@dataclass
class DatasetStatistics:
    """Per-class object counts, points per frame, and LiDAR points inside each class's boxes."""

    class_names: tuple[str, ...]
    frames: int = 0
    class_counts: dict[str, int] = field(default_factory=dict)
    points_per_frame: dict[str, float] = field(default_factory=dict)
    points_in_box: dict[str, dict[str, float]] = field(default_factory=dict)

    def format(self) -> str:
        """A plain-text table for printing."""
        ppf = self.points_per_frame
        lines = [f"frames: {self.frames}   points per frame: min {ppf['min']:.0f}  mean {ppf['mean']:.0f}  "
                 f"max {ppf['max']:.0f}",
                 f"{'class':<12}{'objects':>9}{'pts/box min':>13}{'median':>9}{'mean':>9}{'max':>9}{'empty':>7}"]
        for name in self.class_names:
            stats = self.points_in_box[name]
            lines.append(f"{name:<12}{self.class_counts[name]:>9}{stats['min']:>13.0f}{stats['median']:>9.0f}"
                         f"{stats['mean']:>9.1f}{stats['max']:>9.0f}{stats['empty']:>7.0f}")
        return "\n".join(lines)


def dataset_statistics(frames: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]],
                       class_names: Sequence[str]) -> DatasetStatistics:
    """Statistics over frames given as (points (N, >=3), boxes (M, 7), labels (M,)) triples.

    Labels outside range(len(class_names)) are not counted. Points in a box: points inside the closed
    box; `empty` counts boxes without any.
    """
    names = tuple(class_names)
    per_frame: list[int] = []
    inside: dict[str, list[int]] = {name: [] for name in names}
    for points, boxes, labels in frames:
        per_frame.append(len(points))
        labels = np.asarray(labels, dtype=np.int64).reshape(-1)
        counts = box_ops.points_in_boxes(points, boxes).sum(axis=0) if len(labels) else np.zeros(0, np.int64)
        for label, count in zip(labels, counts):
            if 0 <= label < len(names):
                inside[names[label]].append(int(count))
    per = np.asarray(per_frame, dtype=np.float64) if per_frame else np.zeros(1)
    stats = DatasetStatistics(class_names=names, frames=len(per_frame))
    stats.points_per_frame = {"min": float(per.min()), "mean": float(per.mean()), "max": float(per.max())}
    for name in names:
        values = np.asarray(inside[name], dtype=np.float64)
        stats.class_counts[name] = len(values)
        if len(values) == 0:
            values = np.zeros(1)
        stats.points_in_box[name] = {"min": float(values.min()), "median": float(np.median(values)),
                                     "mean": float(values.mean()), "max": float(values.max()),
                                     "empty": float(np.sum(values == 0)) if inside[name] else 0.0}
    return stats


def _clip_segment(a: np.ndarray, b: np.ndarray, lidar2img: np.ndarray) -> tuple | None:
    """Project the 3-D segment a-b, cut at NEAR metres in front of the camera; None if all behind."""
    uv, depth = box_ops.project_points(np.stack([a, b]), lidar2img)
    if depth[0] <= NEAR and depth[1] <= NEAR:
        return None
    if depth[0] <= NEAR or depth[1] <= NEAR:
        s = (NEAR - depth[0]) / (depth[1] - depth[0])
        cut = a + s * (b - a)
        cut_uv, _ = box_ops.project_points(cut[None, :], lidar2img)
        if depth[0] <= NEAR:
            uv[0] = cut_uv[0]
        else:
            uv[1] = cut_uv[0]
    return (float(uv[0, 0]), float(uv[0, 1])), (float(uv[1, 0]), float(uv[1, 1]))


def _caption(class_names: Sequence[str], label: int, score: float | None) -> str:
    name = class_names[label] if 0 <= label < len(class_names) else f"class {label}"
    return name if score is None else f"{name} {score:.2f}"


def _text_with_background(draw: ImageDraw.ImageDraw, anchor: tuple[float, float], text: str,
                          colour: tuple[int, int, int], font, size: tuple[int, int]) -> None:
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    x = min(max(anchor[0], 0), size[0] - (right - left) - 4)
    y = min(max(anchor[1], 0), size[1] - (bottom - top) - 4)
    draw.rectangle([x, y, x + right - left + 4, y + bottom + 3], fill=(0, 0, 0))
    draw.text((x + 2, y + 1), text, fill=colour, font=font)


def _draw_grid(draw: ImageDraw.ImageDraw, to_pixel, extent: tuple[float, float, float, float], scale: float) -> None:
    x_low, y_low, x_high, y_high = extent
    for x in np.arange(np.ceil(x_low / GRID_STEP) * GRID_STEP, x_high + 1e-9, GRID_STEP):
        u, v = to_pixel(np.array([x, x]), np.array([y_low, y_high]))
        draw.line([(u[0], v[0]), (u[1], v[1])], fill=BEV_GRID, width=1)
    for y in np.arange(np.ceil(y_low / GRID_STEP) * GRID_STEP, y_high + 1e-9, GRID_STEP):
        u, v = to_pixel(np.array([x_low, x_high]), np.array([y, y]))
        draw.line([(u[0], v[0]), (u[1], v[1])], fill=BEV_GRID, width=1)
    reach = float(np.hypot(max(abs(x_low), abs(x_high)), max(abs(y_low), abs(y_high))))
    font = _font(max(10, int(scale * 1.3)))
    centre_u, centre_v = to_pixel(np.array([0.0]), np.array([0.0]))
    for radius in np.arange(GRID_STEP, reach + 1e-9, GRID_STEP):
        r = radius * scale
        draw.ellipse([centre_u[0] - r, centre_v[0] - r, centre_u[0] + r, centre_v[0] + r], outline=BEV_RING)
        if radius % (2 * GRID_STEP) == 0:
            label_u, label_v = to_pixel(np.array([radius]), np.array([0.0]))
            draw.text((label_u[0] + 3, label_v[0] - font.size - 2), f"{radius:.0f} m", fill=BEV_RING, font=font)
    # the sensor: a small triangle pointing along +x
    size = max(4.0, scale * 0.8)
    draw.polygon([(centre_u[0], centre_v[0] - size), (centre_u[0] - size / 2, centre_v[0] + size / 2),
                  (centre_u[0] + size / 2, centre_v[0] + size / 2)], fill=(255, 255, 255))


def _point_values(points: np.ndarray, colour_by: str) -> tuple[np.ndarray, float, float]:
    """The values to colour points by, and the span of the colour ramp."""
    if colour_by == "height":
        ground = float(np.percentile(points[:, 2], 2))
        return points[:, 2], ground, ground + HEIGHT_SPAN
    low, high = (np.percentile(points[:, 3], [1, 99]) if len(points) > 1 else (0.0, 1.0))
    return points[:, 3], float(low), float(high)


def _draw_legend(draw: ImageDraw.ImageDraw, class_names: Sequence[str], colour_by: str, font) -> None:
    x, y = 8, 8
    for label, name in enumerate(class_names):
        draw.rectangle([x, y + 3, x + 14, y + 3 + font.size - 4], fill=class_colour(label))
        draw.text((x + 20, y), name, fill=(235, 235, 235), font=font)
        y += font.size + 4
    ramp = colour_map(np.linspace(0.0, 1.0, 120), 0.0, 1.0)
    for i, colour in enumerate(ramp):
        draw.line([(x + i, y + 4), (x + i, y + 4 + font.size // 2)], fill=tuple(int(c) for c in colour))
    caption = f"height above ground 0 .. {HEIGHT_SPAN:g} m" if colour_by == "height" else "intensity low .. high"
    draw.text((x + 128, y), caption, fill=(235, 235, 235), font=font)


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:
        return ImageFont.load_default()
