"""Hand-built KITTI label frames for the evaluator tests."""
import numpy as np

from v2xfusion_tools.datasets.kitti_format import KittiLabels

CLASSES = ("Car", "Pedestrian", "Cyclist")
# (h, w, l) of each class, and where a frame's object of that class sits: camera-rect bottom centre,
# and a 2-D box 60 px tall (easy) that overlaps no other class's box
SIZES = {"Car": (1.5, 1.6, 3.9), "Pedestrian": (1.75, 0.6, 0.8), "Cyclist": (1.7, 0.6, 1.8)}
PLACES = {"Car": (-8.0, 1.6, 20.0), "Pedestrian": (0.0, 1.6, 15.0), "Cyclist": (6.0, 1.6, 25.0)}
BOXES_2D = {"Car": (100.0, 150.0, 300.0, 210.0), "Pedestrian": (500.0, 150.0, 540.0, 210.0),
            "Cyclist": (800.0, 150.0, 860.0, 210.0)}


def labels(types, location, dimensions, rotation_y, bbox, occluded=None, truncated=None, score=None):
    """KittiLabels from per-object lists (occluded / truncated default to 0)."""
    n = len(types)
    return KittiLabels(
        types=tuple(types),
        truncated=np.zeros(n) if truncated is None else np.asarray(truncated, dtype=np.float64),
        occluded=np.zeros(n, dtype=np.int64) if occluded is None else np.asarray(occluded, dtype=np.int64),
        alpha=np.zeros(n), bbox=np.asarray(bbox, dtype=np.float64).reshape(n, 4),
        dimensions=np.asarray(dimensions, dtype=np.float64).reshape(n, 3),
        location=np.asarray(location, dtype=np.float64).reshape(n, 3),
        rotation_y=np.asarray(rotation_y, dtype=np.float64).reshape(n),
        score=None if score is None else np.asarray(score, dtype=np.float64).reshape(n))


def one_of_each(rotation_y=0.0, occluded=(0, 0, 0), classes=("Car", "Pedestrian", "Cyclist")) -> KittiLabels:
    """A ground-truth frame with one easy object of each class, apart from each other."""
    return labels(classes, [PLACES[c] for c in classes], [SIZES[c] for c in classes], [rotation_y] * len(classes),
                  [BOXES_2D[c] for c in classes], occluded=list(occluded)[:len(classes)])


def as_detections(gt: KittiLabels, scores, shift=(0.0, 0.0, 0.0), types=None) -> KittiLabels:
    """The ground truth's objects as detections with the given scores (and types, default the ground
    truth's), 3-D boxes moved by `shift`."""
    return KittiLabels(gt.types if types is None else tuple(types), np.zeros(len(gt)),
                       np.zeros(len(gt), dtype=np.int64), gt.alpha, gt.bbox.copy(), gt.dimensions.copy(),
                       gt.location + np.asarray(shift, dtype=np.float64), gt.rotation_y.copy(),
                       np.asarray(scores, dtype=np.float64).reshape(len(gt)))


def no_detections() -> KittiLabels:
    return labels((), np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(0), np.zeros((0, 4)), score=np.zeros(0))


def car_frames(n_frames: int):
    """n_frames ground-truth frames of one easy car each."""
    return [one_of_each(classes=("Car",)) for _ in range(n_frames)]


def random_scene(rng, n_frames):
    """Frames with every kind of box the rules treat differently, and noisy, duplicated detections."""
    gt, det = [], []
    kinds = ["Car", "Car", "Car", "Pedestrian", "Pedestrian", "Cyclist", "Cyclist", "Van", "Person_sitting", "Truck",
             "DontCare"]
    for _ in range(n_frames):
        n = int(rng.integers(1, 9))
        types = list(rng.choice(kinds, n))
        centre = np.column_stack([rng.uniform(-6, 6, n), rng.uniform(1.4, 1.8, n), rng.uniform(8, 20, n)])
        dims = np.column_stack([rng.uniform(1.4, 1.8, n), rng.uniform(0.5, 1.8, n), rng.uniform(0.6, 4.5, n)])
        ry = rng.uniform(-np.pi, np.pi, n)
        top = rng.uniform(100, 200, n)
        left = rng.uniform(0, 1000, n)
        heights = rng.choice([20, 25, 30, 40, 41, 60, 60, 80], n)
        bbox = np.column_stack([left, top, left + rng.uniform(20, 200, n), top + heights])
        gt.append(labels(types, centre, dims, ry, bbox, occluded=rng.choice([0, 0, 0, 1, 2, 3], n),
                         truncated=rng.choice([0.0, 0.0, 0.0, 0.1, 0.2, 0.4, 0.6], n)))
        rows = [i for i in range(n) if types[i] != "DontCare" and rng.random() < 0.8]
        rows += [i for i in rows if rng.random() < 0.3]                     # duplicates
        m = len(rows)
        det_types = [types[i] if types[i] in CLASSES else "Car" for i in rows]
        det_types = [t if rng.random() < 0.85 else str(rng.choice(CLASSES)) for t in det_types]
        # some detections close to their object, some loose: overlaps fall on both sides of every threshold
        spread = rng.choice([0.03, 0.1, 0.3], m)[:, None]
        det_centre = centre[rows] + rng.normal(0, 1, (m, 3)) * spread
        det_dims = dims[rows] * (1 + rng.normal(0, 1, (m, 3)) * spread / 2)
        det_bbox = bbox[rows] + rng.normal(0, 4, (m, 4))
        extra = int(rng.integers(0, 3))                                       # plain false positives
        det_types += list(rng.choice(CLASSES, extra))
        det_centre = np.concatenate([det_centre, np.column_stack([rng.uniform(-6, 6, extra), np.full(extra, 1.6),
                                                                  rng.uniform(8, 20, extra)])])
        det_dims = np.concatenate([det_dims, np.tile([1.5, 1.6, 3.9], (extra, 1))])
        det_ry = np.concatenate([ry[rows] + rng.normal(0, 0.2, m), rng.uniform(-np.pi, np.pi, extra)])
        det_bbox = np.concatenate([det_bbox, np.column_stack([rng.uniform(0, 900, extra), np.full(extra, 150.0),
                                                              rng.uniform(950, 1100, extra),
                                                              rng.choice([170.0, 185.0, 230.0], extra)])])
        # scores on a coarse grid, so equal scores (ties) occur
        scores = rng.integers(1, 20, m + extra) / 20.0
        det.append(labels(det_types, det_centre, det_dims, det_ry, det_bbox, score=scores))
    return gt, det
