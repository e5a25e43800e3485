"""KITTI 3-D object detection AP (2-D box, BEV and 3-D; R11 and R40), and its DAIR-V2X-I variant.

The rules are the KITTI object devkit's (cpp/evaluate_object.cpp) as mmdet3d's kitti_eval reads them
out, so our numbers compare with published ones:

* Difficulty (easy, moderate, hard): a ground-truth box counts when its 2-D box is taller than
  40 / 25 / 25 px (`height <= min` is too small), occluded <= 0 / 1 / 2 and truncated <= 0.15 / 0.3 /
  0.5; otherwise it is "ignored" (neither a miss nor a hit). A ground truth of a neighbour class (Van
  for Car, Person_sitting for Pedestrian) is ignored likewise; other types do not take part. A
  detection whose 2-D box is shorter than the difficulty's minimum is ignored, whatever its class.
* Matching (per frame, ground truths in file order). To collect the recall thresholds, each ground
  truth takes the highest-scoring free detection with overlap > the class's minimum. To count TP /
  FP / FN at a threshold, each takes the free detection of score >= threshold with the largest
  overlap, preferring not-ignored detections; a match involving an ignored box is neither TP nor FP.
  Unmatched not-ignored detections are FPs, except (2-D box metric only, as mmdet3d) those covering a
  DontCare region: intersection over the detection's own area > the class's minimum overlap.
* Minimum overlaps: "strict" Car 0.7, Pedestrian 0.5, Cyclist 0.5 in every metric; "loose" keeps
  those for the 2-D box and uses 0.5 / 0.25 / 0.25 for BEV and 3-D (mmdet3d's second table).
* Recall thresholds: the devkit's getThresholds on the scores of the true positives (41 sample
  points); precision at each threshold, then the maximum precision at that or any lower threshold
  (max over higher recall). R40 = mean of samples 1..40 (recall 1/40 .. 1), R11 = mean of samples
  0, 4, .., 40 (recall 0, 0.1, .., 1), both in percent (mmdet3d's get_mAP40 / get_mAP11).

What differs from the devkit binary: detection heights are not truncated to whole pixels (mmdet3d
does not either); a threshold list longer than 41 (possible only through rounding) is cut at 41
(mmdet3d would write past its array); precision where no detection counts is 0, not NaN; AOS is not
computed. As in the devkit and mmdet3d, a class with fewer than ~40 valid ground truths gets fewer
than 41 thresholds and so a lower AP than the textbook interpolation gives (2 ground truths found
perfectly score 2.5 R40): the thresholds are indexed as if each covered 1/40 of the recall.

The DAIR-V2X-I variant (DAIR_V2X_I) is what BEVHeight's and CUDA-V2XFusion's evaluators run
(evaluators/result2kitti.py: kitti_evaluation over the KITTI-format mirror of label/camera):
* ground-truth types fold onto our classes first (Van, Truck, Bus -> Car; Motorcyclist, Tricyclist,
  Barrowlist -> Cyclist: classes.DAIR_TO_CLASS, their rewrite_label), so no neighbour classes remain;
  other types (Trafficcone, ...) take no part;
* detections are kept only with score > 0.45 (their result2kitti writes no others);
* the difficulty rule is KITTI's, applied to DAIR's truncated_state / occluded_state (0, 1, 2) as
  written into the mirror: any truncated object (state 1 or 2) is ignored at every difficulty;
* their headline numbers are 3-D AP R40 at the loose overlaps (Car 0.5, Pedestrian / Cyclist 0.25).
Neither uses distance ranges (DAIR-V2X's own cooperative benchmark does; it is not this one).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from v2xfusion_tools.datasets.classes import CLASSES, DAIR_TO_CLASS
from v2xfusion_tools.datasets.kitti_format import DONT_CARE, KittiLabels
from v2xfusion_tools.evaluation import iou

DIFFICULTIES = ("easy", "moderate", "hard")
METRICS = ("bbox", "bev", "3d")
OVERLAP_SETS = ("strict", "loose")
SAMPLINGS = ("R11", "R40")
N_SAMPLE_POINTS = 41
# mmdet3d's names for the metrics in its result keys
_METRIC_KEYS = {"bbox": "2D", "bev": "BEV", "3d": "3D"}
# frames per block in the threshold sweep: bounds memory at (block, 41, detections per frame)
_FRAME_BLOCK = 512

_STRICT = {"Car": 0.7, "Pedestrian": 0.5, "Cyclist": 0.5}
_LOOSE = {"Car": 0.5, "Pedestrian": 0.25, "Cyclist": 0.25}
KITTI_MIN_OVERLAPS = {
    "strict": {"bbox": _STRICT, "bev": _STRICT, "3d": _STRICT},
    "loose": {"bbox": _STRICT, "bev": _LOOSE, "3d": _LOOSE},
}


@dataclass(frozen=True)
class Protocol:
    """How ground truth and detections are read and scored.

    classes: the evaluated classes; min_overlaps[set][metric][class]: IoU a match must exceed;
    neighbours[class]: ground-truth types that are ignored (not missed) for that class; gt_types: fold
    of ground-truth types applied before anything else (a type not in it stays as written);
    min_score: detections are kept only when score > min_score (None: all); min_height (px),
    max_occlusion, max_truncation: the difficulty rule, one value per difficulty; headline: the overlap
    set the protocol's reference numbers are quoted at.
    """

    name: str
    classes: tuple[str, ...]
    min_overlaps: Mapping[str, Mapping[str, Mapping[str, float]]]
    neighbours: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    gt_types: Mapping[str, str] = field(default_factory=dict)
    min_score: float | None = None
    min_height: tuple[float, float, float] = (40.0, 25.0, 25.0)
    max_occlusion: tuple[int, int, int] = (0, 1, 2)
    max_truncation: tuple[float, float, float] = (0.15, 0.3, 0.5)
    headline: str = "strict"


KITTI = Protocol(
    name="KITTI", classes=CLASSES, min_overlaps=KITTI_MIN_OVERLAPS,
    neighbours={"Car": ("Van",), "Pedestrian": ("Person_sitting",)})

DAIR_V2X_I = Protocol(
    name="DAIR-V2X-I", classes=CLASSES, min_overlaps=KITTI_MIN_OVERLAPS, gt_types=DAIR_TO_CLASS,
    min_score=0.45, headline="loose")

# the protocol each preset (configs/presets/*.yaml, key `preset`) is evaluated with
PROTOCOLS = {"kitti": KITTI, "v2x": DAIR_V2X_I}


@dataclass(frozen=True)
class KittiEvaluation:
    """Interpolated precision / recall at the 41 sample points, and the APs read from them.

    precision, recall: (classes, metrics, overlap sets, difficulties, 41) float64 in [0, 1];
    num_gt: (classes, difficulties) int64, the ground truths that count (recall denominators).
    """

    protocol: Protocol
    metrics: tuple[str, ...]
    precision: np.ndarray
    recall: np.ndarray
    num_gt: np.ndarray

    def ap_table(self, sampling: str = "R40") -> np.ndarray:
        """AP in percent, (classes, metrics, overlap sets, difficulties) float64."""
        if sampling == "R40":
            return self.precision[..., 1:].sum(axis=-1) / 40.0 * 100.0
        if sampling == "R11":
            return self.precision[..., 0::4].sum(axis=-1) / 11.0 * 100.0
        raise ValueError(f"sampling must be one of {SAMPLINGS}, got {sampling!r}")

    def ap(self, class_name: str, metric: str, difficulty: str, sampling: str = "R40",
           overlaps: str = "strict") -> float:
        """One AP in percent, e.g. ap("Car", "3d", "moderate")."""
        index = (_index(self.protocol.classes, class_name, "class"), _index(self.metrics, metric, "metric"),
                 _index(OVERLAP_SETS, overlaps, "overlap set"), _index(DIFFICULTIES, difficulty, "difficulty"))
        return float(self.ap_table(sampling)[index])

    def as_dict(self) -> dict[str, float]:
        """Every AP under mmdet3d's key names, e.g. 'KITTI/Car_3D_AP40_moderate_strict', plus the
        class means at the strict overlaps, e.g. 'KITTI/Overall_3D_AP40_moderate'."""
        out = {}
        for sampling in SAMPLINGS:
            table = self.ap_table(sampling)
            suffix = sampling[1:]
            for m, metric in enumerate(self.metrics):
                key = _METRIC_KEYS[metric]
                for c, name in enumerate(self.protocol.classes):
                    for o, overlap_set in enumerate(OVERLAP_SETS):
                        for d, difficulty in enumerate(DIFFICULTIES):
                            out[f"{self.protocol.name}/{name}_{key}_AP{suffix}_{difficulty}_{overlap_set}"] = \
                                float(table[c, m, o, d])
                for d, difficulty in enumerate(DIFFICULTIES):
                    out[f"{self.protocol.name}/Overall_{key}_AP{suffix}_{difficulty}"] = \
                        float(table[:, m, 0, d].mean())
        return out

    def report(self, sampling: str = "R40") -> str:
        """The AP table as mmdet3d prints it: per class and overlap set, one line per metric."""
        table = self.ap_table(sampling)
        lines = [f"----------- {self.protocol.name} AP{sampling[1:]} ------------"]
        for c, name in enumerate(self.protocol.classes):
            for o, overlap_set in enumerate(OVERLAP_SETS):
                thresholds = ", ".join(f"{self.protocol.min_overlaps[overlap_set][metric][name]:.2f}"
                                       for metric in self.metrics)
                lines.append(f"{name} AP{sampling[1:]}@{thresholds} ({overlap_set}):")
                for m, metric in enumerate(self.metrics):
                    lines.append(f"{metric:<4} AP{sampling[1:]}:" + ", ".join(f"{v:.4f}" for v in table[c, m, o]))
        lines.append(f"Overall AP{sampling[1:]}@{', '.join(DIFFICULTIES)} (strict):")
        for m, metric in enumerate(self.metrics):
            lines.append(f"{metric:<4} AP{sampling[1:]}:" + ", ".join(f"{v:.4f}" for v in table[:, m, 0].mean(axis=0)))
        return "\n".join(lines)


def evaluate(ground_truth: Sequence[KittiLabels], detections: Sequence[KittiLabels],
             protocol: Protocol = KITTI, metrics: Sequence[str] = METRICS) -> KittiEvaluation:
    """Score detections against ground truth, frame by frame.

    ground_truth: one KittiLabels per frame (label_2 content, DontCare lines included);
    detections: one KittiLabels per frame, same order, with scores (label_2 lines + score); the 2-D
    box of a detection decides whether it is too small for a difficulty.
    """
    if len(ground_truth) != len(detections):
        raise ValueError(f"ground truth has {len(ground_truth)} frames, detections {len(detections)}")
    metrics = tuple(metrics)
    for metric in metrics:
        _index(METRICS, metric, "metric")
    for i, frame in enumerate(detections):
        if len(frame) and frame.score is None:
            raise ValueError(f"detections of frame {i} carry no scores")
    frames = _Frames.build(ground_truth, detections, protocol)
    shape = (len(protocol.classes), len(metrics), len(OVERLAP_SETS), len(DIFFICULTIES), N_SAMPLE_POINTS)
    precision, recall = np.zeros(shape), np.zeros(shape)
    num_gt = np.zeros((len(protocol.classes), len(DIFFICULTIES)), dtype=np.int64)
    for m, metric in enumerate(metrics):
        overlaps = _pair_overlaps(frames, metric)
        dontcare = _dontcare_overlap(frames) if metric == "bbox" else None
        for c, name in enumerate(protocol.classes):
            for d in range(len(DIFFICULTIES)):
                ignored_gt, ignored_det = _ignore_flags(frames, protocol, c, d)
                num_gt[c, d] = int(np.count_nonzero(ignored_gt == 0))
                batch = _Batch.build(frames, overlaps, ignored_gt, ignored_det, dontcare)
                curves: dict[float, tuple[np.ndarray, np.ndarray]] = {}
                for o, overlap_set in enumerate(OVERLAP_SETS):
                    min_overlap = float(protocol.min_overlaps[overlap_set][metric][name])
                    if min_overlap not in curves:
                        curves[min_overlap] = _precision_recall(batch, min_overlap, int(num_gt[c, d]))
                    precision[c, m, o, d], recall[c, m, o, d] = curves[min_overlap]
    return KittiEvaluation(protocol=protocol, metrics=metrics, precision=precision, recall=recall, num_gt=num_gt)


def get_thresholds(scores: np.ndarray, num_gt: int, n_sample_points: int = N_SAMPLE_POINTS) -> np.ndarray:
    """The devkit's getThresholds: true-positive scores whose recall lies closest to 0, 1/(n-1), .., 1.

    scores: (K,) scores of the true positives; num_gt: the recall denominator. Returns (T,) float64,
    descending, T <= n_sample_points.
    """
    ordered = np.sort(np.asarray(scores, dtype=np.float64))[::-1]
    thresholds: list[float] = []
    current_recall = 0.0
    last = len(ordered) - 1
    for i, score in enumerate(ordered):
        left_recall = (i + 1) / num_gt
        right_recall = (i + 2) / num_gt if i < last else left_recall
        # skip this score while the next one lands closer to the recall step being looked for
        if i < last and (right_recall - current_recall) < (current_recall - left_recall):
            continue
        thresholds.append(float(score))
        current_recall += 1.0 / (n_sample_points - 1.0)
    return np.array(thresholds[:n_sample_points])


def _index(names: Sequence[str], name: str, what: str) -> int:
    if name not in names:
        raise ValueError(f"unknown {what} {name!r}; expected one of {tuple(names)}")
    return list(names).index(name)


@dataclass(frozen=True)
class _Frames:
    """All frames' boxes, concatenated frame after frame (index arrays say which frame owns a box).

    gt_*: (G,) / (G, k) rows, det_*: (D,) / (D, k) rows; gt_start / gt_count: (F,) per frame. boxes are
    camera-rect (x, y, z, h, w, l, ry); bbox (left, top, right, bottom); class_state (classes, G): 1 the
    class itself, 0 a neighbour, -1 neither.
    """

    n_frames: int
    gt_frame: np.ndarray
    gt_start: np.ndarray
    gt_count: np.ndarray
    gt_bbox: np.ndarray
    gt_box: np.ndarray
    gt_occluded: np.ndarray
    gt_truncated: np.ndarray
    gt_dontcare: np.ndarray
    class_state: np.ndarray
    det_frame: np.ndarray
    det_bbox: np.ndarray
    det_box: np.ndarray
    det_class: np.ndarray
    det_score: np.ndarray

    @staticmethod
    def build(ground_truth: Sequence[KittiLabels], detections: Sequence[KittiLabels],
              protocol: Protocol) -> _Frames:
        folded = {key.lower(): value for key, value in protocol.gt_types.items()}
        classes = [name.lower() for name in protocol.classes]
        gt_types = [folded.get(t.lower(), t).lower() for frame in ground_truth for t in frame.types]
        class_state = np.full((len(classes), len(gt_types)), -1, dtype=np.int64)
        for c, name in enumerate(protocol.classes):
            neighbours = {n.lower() for n in protocol.neighbours.get(name, ())}
            class_state[c] = [1 if t == classes[c] else 0 if t in neighbours else -1 for t in gt_types]
        kept = [np.ones(len(f), dtype=bool) if protocol.min_score is None or not len(f)
                else np.asarray(f.score) > protocol.min_score for f in detections]
        det_types = [t.lower() for frame, keep in zip(detections, kept) for t, k in zip(frame.types, keep) if k]
        det_class = np.array([classes.index(t) if t in classes else -1 for t in det_types], dtype=np.int64)
        gt_count = np.array([len(f) for f in ground_truth], dtype=np.int64)
        det_count = np.array([int(k.sum()) for k in kept], dtype=np.int64)
        return _Frames(
            n_frames=len(ground_truth),
            gt_frame=np.repeat(np.arange(len(ground_truth)), gt_count), gt_start=_starts(gt_count),
            gt_count=gt_count, gt_bbox=_stack([f.bbox for f in ground_truth], 4),
            gt_box=_stack([_camera_boxes(f) for f in ground_truth], 7),
            gt_occluded=_stack([f.occluded for f in ground_truth], 0),
            gt_truncated=_stack([f.truncated for f in ground_truth], 0),
            gt_dontcare=np.array([t == DONT_CARE.lower() for t in gt_types], dtype=bool),
            class_state=class_state,
            det_frame=np.repeat(np.arange(len(detections)), det_count), det_bbox=_stack([f.bbox[k] for f, k in zip(detections, kept)], 4),
            det_box=_stack([_camera_boxes(f)[k] for f, k in zip(detections, kept)], 7),
            det_class=det_class,
            det_score=_stack([np.asarray(f.score)[k] if len(f) else np.zeros(0) for f, k in zip(detections, kept)], 0))


def _starts(counts: np.ndarray) -> np.ndarray:
    return np.cumsum(counts) - counts


def _stack(parts: list[np.ndarray], width: int) -> np.ndarray:
    """Concatenate per-frame arrays of rows (width 0: 1-D) into one float64 array."""
    shape = (0,) if width == 0 else (0, width)
    parts = [np.asarray(p, dtype=np.float64).reshape((-1,) if width == 0 else (-1, width)) for p in parts]
    return np.concatenate(parts) if parts else np.zeros(shape)


def _camera_boxes(labels: KittiLabels) -> np.ndarray:
    """(N, 7) x, y, z, h, w, l, ry of a label file's objects."""
    return np.concatenate([labels.location, labels.dimensions, np.asarray(labels.rotation_y)[:, None]], axis=1)


