// Per-work-item bodies of per-class NMS in bird's-eye view: rotated-box IoU (polygon clipping)
// or CenterPoint's circle distance, a suppression bit mask, and the greedy sweep.
#pragma once

#include <cstddef>
#include <cstdint>

#include "device_math.hpp"

namespace v2x {

constexpr int kMaxClipVertices = 16;

// Corners (x0, y0, ..., x3, y3), counter-clockwise, of the BEV rectangle of box
// (x, y, z, dx, dy, dz, yaw).
V2X_BODY void bev_corners(const float* box, float* corners) {
  const float c = V2X_COS(box[6]);
  const float s = V2X_SIN(box[6]);
  const float hx = 0.5f * box[3];
  const float hy = 0.5f * box[4];
  const float lx[4] = {hx, -hx, -hx, hx};
  const float ly[4] = {hy, hy, -hy, -hy};
  for (int k = 0; k < 4; ++k) {
    corners[2 * k] = box[0] + (c * lx[k] - s * ly[k]);
    corners[2 * k + 1] = box[1] + (s * lx[k] + c * ly[k]);
  }
}

// Area of the polygon (x0, y0, x1, y1, ...) of n vertices (shoelace; positive if CCW).
V2X_BODY float polygon_area(const float* v, int n) {
  float twice = 0.0f;
  for (int k = 0; k < n; ++k) {
    const int m = k + 1 == n ? 0 : k + 1;
    twice += v[2 * k] * v[2 * m + 1] - v[2 * m] * v[2 * k + 1];
  }
  return 0.5f * twice;
}

// Intersection-over-union of the BEV rectangles of two boxes: rectangle a clipped by each edge
// of rectangle b (Sutherland-Hodgman; both are convex and counter-clockwise).
V2X_BODY float bev_rotated_iou(const float* a, const float* b) {
  const float area_a = a[3] * a[4];
  const float area_b = b[3] * b[4];
  if (!(area_a > 0.0f) || !(area_b > 0.0f)) return 0.0f;
  // Boxes whose circumscribed circles are apart cannot overlap.
  const float ddx = a[0] - b[0];
  const float ddy = a[1] - b[1];
  const float ra = a[3] * a[3] + a[4] * a[4];
  const float rb = b[3] * b[3] + b[4] * b[4];
  const float dist2 = ddx * ddx + ddy * ddy;
  if (4.0f * dist2 > ra + rb + 2.0f * V2X_SQRT(ra * rb)) return 0.0f;

  float poly[2 * kMaxClipVertices];
  float next[2 * kMaxClipVertices];
  float cb[8];
  bev_corners(a, poly);
  bev_corners(b, cb);
  int n = 4;
  for (int e = 0; e < 4 && n > 0; ++e) {
    const float px = cb[2 * e];
    const float py = cb[2 * e + 1];
    const float ex = cb[2 * ((e + 1) % 4)] - px;
    const float ey = cb[2 * ((e + 1) % 4) + 1] - py;
    int m = 0;
    for (int k = 0; k < n; ++k) {
      const int k2 = k + 1 == n ? 0 : k + 1;
      const float x1 = poly[2 * k], y1 = poly[2 * k + 1];
      const float x2 = poly[2 * k2], y2 = poly[2 * k2 + 1];
      const float s1 = ex * (y1 - py) - ey * (x1 - px);  // >= 0: inside (left of the edge)
      const float s2 = ex * (y2 - py) - ey * (x2 - px);
      if (s1 >= 0.0f) {
        next[2 * m] = x1;
        next[2 * m + 1] = y1;
        ++m;
      }
      if ((s1 >= 0.0f) != (s2 >= 0.0f)) {
        const float t = s1 / (s1 - s2);
        next[2 * m] = x1 + t * (x2 - x1);
        next[2 * m + 1] = y1 + t * (y2 - y1);
        ++m;
      }
    }
    n = m < kMaxClipVertices ? m : kMaxClipVertices;
    for (int k = 0; k < 2 * n; ++k) poly[k] = next[k];
  }
  const float inter = n >= 3 ? V2X_FABS(polygon_area(poly, n)) : 0.0f;
  const float uni = area_a + area_b - inter;
  return uni > 0.0f ? inter / uni : 0.0f;
}

// Work-item i: IoU of the pair (a[i], b[i]).
V2X_BODY void bev_iou_pair_body(size_t i, const float* a, const float* b, int32_t box_dim,
                                float* out) {
  out[i] = bev_rotated_iou(a + i * box_dim, b + i * box_dim);
}

// One class's candidates for the sweep: sorted positions [begin, begin + length) of `order`.
struct NmsSegment {
  int32_t begin;
  int32_t length;
  int32_t row_offset;  // first mask row of this segment
  int32_t label;
};

// Work-item (row r, word w): bits b of mask[r][w] say that candidate r suppresses candidate
// w * 64 + b of the same class (only later candidates). mode 0: rotated IoU > iou_threshold;
// mode 1: centre distance <= radius of the class.
V2X_BODY void nms_mask_body(size_t gid, const float* boxes, int32_t box_dim, const int32_t* order,
                            const NmsSegment* segments, const int32_t* row_segment,
                            int32_t words, int32_t mode, float iou_threshold, const float* radius,
                            uint64_t* mask) {
  const size_t r = gid / static_cast<size_t>(words);
  const int32_t w = static_cast<int32_t>(gid % static_cast<size_t>(words));
  const NmsSegment seg = segments[row_segment[r]];
  const int32_t i = static_cast<int32_t>(r) - seg.row_offset;
  const float* bi = boxes + static_cast<size_t>(order[seg.begin + i]) * box_dim;
  const float r2 = mode == 1 ? radius[seg.label] * radius[seg.label] : 0.0f;
  uint64_t bits = 0;
  for (int32_t b = 0; b < 64; ++b) {
    const int32_t j = w * 64 + b;
    if (j <= i || j >= seg.length) continue;
    const float* bj = boxes + static_cast<size_t>(order[seg.begin + j]) * box_dim;
    bool suppress;
    if (mode == 1) {
      const float dx = bi[0] - bj[0];
      const float dy = bi[1] - bj[1];
      suppress = dx * dx + dy * dy <= r2;
    } else {
      suppress = bev_rotated_iou(bi, bj) > iou_threshold;
    }
    if (suppress) bits |= uint64_t{1} << b;
  }
  mask[gid] = bits;
}

// Work-item s: greedy sweep over class segment s in score order; keeps at most post_max_size
// candidates, marking keep[order[...]] = 1. `removed` holds `words` zeroed words per segment.
V2X_BODY void nms_sweep_body(size_t s, const NmsSegment* segments, const int32_t* order,
                             const uint64_t* mask, int32_t words, int32_t post_max_size,
                             uint64_t* removed, int32_t* keep) {
  const NmsSegment seg = segments[s];
  uint64_t* gone = removed + s * static_cast<size_t>(words);
  int32_t kept = 0;
  for (int32_t i = 0; i < seg.length && kept < post_max_size; ++i) {
    if ((gone[i / 64] >> (i % 64)) & 1u) continue;
    keep[order[seg.begin + i]] = 1;
    ++kept;
    const uint64_t* row = mask + static_cast<size_t>(seg.row_offset + i) * words;
    for (int32_t w = 0; w < words; ++w) gone[w] |= row[w];
  }
}

// Work-item t over score-sorted candidates: the key of the class sort (its label).
V2X_BODY void nms_label_key_body(size_t t, const int32_t* order, const int32_t* labels,
                                 uint32_t* keys) {
  keys[t] = static_cast<uint32_t>(labels[order[t]]);
}

// Work-item i: descending-score sort key and identity value of candidate i.
V2X_BODY void nms_score_key_body(size_t i, const float* scores, uint32_t* keys, int32_t* vals) {
  keys[i] = ~float_order_key(scores[i]);
  vals[i] = static_cast<int32_t>(i);
}

// Work-item t: 1 where a new class begins in the class-sorted keys.
V2X_BODY void nms_segment_flag_body(size_t t, const uint32_t* keys, int32_t* flag) {
  flag[t] = (t == 0 || keys[t] != keys[t - 1]) ? 1 : 0;
}

// Work-item i: kept candidate i as (descending-score key, i) at its compacted position.
V2X_BODY void nms_keep_compact_body(size_t i, const float* scores, const int32_t* keep,
                                    const int32_t* position, uint32_t* keys, int32_t* vals) {
  if (keep[i] == 0) return;
  keys[position[i]] = ~float_order_key(scores[i]);
  vals[position[i]] = static_cast<int32_t>(i);
}

}  // namespace v2x
