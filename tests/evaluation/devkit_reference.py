"""A slow, literal reading of the KITTI devkit's evaluation (cleanData, computeStatistics,
getThresholds, eval_class) with mmdet3d's R11 / R40 read-out: plain loops over frames, ground truths,
detections and thresholds, one box at a time, to hold the vectorized evaluator against."""
import numpy as np

from v2xfusion_tools.evaluation import iou

NO_DETECTION = -10000000.0
SAMPLE_POINTS = 41


def frame_overlaps(gt, det, metric):
    """(detections, ground truths) overlap matrix of one frame (the overlaps are tested in test_iou.py)."""
    if metric == "bbox":
        return iou.image_overlap(det.bbox, gt.bbox)
    det_boxes = np.concatenate([det.location, det.dimensions, np.reshape(det.rotation_y, (-1, 1))], axis=1)
    gt_boxes = np.concatenate([gt.location, gt.dimensions, np.reshape(gt.rotation_y, (-1, 1))], axis=1)
    if metric == "bev":
        return iou.bev_iou(iou.camera_to_bev(det_boxes), iou.camera_to_bev(gt_boxes))
    return iou.box3d_iou(det_boxes, gt_boxes)


def clean_data(gt_types, gt, det_types, det, class_name, neighbours, difficulty):
    min_height, max_occ, max_trunc = (40, 25, 25)[difficulty], (0, 1, 2)[difficulty], (0.15, 0.3, 0.5)[difficulty]
    ignored_gt, ignored_det, dontcare, n_gt = [], [], [], 0
    for i, name in enumerate(gt_types):
        height = gt.bbox[i, 3] - gt.bbox[i, 1]
        if name.lower() == class_name.lower():
            valid = 1
        elif name.lower() in [n.lower() for n in neighbours]:
            valid = 0
        else:
            valid = -1
        hard = gt.occluded[i] > max_occ or gt.truncated[i] > max_trunc or height <= min_height
        if valid == 1 and not hard:
            ignored_gt.append(0)
            n_gt += 1
        elif valid == 0 or (hard and valid == 1):
            ignored_gt.append(1)
        else:
            ignored_gt.append(-1)
        if name.lower() == "dontcare":
            dontcare.append(gt.bbox[i])
    for j, name in enumerate(det_types):
        height = abs(det.bbox[j, 3] - det.bbox[j, 1])
        if height < min_height:
            ignored_det.append(1)
        elif name.lower() == class_name.lower():
            ignored_det.append(0)
        else:
            ignored_det.append(-1)
    return ignored_gt, ignored_det, dontcare, n_gt


def compute_statistics(overlaps, scores, det_bbox, ignored_gt, ignored_det, dontcare, metric, min_overlap,
                       compute_fp, thresh=0.0):
    n_det = len(ignored_det)
    assigned = [False] * n_det
    below = [compute_fp and scores[j] < thresh for j in range(n_det)]
    tp = fp = fn = 0
    tp_scores = []
    for i in range(len(ignored_gt)):
        if ignored_gt[i] == -1:
            continue
        det_idx, valid_detection, max_overlap, took_ignored = -1, NO_DETECTION, 0.0, False
        for j in range(n_det):
            if ignored_det[j] == -1 or assigned[j] or below[j]:
                continue
            overlap = overlaps[j, i]
            if not compute_fp and overlap > min_overlap and scores[j] > valid_detection:
                det_idx, valid_detection = j, scores[j]
            elif compute_fp and overlap > min_overlap and (overlap > max_overlap or took_ignored) \
                    and ignored_det[j] == 0:
                max_overlap, det_idx, valid_detection, took_ignored = overlap, j, 1.0, False
            elif compute_fp and overlap > min_overlap and valid_detection == NO_DETECTION \
                    and ignored_det[j] == 1:
                det_idx, valid_detection, took_ignored = j, 1.0, True
        if valid_detection == NO_DETECTION and ignored_gt[i] == 0:
            fn += 1
        elif valid_detection != NO_DETECTION and (ignored_gt[i] == 1 or ignored_det[det_idx] == 1):
            assigned[det_idx] = True
        elif valid_detection != NO_DETECTION:
            tp += 1
            tp_scores.append(scores[det_idx])
            assigned[det_idx] = True
    if compute_fp:
        for j in range(n_det):
            if not (assigned[j] or ignored_det[j] == -1 or ignored_det[j] == 1 or below[j]):
                fp += 1
        stuff = 0
        if metric == "bbox":
            for region in dontcare:
                for j in range(n_det):
                    if assigned[j] or ignored_det[j] in (-1, 1) or below[j]:
                        continue
                    share = iou.image_overlap(det_bbox[j:j + 1], np.asarray(region)[None], "area_a")[0, 0]
                    if share > min_overlap:
                        assigned[j] = True
                        stuff += 1
        fp -= stuff
    return tp, fp, fn, tp_scores


