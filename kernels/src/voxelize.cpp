// Hard and dynamic voxelization: submits the bodies of bodies/voxelize_body.hpp in order.
#include "voxelize.hpp"

#include <algorithm>
#include <cmath>

#include "coord_hash.hpp"
#include "radix_sort.hpp"
#include "scan.hpp"
#include "v2x_launch.hpp"

namespace v2x {

namespace {

// Points per work-item of the passes that also count (a scan's block sums, dropped points).
constexpr size_t kBlock = 4096;

size_t blocks_of(size_t n) { return (n + kBlock - 1) / kBlock; }

// Reads the totals of voxel_dropped_total_body into stats.
void read_dropped(sycl::queue& q, int32_t* dropped, size_t blocks, size_t n, VoxelizeStats& stats) {
  V2X_SINGLE(q, voxel_dropped_total_body, dropped, blocks);
  int32_t totals[2] = {0, 0};
  q.memcpy(totals, dropped + 2 * blocks, sizeof(totals)).wait();
  stats.num_points = static_cast<int64_t>(n);
  stats.num_nonfinite = totals[0];
  stats.num_out_of_range = totals[1];
}

}  // namespace

VoxelGrid make_voxel_grid(const float pc_range[6], const float voxel_size[3]) {
  VoxelGrid g{};
  for (int j = 0; j < 3; ++j) {
    g.range_min[j] = pc_range[j];
    g.voxel_size[j] = voxel_size[j];
    const float extent = (pc_range[3 + j] - pc_range[j]) / voxel_size[j];
    g.dims[j] = static_cast<int32_t>(std::round(extent));
  }
  return g;
}

HardVoxelization::HardVoxelization(sycl::queue& q, const float* points, size_t n,
                                   int num_features, VoxelGrid grid, int32_t max_points,
                                   int32_t max_voxels)
    : q_{q},
      points_{points},
      num_features_{num_features},
      grid_{grid},
      max_points_{max_points},
      cells_(q, n),
      voxel_head_(q, std::min(static_cast<size_t>(max_voxels), n)),
      sorted_points_(q, n),
      start_(q, std::min(static_cast<size_t>(max_voxels), n) + 1) {
  int32_t* cells = cells_.data();
  // Sized for every point: the number inside the grid is known only after this pass.
  CoordHashTable table(q, n);
  UsmArray<uint32_t> slots(q, n);
  uint32_t* s = slots.data();
  const CoordHash h = table.view();
  V2X_FOR(q, n, voxel_cell_insert_body, points, num_features, grid, h, cells, s);

  const size_t blocks = blocks_of(n);
  UsmArray<int32_t> head_rank(q, n);
  UsmArray<int32_t> sums_buf(q, blocks + 1);
  UsmArray<int32_t> dropped_buf(q, 2 * blocks + 2);
  int32_t* rank = head_rank.data();
  int32_t* sums = sums_buf.data();
  int32_t* dropped = dropped_buf.data();
  const int32_t* entries = table.entries();
  V2X_FOR(q, blocks, voxel_head_block_body, cells, s, entries, n, kBlock, rank, sums, dropped);
  read_dropped(q, dropped, blocks, n, stats_);
  const size_t valid = n - static_cast<size_t>(stats_.num_nonfinite + stats_.num_out_of_range);
  if (valid == 0) return;
  const int32_t total_voxels = exclusive_scan_from_block_sums(q, rank, rank, n, kBlock, sums);

  UsmArray<int32_t> point_voxel(q, n);
  UsmArray<int32_t> position(q, n);
  int32_t* pv = point_voxel.data();
  int32_t* pos = position.data();
  int32_t* head = voxel_head_.data();
  V2X_FOR(q, blocks, voxel_assign_block_body, cells, s, entries, rank, max_voxels, n, kBlock, pv,
          pos, sums, head);
  const int32_t kept = exclusive_scan_from_block_sums(q, pos, pos, n, kBlock, sums);

  num_voxels_ = total_voxels < max_voxels ? total_voxels : max_voxels;
  stats_.num_voxels_dropped = total_voxels - num_voxels_;
  stats_.num_voxel_overflow = static_cast<int64_t>(valid) - kept;

  UsmArray<uint32_t> keys(q, static_cast<size_t>(kept));
  uint32_t* k = keys.data();
  int32_t* sorted = sorted_points_.data();
  V2X_FOR(q, n, voxel_compact_body, pv, pos, k, sorted);
  radix_sort_pairs(q, k, sorted, static_cast<size_t>(kept),
                   bits_for(static_cast<uint64_t>(num_voxels_ - 1)));

  int32_t* start = start_.data();
  V2X_FOR(q, static_cast<size_t>(kept), voxel_segment_start_body, k, start);
  const int32_t nv = num_voxels_;
  V2X_SINGLE(q, voxel_segment_end_body, start, nv, kept);

  UsmArray<int32_t> excess(q, static_cast<size_t>(num_voxels_));
  int32_t* e = excess.data();
  V2X_FOR(q, static_cast<size_t>(num_voxels_), voxel_point_excess_body, start, max_points, e);
  stats_.num_point_overflow = exclusive_scan(q, e, e, static_cast<size_t>(num_voxels_));
  q.wait();
}

void HardVoxelization::fill(float* voxels, int32_t* coors, int32_t* num_points,
                            int32_t batch_index) {
  if (num_voxels_ == 0) return;
  const float* points = points_;
  const int num_features = num_features_;
  const int32_t* sorted = sorted_points_.data();
  const int32_t* start = start_.data();
  const int32_t* head = voxel_head_.data();
  const int32_t* cells = cells_.data();
  const VoxelGrid grid = grid_;
  const int32_t max_points = max_points_;
  V2X_FOR(q_, static_cast<size_t>(num_voxels_), hard_voxel_fill_body, points, num_features, sorted,
          start, head, cells, grid, max_points, batch_index, voxels, coors, num_points);
  q_.wait();
}

DynamicVoxelization::DynamicVoxelization(sycl::queue& q, const float* points, size_t n,
                                         int num_features, VoxelGrid grid)
    : q_{q},
      points_{points},
      num_features_{num_features},
      grid_{grid},
      sorted_cells_(q, n),
      sorted_points_(q, n),
      start_(q, n + 1) {
  UsmArray<int32_t> cells_buf(q, n);
  UsmArray<int32_t> position(q, n);
  const size_t blocks = blocks_of(n);
  UsmArray<int32_t> sums_buf(q, blocks + 1);
  UsmArray<int32_t> dropped_buf(q, 2 * blocks + 2);
  int32_t* cells = cells_buf.data();
  int32_t* pos = position.data();
  int32_t* sums = sums_buf.data();
  int32_t* dropped = dropped_buf.data();
  V2X_FOR(q, blocks, voxel_cell_block_body, points, num_features, grid, n, kBlock, cells, pos, sums,
          dropped);
  read_dropped(q, dropped, blocks, n, stats_);
  const size_t valid = n - static_cast<size_t>(stats_.num_nonfinite + stats_.num_out_of_range);
  if (valid == 0) return;
  exclusive_scan_from_block_sums(q, pos, pos, n, kBlock, sums);
  uint32_t* k = sorted_cells_.data();
  int32_t* sorted = sorted_points_.data();
  V2X_FOR(q, n, voxel_compact_cell_body, cells, pos, k, sorted);
  const uint64_t max_cell =
      static_cast<uint64_t>(grid.dims[0]) * grid.dims[1] * grid.dims[2] - 1;
  radix_sort_pairs(q, k, sorted, valid, bits_for(max_cell));

  // Segment flags; their exclusive scan (each pair's segment number) reuses the position buffer.
  UsmArray<int32_t> flags(q, valid);
  int32_t* flag = flags.data();
  V2X_FOR(q, valid, voxel_segment_flag_body, k, flag);
  num_voxels_ = exclusive_scan(q, flag, pos, valid);
  int32_t* start = start_.data();
  V2X_FOR(q, valid, voxel_segment_index_body, flag, pos, start);
  const int32_t end = static_cast<int32_t>(valid);
  const int32_t nv = num_voxels_;
  V2X_SINGLE(q, voxel_segment_end_body, start, nv, end);
  q.wait();
}

void DynamicVoxelization::fill(float* features, int32_t* coors, int32_t* num_points,
                               int32_t batch_index) {
  if (num_voxels_ == 0) return;
  const float* points = points_;
  const int num_features = num_features_;
  const uint32_t* cells = sorted_cells_.data();
  const int32_t* sorted = sorted_points_.data();
  const int32_t* start = start_.data();
  const VoxelGrid grid = grid_;
  V2X_FOR(q_, static_cast<size_t>(num_voxels_), dynamic_voxel_mean_body, points, num_features,
          cells, sorted, start, grid, batch_index, features, coors, num_points);
  q_.wait();
}

}  // namespace v2x
