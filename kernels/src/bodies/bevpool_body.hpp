// Per-work-item bodies of BEVPool-v2 (camera features into the BEV grid) and of its geometry
// precompute (camera frustum -> BEV cell of every frustum point -> sorted indices + intervals).
#pragma once

#include <cstddef>
#include <cstdint>

#include "device_math.hpp"

namespace v2x {

// The BEV grid of xbound / ybound / zbound ([lower, upper, step] each, metres): cell index
// floor((p - lower) / step) in [0, dims). Rank of a cell = (z * nx + x) * ny + y: BEVFusion's BEV
// layout (nz * C, nx, ny), rows along x.
struct BevGrid {
  float lower[3];
  float step[3];
  int32_t dims[3];
};

// The camera of an LSS frustum: pixel (u, v) at depth d -> LiDAR point
// combine * [(u', v') * d', d'] + translation, where (u', v', d') = undo_aug * ([u, v, d] -
// aug_translation) undoes the image resize / crop (img_aug), combine = cam_to_lidar_R * K^-1.
struct FrustumCamera {
  float undo_aug[9];
  float aug_translation[3];
  float combine[9];
  float translation[3];
  float u_step;  // image pixels per feature column: (image_w - 1) / (feature_w - 1)
  float v_step;  // image pixels per feature row: (image_h - 1) / (feature_h - 1)
};

// Work-item i = (d * fH + h) * fW + w: LiDAR-frame point of frustum point i (3 floats).
V2X_BODY void frustum_point_body(size_t i, int32_t feature_w, int32_t feature_h,
                                 const float* depths, FrustumCamera cam, float* points) {
  const size_t hw = static_cast<size_t>(feature_w) * static_cast<size_t>(feature_h);
  const int32_t d_index = static_cast<int32_t>(i / hw);
  const int32_t h = static_cast<int32_t>((i % hw) / static_cast<size_t>(feature_w));
  const int32_t w = static_cast<int32_t>(i % static_cast<size_t>(feature_w));
  const float image_pt[3] = {static_cast<float>(w) * cam.u_step - cam.aug_translation[0],
                             static_cast<float>(h) * cam.v_step - cam.aug_translation[1],
                             depths[d_index] - cam.aug_translation[2]};
  float p[3];
  for (int r = 0; r < 3; ++r) {
    p[r] = cam.undo_aug[3 * r] * image_pt[0] + cam.undo_aug[3 * r + 1] * image_pt[1] +
           cam.undo_aug[3 * r + 2] * image_pt[2];
  }
  const float ray[3] = {p[0] * p[2], p[1] * p[2], p[2]};
  for (int r = 0; r < 3; ++r) {
    points[3 * i + r] = cam.combine[3 * r] * ray[0] + cam.combine[3 * r + 1] * ray[1] +
                        cam.combine[3 * r + 2] * ray[2] + cam.translation[r];
  }
}

// Work-item i: sort key of frustum point i: its BEV rank, or the grid's cell count when the
// point lies outside the grid (or is not finite), which sorts it behind every valid point.
V2X_BODY void bev_rank_body(size_t i, const float* points, BevGrid grid, uint32_t* keys,
                            int32_t* order) {
  const uint32_t outside =
      static_cast<uint32_t>(grid.dims[0]) * grid.dims[1] * grid.dims[2];
  int32_t c[3];
  uint32_t key = 0;
  bool inside = true;
  for (int j = 0; j < 3; ++j) {
    const float cf = V2X_FLOOR((points[3 * i + j] - grid.lower[j]) / grid.step[j]);
    if (!(cf >= 0.0f && cf < static_cast<float>(grid.dims[j]))) inside = false;
    c[j] = inside ? static_cast<int32_t>(cf) : 0;
  }
  if (inside) {
    key = static_cast<uint32_t>((c[2] * grid.dims[0] + c[0]) * grid.dims[1] + c[1]);
  } else {
    key = outside;
  }
  keys[i] = key;
  order[i] = static_cast<int32_t>(i);
}

// Work-item j over sorted keys: 1 where a run of one valid rank begins.
V2X_BODY void bev_run_flag_body(size_t j, const uint32_t* keys, uint32_t outside, int32_t* flag) {
  flag[j] = (keys[j] < outside && (j == 0 || keys[j] != keys[j - 1])) ? 1 : 0;
}

// Work-item j: where the valid keys end (the first invalid sorted position) -> *valid_end,
// which the caller set to 0 beforehand (the answer when no key is valid).
V2X_BODY void bev_valid_end_body(size_t j, const uint32_t* keys, size_t n, uint32_t outside,
                                 int32_t* valid_end) {
  const bool here_valid = keys[j] < outside;
  const bool next_valid = j + 1 < n && keys[j + 1] < outside;
  if (here_valid && !next_valid) *valid_end = static_cast<int32_t>(j + 1);
}

// Work-item j: the run starting at j becomes interval row run[j] = (start, -, rank).
V2X_BODY void bev_interval_start_body(size_t j, const uint32_t* keys, const int32_t* flag,
                                      const int32_t* run, int32_t* intervals) {
  if (flag[j] == 0) return;
  const int32_t r = run[j];
  intervals[3 * r + 0] = static_cast<int32_t>(j);
  intervals[3 * r + 2] = static_cast<int32_t>(keys[j]);
}

// Work-item r: closes interval r at the next one's start; the row after the last is the sentinel
// (valid_end, num_points, -1) that covers the frustum points outside the grid.
V2X_BODY void bev_interval_end_body(size_t r, size_t num_runs, const int32_t* valid_end,
                                    int32_t num_points, int32_t* intervals) {
  if (r + 1 < num_runs) {
    intervals[3 * r + 1] = intervals[3 * (r + 1)];
  } else if (r + 1 == num_runs) {
    intervals[3 * r + 1] = *valid_end;
  } else {
    intervals[3 * r + 0] = *valid_end;
    intervals[3 * r + 1] = num_points;
    intervals[3 * r + 2] = -1;
  }
}

// Work-item gid = interval * (C / CB) + channel block: the sum over the interval's frustum points
// of depth * context for CB channels, in index order, written to out (nz * C, nx, ny) at channel
// z * C + c (plane = nx * ny). Intervals with a negative rank (the sentinel) write nothing.
template <int CB>
V2X_BODY void bev_pool_body(size_t gid, const float* depth, const float* context,
                            int32_t num_channels, size_t feature_hw, const int32_t* indices,
                            const int32_t* intervals, size_t plane, float* out) {
  const size_t blocks = static_cast<size_t>(num_channels / CB);
  const size_t k = gid / blocks;
  const int32_t c0 = static_cast<int32_t>(gid % blocks) * CB;
  const int32_t start = intervals[3 * k + 0];
  const int32_t end = intervals[3 * k + 1];
  const int32_t rank = intervals[3 * k + 2];
  if (rank < 0) return;
  float acc[CB];
  for (int cc = 0; cc < CB; ++cc) acc[cc] = 0.0f;
  for (int32_t j = start; j < end; ++j) {
    const size_t idx = static_cast<size_t>(indices[j]);
    const float d = depth[idx];
    const float* f = context + (idx % feature_hw) * static_cast<size_t>(num_channels) + c0;
    for (int cc = 0; cc < CB; ++cc) acc[cc] += d * f[cc];
  }
  const size_t z = static_cast<size_t>(rank) / plane;
  const size_t cell = static_cast<size_t>(rank) % plane;
  float* o = out + (z * static_cast<size_t>(num_channels) + static_cast<size_t>(c0)) * plane + cell;
  for (int cc = 0; cc < CB; ++cc) o[cc * plane] = acc[cc];
}

}  // namespace v2x
