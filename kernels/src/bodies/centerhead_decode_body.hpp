// Per-work-item bodies of CenterHead decoding: heatmap local maxima, top-k, box decoding.
#pragma once

#include <cstddef>
#include <cstdint>

#include "device_math.hpp"

namespace v2x {

// The decode of one CenterHead task; maps of (nx, ny), rows along x (BEVFusion's BEV layout).
struct CenterHeadDecodeParams {
  float pc_min[2];           // pc_range x_min, y_min
  float cell_size[2];        // metres per head cell along x, y: voxel_size * out_size_factor
  float score_threshold;     // kept when score > threshold
  float center_range[6];     // post_center_range, inclusive on both ends
  int32_t nx;
  int32_t ny;
  int32_t num_classes;
  int32_t pool_size;         // local-maximum window (odd); 1 keeps every pixel
  int32_t has_velocity;
};

V2X_BODY float sigmoid(float x) { return 1.0f / (1.0f + V2X_EXP(-x)); }

// Work-item j over (K, nx, ny): 1 when pixel j scores above the threshold and is the maximum of its
// pool_size x pool_size window within its class (ties all kept, as max-pool == heat).
V2X_BODY void heatmap_peak_flag_body(size_t j, const float* scores, CenterHeadDecodeParams p,
                                     int32_t* flag) {
  const float s = scores[j];
  if (!(s > p.score_threshold)) {
    flag[j] = 0;
    return;
  }
  const size_t plane_size = static_cast<size_t>(p.nx) * static_cast<size_t>(p.ny);
  const size_t plane = j - j % plane_size;
  const int32_t x = static_cast<int32_t>((j % plane_size) / static_cast<size_t>(p.ny));
  const int32_t y = static_cast<int32_t>(j % static_cast<size_t>(p.ny));
  const int32_t r = p.pool_size / 2;
  int32_t peak = 1;
  for (int32_t dx = -r; dx <= r; ++dx) {
    const int32_t xx = x + dx;
    if (xx < 0 || xx >= p.nx) continue;
    for (int32_t dy = -r; dy <= r; ++dy) {
      const int32_t yy = y + dy;
      if (yy < 0 || yy >= p.ny) continue;
      if (scores[plane + static_cast<size_t>(xx) * p.ny + yy] > s) peak = 0;
    }
  }
  flag[j] = peak;
}

// Work-item j: sigmoid of logit j.
V2X_BODY void heatmap_sigmoid_body(size_t j, const float* logits, float* scores) {
  scores[j] = sigmoid(logits[j]);
}

// Work-item j: flagged pixel j as (descending-score key, pixel index) at its compacted position.
V2X_BODY void heatmap_candidate_body(size_t j, const float* scores, const int32_t* flag,
                                     const int32_t* position, uint32_t* keys, int32_t* vals) {
  if (flag[j] == 0) return;
  keys[position[j]] = ~float_order_key(scores[j]);
  vals[position[j]] = static_cast<int32_t>(j);
}

// Work-item t over the top candidates: decodes candidate t (pixel vals[t]) into a box
// (x, y, z, dx, dy, dz, yaw[, vx, vy]), its score and class, and flags it when its centre lies in
// center_range. x = (ix + reg_x) * cell_x + x_min (likewise y); z = height (the box centre);
// (dx, dy, dz) = exp(dim); yaw = atan2(rot_sin, rot_cos) wrapped to [-pi, pi).
V2X_BODY void centerhead_box_body(size_t t, const int32_t* pixels, const float* scores,
                                  const float* reg, const float* height, const float* dim,
                                  const float* rot, const float* vel, CenterHeadDecodeParams p,
                                  float* boxes, float* box_scores, int32_t* labels,
                                  int32_t* in_range) {
  const size_t hw = static_cast<size_t>(p.nx) * static_cast<size_t>(p.ny);
  const size_t j = static_cast<size_t>(pixels[t]);
  const size_t pix = j % hw;
  const float ix = static_cast<float>(pix / static_cast<size_t>(p.ny));
  const float iy = static_cast<float>(pix % static_cast<size_t>(p.ny));
  const int box_dim = p.has_velocity != 0 ? 9 : 7;
  float* b = boxes + t * static_cast<size_t>(box_dim);
  b[0] = (ix + reg[pix]) * p.cell_size[0] + p.pc_min[0];
  b[1] = (iy + reg[hw + pix]) * p.cell_size[1] + p.pc_min[1];
  b[2] = height[pix];
  b[3] = V2X_EXP(dim[pix]);
  b[4] = V2X_EXP(dim[hw + pix]);
  b[5] = V2X_EXP(dim[2 * hw + pix]);
  float yaw = V2X_ATAN2(rot[pix], rot[hw + pix]);
  if (yaw >= kPi) yaw -= 2.0f * kPi;
  b[6] = yaw;
  if (p.has_velocity != 0) {
    b[7] = vel[pix];
    b[8] = vel[hw + pix];
  }
  box_scores[t] = scores[j];
  labels[t] = static_cast<int32_t>(j / hw);
  int32_t inside = 1;
  for (int d = 0; d < 3; ++d) {
    if (!(b[d] >= p.center_range[d] && b[d] <= p.center_range[3 + d])) inside = 0;
  }
  in_range[t] = inside;
}

// Work-item t: copies in-range candidate t to its compacted output position.
V2X_BODY void centerhead_compact_body(size_t t, const float* boxes, const float* box_scores,
                                      const int32_t* labels, const int32_t* in_range,
                                      const int32_t* position, int32_t box_dim, int32_t label_offset,
                                      float* out_boxes, float* out_scores, int32_t* out_labels) {
  if (in_range[t] == 0) return;
  const size_t o = static_cast<size_t>(position[t]);
  for (int32_t d = 0; d < box_dim; ++d) out_boxes[o * box_dim + d] = boxes[t * box_dim + d];
  out_scores[o] = box_scores[t];
  out_labels[o] = labels[t] + label_offset;
}

}  // namespace v2x
