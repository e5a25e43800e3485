// BEVPool-v2 and its geometry precompute: submits the bodies of bodies/bevpool_body.hpp.
#include "bevpool.hpp"

#include <cmath>

#include "radix_sort.hpp"
#include "scan.hpp"
#include "v2x_launch.hpp"

namespace v2x {

BevGrid make_bev_grid(const float xbound[3], const float ybound[3], const float zbound[3]) {
  BevGrid g{};
  const float* bounds[3] = {xbound, ybound, zbound};
  for (int j = 0; j < 3; ++j) {
    g.lower[j] = bounds[j][0];
    g.step[j] = bounds[j][2];
    g.dims[j] = static_cast<int32_t>(std::round((bounds[j][1] - bounds[j][0]) / bounds[j][2]));
  }
  return g;
}

void frustum_points(sycl::queue& q, const FrustumCamera& cam, const float* depths,
                    int32_t num_depths, int32_t feature_w, int32_t feature_h, float* points) {
  const size_t n = static_cast<size_t>(num_depths) * feature_w * feature_h;
  const FrustumCamera c = cam;
  V2X_FOR(q, n, frustum_point_body, feature_w, feature_h, depths, c, points);
  q.wait();
}

BevPoolGeometry::BevPoolGeometry(sycl::queue& q, const float* points, size_t n, BevGrid grid)
    : q_{q},
      num_points_{n},
      outside_{static_cast<uint32_t>(grid.dims[0]) * grid.dims[1] * grid.dims[2]},
      keys_(q, n),
      order_(q, n),
      flag_(q, n),
      run_(q, n) {
  uint32_t* keys = keys_.data();
  int32_t* order = order_.data();
  V2X_FOR(q, n, bev_rank_body, points, grid, keys, order);
  radix_sort_pairs(q, keys, order, n, bits_for(outside_));
  int32_t* flag = flag_.data();
  const uint32_t outside = outside_;
  V2X_FOR(q, n, bev_run_flag_body, keys, outside, flag);
  num_runs_ = static_cast<size_t>(exclusive_scan(q, flag, run_.data(), n));
}

void BevPoolGeometry::fill(int32_t* indices, int32_t* intervals) {
  sycl::queue& q = q_;
  const size_t n = num_points_;
  q.memcpy(indices, order_.data(), n * sizeof(int32_t));
  UsmArray<int32_t> valid_end_buf(q, 1);
  int32_t* valid_end = valid_end_buf.data();
  const uint32_t* keys = keys_.data();
  const uint32_t outside = outside_;
  q.fill(valid_end, int32_t{0}, 1);
  V2X_FOR(q, n, bev_valid_end_body, keys, n, outside, valid_end);
  const int32_t* flag = flag_.data();
  const int32_t* run = run_.data();
  V2X_FOR(q, n, bev_interval_start_body, keys, flag, run, intervals);
  const size_t runs = num_runs_;
  const int32_t total = static_cast<int32_t>(n);
  V2X_FOR(q, runs + 1, bev_interval_end_body, runs, valid_end, total, intervals);
  q.wait();
}

namespace {

template <int CB>
void submit_bev_pool(sycl::queue& q, const float* depth, const float* context,
                     int32_t num_channels, size_t feature_hw, const int32_t* indices,
                     const int32_t* intervals, size_t num_intervals, size_t plane, float* out) {
  const size_t work = num_intervals * static_cast<size_t>(num_channels / CB);
  V2X_FOR_T(q, work, bev_pool_body, (CB), depth, context, num_channels, feature_hw, indices,
            intervals, plane, out);
}

}  // namespace

void bev_pool(sycl::queue& q, const float* depth, const float* context, int32_t num_channels,
              size_t feature_hw, const int32_t* indices, const int32_t* intervals,
              size_t num_intervals, const int32_t bev_dims[3], float* out) {
  const size_t plane = static_cast<size_t>(bev_dims[0]) * static_cast<size_t>(bev_dims[1]);
  q.fill(out, 0.0f, plane * static_cast<size_t>(bev_dims[2]) * num_channels);
  // The widest channel block that divides C: CB accumulators the compiler keeps in registers.
  if (num_channels % 16 == 0) {
    submit_bev_pool<16>(q, depth, context, num_channels, feature_hw, indices, intervals,
                        num_intervals, plane, out);
  } else if (num_channels % 8 == 0) {
    submit_bev_pool<8>(q, depth, context, num_channels, feature_hw, indices, intervals,
                       num_intervals, plane, out);
  } else if (num_channels % 4 == 0) {
    submit_bev_pool<4>(q, depth, context, num_channels, feature_hw, indices, intervals,
                       num_intervals, plane, out);
  } else {
    submit_bev_pool<1>(q, depth, context, num_channels, feature_hw, indices, intervals,
                       num_intervals, plane, out);
  }
  q.wait();
}

}  // namespace v2x
