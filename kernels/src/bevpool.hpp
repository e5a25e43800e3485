// BEVPool-v2 (camera depth x context features pooled into the BEV grid) and its geometry.
//
// Geometry format (guide §5.2.3, design.md §3), for a frustum of P = D * fH * fW points, point
// i = (d * fH + h) * fW + w:
//   indices   (P,) int32: a permutation of 0..P-1. First the frustum points inside the BEV grid,
//             sorted by BEV rank, equal ranks in ascending index; then the points outside the
//             grid in ascending index.
//   intervals (K + 1, 3) int32 rows (start, end, bev_rank): the K runs of equal rank, ascending
//             rank, indices[start:end] being the run's points; then the sentinel row
//             (P_inside, P, -1) covering the points outside the grid.
//   bev_rank  = (z * nx + x) * ny + y of the BEV cell, cell = floor((p - lower) / step) per axis.
// Pooled output: (nz * C, nx, ny) float32 (BEVFusion's layout, rows along x), channel z * C + c;
// cells no frustum point reaches are 0.
#pragma once

#include <cstddef>
#include <cstdint>

#include "bodies/bevpool_body.hpp"
#include "usm_array.hpp"

namespace v2x {

// bounds: xbound, ybound, zbound as [lower, upper, step]; dims = round((upper - lower) / step).
BevGrid make_bev_grid(const float xbound[3], const float ybound[3], const float zbound[3]);

// LiDAR-frame points (D * fH * fW, 3) of an LSS depth frustum.
void frustum_points(sycl::queue& q, const FrustumCamera& cam, const float* depths,
                    int32_t num_depths, int32_t feature_w, int32_t feature_h, float* points);

// The geometry of a frustum given as LiDAR points (P, 3): sorted in the constructor; fill()
// writes indices (P,) and intervals (num_intervals(), 3) (sentinel included).
class BevPoolGeometry {
 public:
  BevPoolGeometry(sycl::queue& q, const float* points, size_t num_points, BevGrid grid);
  size_t num_intervals() const { return num_runs_ + 1; }
  void fill(int32_t* indices, int32_t* intervals);

 private:
  sycl::queue& q_;
  size_t num_points_;
  uint32_t outside_;
  size_t num_runs_ = 0;
  UsmArray<uint32_t> keys_;
  UsmArray<int32_t> order_;
  UsmArray<int32_t> flag_;
  UsmArray<int32_t> run_;
};

// depth: (D, fH, fW); context: (fH, fW, C); indices / intervals as above; out: (nz * C, nx, ny).
void bev_pool(sycl::queue& q, const float* depth, const float* context, int32_t num_channels,
              size_t feature_hw, const int32_t* indices, const int32_t* intervals,
              size_t num_intervals, const int32_t bev_dims[3], float* out);

}  // namespace v2x
