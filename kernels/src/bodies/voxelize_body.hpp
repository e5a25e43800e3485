// Per-work-item bodies of hard (Pipeline A) and dynamic (Pipeline B) voxelization.
#pragma once

#include <cstddef>
#include <cstdint>

#include "coord_hash_body.hpp"
#include "device_math.hpp"

namespace v2x {

// The voxel grid: cell c_j = floor((p_j - range_min_j) / voxel_size_j), kept when 0 <= c_j < dims_j
// (mmcv's hard_voxelize, computed in float as mmcv does). Linear cell = (z * ny + y) * nx + x.
struct VoxelGrid {
  float range_min[3];
  float voxel_size[3];
  int32_t dims[3];
};

constexpr int32_t kCellOutOfRange = -1;
constexpr int32_t kCellNonFinite = -2;

// Linear cell of the point p (num_features floats), or kCellOutOfRange / kCellNonFinite. A point
// with any non-finite feature is dropped, not only one with a non-finite coordinate. Written
// without early exits so the compiler can keep it branch-free.
V2X_BODY int32_t voxel_cell(const float* p, int num_features, const VoxelGrid& grid) {
  bool finite = true;
  for (int f = 0; f < num_features; ++f) finite = finite & static_cast<bool>(V2X_ISFINITE(p[f]));
  bool inside = true;
  int32_t c[3];
  for (int j = 0; j < 3; ++j) {
    const float cf = V2X_FLOOR((p[j] - grid.range_min[j]) / grid.voxel_size[j]);
    // Compared as float before the int conversion, so huge or NaN values never reach it.
    const bool ok = cf >= 0.0f && cf < static_cast<float>(grid.dims[j]);
    inside = inside & ok;
    c[j] = ok ? static_cast<int32_t>(cf) : 0;
  }
  const int32_t cell = (c[2] * grid.dims[1] + c[1]) * grid.dims[0] + c[0];
  return !finite ? kCellNonFinite : (inside ? cell : kCellOutOfRange);
}

// Work-item b over blocks of `block` points (dynamic voxelization): the cell of each point, flag
// 1 for points inside the grid, and per block their count -> sums[b] and the non-finite /
// out-of-range counts -> dropped[2b], dropped[2b + 1].
V2X_BODY void voxel_cell_block_body(size_t b, const float* points, int num_features,
                                    VoxelGrid grid, size_t n, size_t block, int32_t* cells,
                                    int32_t* flag, int32_t* sums, int32_t* dropped) {
  const size_t begin = b * block;
  const size_t end = begin + block < n ? begin + block : n;
  int32_t valid = 0, nonfinite = 0, outside = 0;
  for (size_t i = begin; i < end; ++i) {
    const int32_t cell =
        voxel_cell(points + i * static_cast<size_t>(num_features), num_features, grid);
    cells[i] = cell;
    flag[i] = cell >= 0 ? 1 : 0;
    valid += cell >= 0 ? 1 : 0;
    nonfinite += cell == kCellNonFinite ? 1 : 0;
    outside += cell == kCellOutOfRange ? 1 : 0;
  }
  sums[b] = valid;
  dropped[2 * b] = nonfinite;
  dropped[2 * b + 1] = outside;
}

// Work-item i: linear cell of point i, registered in the hash table of cells; a cell keeps its
// smallest point index, i.e. the point of first appearance (hard voxelization).
V2X_BODY void voxel_cell_insert_body(size_t i, const float* points, int num_features,
                                     VoxelGrid grid, CoordHash table, int32_t* cells,
                                     uint32_t* slots) {
  const int32_t cell =
      voxel_cell(points + i * static_cast<size_t>(num_features), num_features, grid);
  cells[i] = cell;
  if (cell >= 0) slots[i] = coord_hash_insert_min(table, cell, static_cast<int32_t>(i));
}

// Work-item b over blocks of `block` points: head[i] = 1 when point i is the first point of its
// cell; per block, the number of heads -> sums[b] and of non-finite / out-of-range points ->
// dropped[2b], dropped[2b + 1] (the block sums of the head scan come for free).
V2X_BODY void voxel_head_block_body(size_t b, const int32_t* cells, const uint32_t* slots,
                                    const int32_t* hash_entries, size_t n, size_t block,
                                    int32_t* head, int32_t* sums, int32_t* dropped) {
  const size_t begin = b * block;
  const size_t end = begin + block < n ? begin + block : n;
  int32_t heads = 0, nonfinite = 0, outside = 0;
  for (size_t i = begin; i < end; ++i) {
    const int32_t cell = cells[i];
    const int32_t h = (cell >= 0 && hash_entries[2 * static_cast<size_t>(slots[i]) + 1] ==
                                        static_cast<int32_t>(i))
                          ? 1
                          : 0;
    head[i] = h;
    heads += h;
    nonfinite += cell == kCellNonFinite ? 1 : 0;
    outside += cell == kCellOutOfRange ? 1 : 0;
  }
  sums[b] = heads;
  dropped[2 * b] = nonfinite;
  dropped[2 * b + 1] = outside;
}

// Single work-item: totals of the per-block dropped counts -> dropped[2 * blocks + {0, 1}].
V2X_BODY void voxel_dropped_total_body(int32_t* dropped, size_t num_blocks) {
  int32_t nonfinite = 0, outside = 0;
  for (size_t b = 0; b < num_blocks; ++b) {
    nonfinite += dropped[2 * b];
    outside += dropped[2 * b + 1];
  }
  dropped[2 * num_blocks] = nonfinite;
  dropped[2 * num_blocks + 1] = outside;
}

// Work-item b over blocks: voxel id of each point (its cell's rank in order of first appearance);
// points of voxels at or beyond max_voxels get -1 and flag 0, kept points flag 1, counted per
// block in sums[b]. The head point of each kept voxel is recorded.
V2X_BODY void voxel_assign_block_body(size_t b, const int32_t* cells, const uint32_t* slots,
                                      const int32_t* hash_entries, const int32_t* head_rank,
                                      int32_t max_voxels, size_t n, size_t block,
                                      int32_t* point_voxel, int32_t* flag, int32_t* sums,
                                      int32_t* voxel_head) {
  const size_t begin = b * block;
  const size_t end = begin + block < n ? begin + block : n;
  int32_t kept = 0;
  for (size_t i = begin; i < end; ++i) {
    int32_t v = -1;
    if (cells[i] >= 0) {
      const int32_t first = hash_entries[2 * static_cast<size_t>(slots[i]) + 1];
      const int32_t rank = head_rank[first];
      if (rank < max_voxels) {
        v = rank;
        if (first == static_cast<int32_t>(i)) voxel_head[rank] = first;
      }
    }
    point_voxel[i] = v;
    flag[i] = v >= 0 ? 1 : 0;
    kept += v >= 0 ? 1 : 0;
  }
  sums[b] = kept;
}

// Work-item i: writes kept point i as the pair (voxel id, point index) at its compacted position.
V2X_BODY void voxel_compact_body(size_t i, const int32_t* point_voxel, const int32_t* position,
                                 uint32_t* keys, int32_t* vals) {
  const int32_t v = point_voxel[i];
  if (v >= 0) {
    keys[position[i]] = static_cast<uint32_t>(v);
    vals[position[i]] = static_cast<int32_t>(i);
  }
}

// Work-item j over pairs sorted by key: the first pair of each key records its start.
V2X_BODY void voxel_segment_start_body(size_t j, const uint32_t* sorted_keys, int32_t* start) {
  if (j == 0 || sorted_keys[j] != sorted_keys[j - 1]) {
    start[sorted_keys[j]] = static_cast<int32_t>(j);
  }
}

// Single work-item: closes the segment table, start[num_segments] = number of sorted pairs.
V2X_BODY void voxel_segment_end_body(int32_t* start, int32_t num_segments, int32_t num_pairs) {
  start[num_segments] = num_pairs;
}

// Work-item v: points of voxel v beyond max_points (dropped by the hard voxelizer).
V2X_BODY void voxel_point_excess_body(size_t v, const int32_t* start, int32_t max_points,
                                      int32_t* excess) {
  const int32_t count = start[v + 1] - start[v];
  excess[v] = count > max_points ? count - max_points : 0;
}

// Work-item v: fills voxel v of the hard voxelization: its first max_points points in input order
// (rows beyond them zero), its point count and its coordinate (batch, x, y, z).
V2X_BODY void hard_voxel_fill_body(size_t v, const float* points, int num_features,
                                   const int32_t* sorted_points, const int32_t* start,
                                   const int32_t* voxel_head, const int32_t* cells, VoxelGrid grid,
                                   int32_t max_points, int32_t batch_index, float* voxels,
                                   int32_t* coors, int32_t* num_points) {
  const int32_t begin = start[v];
  const int32_t count = start[v + 1] - begin;
  const int32_t kept = count < max_points ? count : max_points;
  const size_t row = static_cast<size_t>(num_features);
  float* out = voxels + v * static_cast<size_t>(max_points) * row;
  for (int32_t r = 0; r < kept; ++r) {
    const float* p = points + static_cast<size_t>(sorted_points[begin + r]) * row;
    for (size_t f = 0; f < row; ++f) out[r * row + f] = p[f];
  }
  for (size_t k = static_cast<size_t>(kept) * row; k < static_cast<size_t>(max_points) * row; ++k) {
    out[k] = 0.0f;
  }
  num_points[v] = kept;
  const int32_t cell = cells[voxel_head[v]];
  const int32_t x = cell % grid.dims[0];
  const int32_t y = (cell / grid.dims[0]) % grid.dims[1];
  const int32_t z = cell / (grid.dims[0] * grid.dims[1]);
  coors[4 * v + 0] = batch_index;
  coors[4 * v + 1] = x;
  coors[4 * v + 2] = y;
  coors[4 * v + 3] = z;
}

// Work-item i: writes valid point i as the pair (cell, point index) at its compacted position.
V2X_BODY void voxel_compact_cell_body(size_t i, const int32_t* cells, const int32_t* position,
                                      uint32_t* keys, int32_t* vals) {
  const int32_t cell = cells[i];
  if (cell >= 0) {
    keys[position[i]] = static_cast<uint32_t>(cell);
    vals[position[i]] = static_cast<int32_t>(i);
  }
}

// Work-item j over pairs sorted by cell: 1 where a new cell begins.
V2X_BODY void voxel_segment_flag_body(size_t j, const uint32_t* sorted_keys, int32_t* flag) {
  flag[j] = (j == 0 || sorted_keys[j] != sorted_keys[j - 1]) ? 1 : 0;
}

// Work-item j: the start of each segment, indexed by its segment number.
V2X_BODY void voxel_segment_index_body(size_t j, const int32_t* flag, const int32_t* segment,
                                       int32_t* start) {
  if (flag[j] != 0) start[segment[j]] = static_cast<int32_t>(j);
}

// Work-item v: voxel v of the dynamic voxelization: the mean of its points' features (summed in
// input order, then divided by the count), the count, and its coordinate (batch, z, y, x).
V2X_BODY void dynamic_voxel_mean_body(size_t v, const float* points, int num_features,
                                      const uint32_t* sorted_cells, const int32_t* sorted_points,
                                      const int32_t* start, VoxelGrid grid, int32_t batch_index,
                                      float* features, int32_t* coors, int32_t* num_points) {
  const int32_t begin = start[v];
  const int32_t count = start[v + 1] - begin;
  const size_t row = static_cast<size_t>(num_features);
  float* out = features + v * row;
  for (size_t f = 0; f < row; ++f) out[f] = 0.0f;
  for (int32_t r = 0; r < count; ++r) {
    const float* p = points + static_cast<size_t>(sorted_points[begin + r]) * row;
    for (size_t f = 0; f < row; ++f) out[f] += p[f];
  }
  const float n = static_cast<float>(count);
  for (size_t f = 0; f < row; ++f) out[f] = out[f] / n;
  num_points[v] = count;
  const int32_t cell = static_cast<int32_t>(sorted_cells[begin]);
  coors[4 * v + 0] = batch_index;
  coors[4 * v + 1] = cell / (grid.dims[0] * grid.dims[1]);
  coors[4 * v + 2] = (cell / grid.dims[0]) % grid.dims[1];
  coors[4 * v + 3] = cell % grid.dims[0];
}

}  // namespace v2x