def get_thresholds(scores, n_gt):
    scores = sorted(scores, reverse=True)
    out, current = [], 0.0
    for i, score in enumerate(scores):
        left = (i + 1) / n_gt
        right = (i + 2) / n_gt if i < len(scores) - 1 else left
        if (right - current) < (current - left) and i < len(scores) - 1:
            continue
        out.append(score)
        current += 1.0 / (SAMPLE_POINTS - 1.0)
    return out


def reference_ap(gt_frames, det_frames, class_name, metric, difficulty, min_overlap, neighbours=(),
                 gt_fold=None, min_score=None):
    """AP R11 and R40 in percent, and the interpolated precision and recall (41,) at the sample points,
    for one class, metric, difficulty (0, 1, 2) and overlap."""
    gt_fold = gt_fold or {}
    prepared, all_scores, n_gt = [], [], 0
    for gt, det in zip(gt_frames, det_frames):
        keep = [min_score is None or s > min_score for s in (det.score if len(det) else [])]
        det = det.select(np.array(keep, dtype=bool)) if len(det) else det
        gt_types = [gt_fold.get(t, t) for t in gt.types]
        det_scores = list(det.score) if len(det) else []
        overlaps = frame_overlaps(gt, det, metric)
        ignored_gt, ignored_det, dontcare, count = clean_data(gt_types, gt, det.types, det, class_name,
                                                              neighbours, difficulty)
        n_gt += count
        _, _, _, tp_scores = compute_statistics(overlaps, det_scores, det.bbox, ignored_gt, ignored_det,
                                                dontcare, metric, min_overlap, compute_fp=False)
        all_scores += tp_scores
        prepared.append((overlaps, det_scores, det.bbox, ignored_gt, ignored_det, dontcare))
    precision, recall = np.zeros(SAMPLE_POINTS), np.zeros(SAMPLE_POINTS)
    if n_gt > 0:
        thresholds = get_thresholds(all_scores, n_gt)[:SAMPLE_POINTS]
        for t, thresh in enumerate(thresholds):
            tp = fp = fn = 0
            for overlaps, scores, bbox, ignored_gt, ignored_det, dontcare in prepared:
                a, b, c, _ = compute_statistics(overlaps, scores, bbox, ignored_gt, ignored_det, dontcare, metric,
                                                min_overlap, compute_fp=True, thresh=thresh)
                tp, fp, fn = tp + a, fp + b, fn + c
            precision[t] = tp / (tp + fp) if tp + fp else 0.0
            recall[t] = tp / (tp + fn) if tp + fn else 0.0
        for t in range(len(thresholds)):
            precision[t] = max(precision[t:len(thresholds)])
            recall[t] = max(recall[t:len(thresholds)])
    ap11 = sum(precision[i] for i in range(0, SAMPLE_POINTS, 4)) / 11 * 100
    ap40 = sum(precision[i] for i in range(1, SAMPLE_POINTS)) / 40 * 100
    return ap11, ap40, precision, recall