def _frame_pairs(a_frame: np.ndarray, b_start: np.ndarray, b_count: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (a, b) pair of boxes in the same frame, a-major: a row, b row, and each a's first pair."""
    per_a = b_count[a_frame]
    first = _starts(per_a)
    a_rows = np.repeat(np.arange(len(a_frame)), per_a)
    b_rows = b_start[a_frame][a_rows] + np.arange(int(per_a.sum())) - first[a_rows]
    return a_rows, b_rows, first


@dataclass(frozen=True)
class _PairOverlaps:
    """Overlap of detection d with ground truth g of its frame: values[first[d] + g - gt_start]."""

    values: np.ndarray
    first: np.ndarray


def _pair_overlaps(frames: _Frames, metric: str) -> _PairOverlaps:
    det_rows, gt_rows, first = _frame_pairs(frames.det_frame, frames.gt_start, frames.gt_count)
    values = np.zeros(len(det_rows))
    # DontCare rows carry placeholder 3-D fields, and other types never match: only these pairs count
    used = np.any(frames.class_state >= 0, axis=0)[gt_rows]
    d, g = det_rows[used], gt_rows[used]
    if metric == "bbox":
        values[used] = iou.image_overlap_paired(frames.det_bbox[d], frames.gt_bbox[g])
    elif metric == "bev":
        values[used] = iou.bev_iou_paired(iou.camera_to_bev(frames.det_box[d]), iou.camera_to_bev(frames.gt_box[g]))
    else:
        values[used] = iou.box3d_iou_paired(frames.det_box[d], frames.gt_box[g])
    return _PairOverlaps(values=values, first=first)


def _dontcare_overlap(frames: _Frames) -> np.ndarray:
    """(D,) the largest share of each detection's 2-D box inside one DontCare region of its frame."""
    regions = np.flatnonzero(frames.gt_dontcare)
    region_count = np.bincount(frames.gt_frame[regions], minlength=frames.n_frames).astype(np.int64)
    det_rows, region_rows, _ = _frame_pairs(frames.det_frame, _starts(region_count), region_count)
    share = iou.image_overlap_paired(frames.det_bbox[det_rows], frames.gt_bbox[regions[region_rows]],
                                     criterion="area_a")
    best = np.zeros(len(frames.det_frame))
    np.maximum.at(best, det_rows, share)
    return best


def _ignore_flags(frames: _Frames, protocol: Protocol, class_index: int, difficulty: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """The devkit's cleanData: ignored_gt (G,) and ignored_det (D,), each 0 (counts), 1 (ignored), -1
    (takes no part)."""
    state = frames.class_state[class_index]
    height = frames.gt_bbox[:, 3] - frames.gt_bbox[:, 1]
    too_hard = ((frames.gt_occluded > protocol.max_occlusion[difficulty])
                | (frames.gt_truncated > protocol.max_truncation[difficulty])
                | (height <= protocol.min_height[difficulty]))
    ignored_gt = np.where((state == 1) & ~too_hard, 0, np.where((state == 0) | (state == 1), 1, -1))
    det_height = np.abs(frames.det_bbox[:, 3] - frames.det_bbox[:, 1])
    ignored_det = np.where(det_height < protocol.min_height[difficulty], 1,
                           np.where(frames.det_class == class_index, 0, -1))
    return ignored_gt.astype(np.int64), ignored_det.astype(np.int64)


@dataclass(frozen=True)
class _Batch:
    """The boxes that take part for one class and difficulty, padded into per-frame rows.

    ignored_gt (F, G) and ignored_det (F, D) pad with -1; scores (F, D) pad with -inf; overlaps
    (F, G, D); dontcare (F, D) or None. Frames without any taking part are left out.
    """

    ignored_gt: np.ndarray
    ignored_det: np.ndarray
    scores: np.ndarray
    overlaps: np.ndarray
    dontcare: np.ndarray | None

    @staticmethod
    def build(frames: _Frames, overlaps: _PairOverlaps, ignored_gt: np.ndarray, ignored_det: np.ndarray,
              dontcare: np.ndarray | None) -> _Batch:
        gt_rows = np.flatnonzero(ignored_gt != -1)
        det_rows = np.flatnonzero(ignored_det != -1)
        frame_ids = np.union1d(frames.gt_frame[gt_rows], frames.det_frame[det_rows])
        slot = np.full(frames.n_frames, -1, dtype=np.int64)
        slot[frame_ids] = np.arange(len(frame_ids))
        gt_slot, gt_pos, width_g = _positions(slot[frames.gt_frame[gt_rows]], len(frame_ids))
        det_slot, det_pos, width_d = _positions(slot[frames.det_frame[det_rows]], len(frame_ids))
        n = len(frame_ids)
        padded_gt = np.full((n, width_g), -1, dtype=np.int64)
        padded_gt[gt_slot, gt_pos] = ignored_gt[gt_rows]
        padded_det = np.full((n, width_d), -1, dtype=np.int64)
        padded_det[det_slot, det_pos] = ignored_det[det_rows]
        scores = np.full((n, width_d), -np.inf)
        scores[det_slot, det_pos] = frames.det_score[det_rows]
        # overlap of every taking-part detection with every taking-part ground truth of its frame
        gt_of = np.full((n, width_g), -1, dtype=np.int64)
        gt_of[gt_slot, gt_pos] = gt_rows
        det_of = np.full((n, width_d), -1, dtype=np.int64)
        det_of[det_slot, det_pos] = det_rows
        both = (gt_of[:, :, None] >= 0) & (det_of[:, None, :] >= 0)
        s, g, d = np.nonzero(both)
        det_index, gt_index = det_of[s, d], gt_of[s, g]
        padded_overlaps = np.zeros((n, width_g, width_d))
        padded_overlaps[s, g, d] = overlaps.values[
            overlaps.first[det_index] + gt_index - frames.gt_start[frames.gt_frame[gt_index]]]
        padded_dontcare = None
        if dontcare is not None:
            padded_dontcare = np.zeros((n, width_d))
            padded_dontcare[det_slot, det_pos] = dontcare[det_rows]
        return _Batch(ignored_gt=padded_gt, ignored_det=padded_det, scores=scores,
                      overlaps=padded_overlaps, dontcare=padded_dontcare)


def _positions(slots: np.ndarray, n_slots: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Rows grouped by slot (already in slot order): each row's position in its slot and the widest slot."""
    counts = np.bincount(slots, minlength=n_slots)
    starts = _starts(counts)
    positions = np.arange(len(slots)) - starts[slots]
    return slots, positions, int(counts.max()) if len(counts) else 0


def _precision_recall(batch: _Batch, min_overlap: float, num_gt: int) -> tuple[np.ndarray, np.ndarray]:
    """Interpolated precision and recall at the 41 sample points, (41,) each."""
    precision, recall = np.zeros(N_SAMPLE_POINTS), np.zeros(N_SAMPLE_POINTS)
    if num_gt == 0:
        return precision, recall
    thresholds = get_thresholds(_true_positive_scores(batch, min_overlap), num_gt)
    if len(thresholds) == 0:
        return precision, recall
    tp, fp, fn = _counts_at_thresholds(batch, min_overlap, thresholds)
    precision[:len(thresholds)] = _safe_ratio(tp, tp + fp)
    recall[:len(thresholds)] = _safe_ratio(tp, tp + fn)
    # thresholds descend, so recall rises along the array: take the best precision at this recall or more
    count = len(thresholds)
    precision[:count] = np.maximum.accumulate(precision[:count][::-1])[::-1]
    recall[:count] = np.maximum.accumulate(recall[:count][::-1])[::-1]
    return precision, recall


def _safe_ratio(part: np.ndarray, whole: np.ndarray) -> np.ndarray:
    return np.where(whole > 0, part / np.maximum(whole, 1), 0.0)


def _true_positive_scores(batch: _Batch, min_overlap: float) -> np.ndarray:
    """Scores of the true positives when each ground truth takes its highest-scoring free match."""
    n, width_g = batch.ignored_gt.shape
    if batch.ignored_det.shape[1] == 0:
        return np.zeros(0)
    rows = np.arange(n)
    usable = batch.ignored_det != -1
    assigned = np.zeros(usable.shape, dtype=bool)
    scores = []
    for g in range(width_g):
        ignored = batch.ignored_gt[:, g]
        candidate = usable & ~assigned & (batch.overlaps[:, g, :] > min_overlap) & (ignored != -1)[:, None]
        found = candidate.any(axis=1)
        # argmax takes the first of equal scores, as the devkit's strict '>' keeps the first
        chosen = np.argmax(np.where(candidate, batch.scores, -np.inf), axis=1)
        hit = found & (ignored == 0) & (batch.ignored_det[rows, chosen] == 0)
        scores.append(batch.scores[rows[hit], chosen[hit]])
        assigned[rows[found], chosen[found]] = True
    return np.concatenate(scores) if scores else np.zeros(0)


def _counts_at_thresholds(batch: _Batch, min_overlap: float, thresholds: np.ndarray
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """TP, FP and FN at each threshold, (T,) int64 each: the devkit's computeStatistics with
    compute_fp, over all frames and thresholds at once (frames in blocks)."""
    tp = np.zeros(len(thresholds), dtype=np.int64)
    fp, fn = np.zeros_like(tp), np.zeros_like(tp)
    for begin in range(0, batch.ignored_gt.shape[0], _FRAME_BLOCK):
        block = slice(begin, begin + _FRAME_BLOCK)
        ignored_gt, ignored_det = batch.ignored_gt[block], batch.ignored_det[block]
        counted, ignored = (ignored_det == 0)[:, None, :], (ignored_det == 1)[:, None, :]
        # (frames, thresholds, detections): the detections each threshold keeps
        active = (ignored_det != -1)[:, None, :] & (batch.scores[block][:, None, :] >= thresholds[None, :, None])
        assigned = np.zeros(active.shape, dtype=bool)
        for g in range(ignored_gt.shape[1]):
            state = ignored_gt[:, g]
            overlap = batch.overlaps[block, g, :][:, None, :]
            candidate = active & ~assigned & (overlap > min_overlap) & (state != -1)[:, None, None]
            # a counted detection wins over an ignored one; among counted ones the largest overlap
            # (the first of equals), among ignored ones the first
            best_counted = candidate & counted
            has_counted = best_counted.any(axis=2)
            pick_counted = np.argmax(np.where(best_counted, overlap, -np.inf), axis=2)
            best_ignored = candidate & ignored
            pick_ignored = np.argmax(best_ignored, axis=2)
            found = has_counted | best_ignored.any(axis=2)
            chosen = np.where(has_counted, pick_counted, pick_ignored)
            valid = (state == 0)[:, None]
            fn += np.count_nonzero(~found & valid, axis=0)
            tp += np.count_nonzero(has_counted & valid, axis=0)
            f, t = np.nonzero(found)
            assigned[f, t, chosen[f, t]] = True
        unmatched = active & ~assigned & counted
        fp += np.count_nonzero(unmatched, axis=(0, 2))
        if batch.dontcare is not None:
            fp -= np.count_nonzero(unmatched & (batch.dontcare[block] > min_overlap)[:, None, :], axis=(0, 2))
    return tp, fp, fn
