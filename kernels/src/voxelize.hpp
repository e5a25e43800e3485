// Hard voxelization (Pipeline A, mmcv semantics) and dynamic mean voxelization (Pipeline B).
#pragma once

#include <cstddef>
#include <cstdint>

#include "bodies/voxelize_body.hpp"
#include "usm_array.hpp"

namespace v2x {

// What happened to the input points; every dropped point is counted in exactly one field.
struct VoxelizeStats {
  int64_t num_points = 0;          // input rows
  int64_t num_nonfinite = 0;       // dropped: a NaN / inf feature
  int64_t num_out_of_range = 0;    // dropped: outside pc_range
  int64_t num_voxel_overflow = 0;  // dropped: their voxel came after max_voxels voxels
  int64_t num_point_overflow = 0;  // dropped: their voxel already held max_points points
  int64_t num_voxels_dropped = 0;  // voxels beyond max_voxels
};

// The grid of pc_range / voxel_size: dims = round((max - min) / size), computed in float as mmcv.
VoxelGrid make_voxel_grid(const float pc_range[6], const float voxel_size[3]);

// Hard voxelization in two steps so the caller can allocate outputs of the right size in between:
// the constructor does all the work up to the voxel count, fill() writes the outputs.
class HardVoxelization {
 public:
  HardVoxelization(sycl::queue& q, const float* points, size_t num_points, int num_features,
                   VoxelGrid grid, int32_t max_points, int32_t max_voxels);
  int32_t num_voxels() const { return num_voxels_; }
  const VoxelizeStats& stats() const { return stats_; }
  // voxels: (V, max_points, C), coors: (V, 4) as (batch, x, y, z), num_points: (V,).
  void fill(float* voxels, int32_t* coors, int32_t* num_points, int32_t batch_index);

 private:
  sycl::queue& q_;
  const float* points_;
  int num_features_;
  VoxelGrid grid_;
  int32_t max_points_;
  int32_t num_voxels_ = 0;
  VoxelizeStats stats_;
  UsmArray<int32_t> cells_;
  UsmArray<int32_t> voxel_head_;
  UsmArray<int32_t> sorted_points_;
  UsmArray<int32_t> start_;
};

// Dynamic voxelization: every occupied voxel, ordered by linear cell index (z, y, x), i.e. by
// coordinate (batch, z, y, x) lexicographically.
class DynamicVoxelization {
 public:
  DynamicVoxelization(sycl::queue& q, const float* points, size_t num_points, int num_features,
                      VoxelGrid grid);
  int32_t num_voxels() const { return num_voxels_; }
  const VoxelizeStats& stats() const { return stats_; }
  // features: (V, C) means, coors: (V, 4) as (batch, z, y, x), num_points: (V,).
  void fill(float* features, int32_t* coors, int32_t* num_points, int32_t batch_index);

 private:
  sycl::queue& q_;
  const float* points_;
  int num_features_;
  VoxelGrid grid_;
  int32_t num_voxels_ = 0;
  VoxelizeStats stats_;
  UsmArray<uint32_t> sorted_cells_;
  UsmArray<int32_t> sorted_points_;
  UsmArray<int32_t> start_;
};

}  // namespace v2x
