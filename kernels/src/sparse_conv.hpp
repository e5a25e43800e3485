// Sparse 3-D convolution of Pipeline B (SubMConv3d, strided SparseConv3d, SparseToDense) with
// spconv 2.x semantics and weight layout.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "bodies/sparse_conv_body.hpp"
#include "usm_array.hpp"

namespace v2x {

// Output sites and who feeds them for one convolution. SubM: the output sites are the input sites
// in input order. Strided / regular: every site some input reaches, ordered by (batch, z, y, x).
class ConvRulebook {
 public:
  // coors: (N, 4) (batch, z, y, x), each inside geometry.in_dims, batch in [0, batch_size).
  ConvRulebook(sycl::queue& q, const int32_t* coors, size_t num_in, int32_t batch_size,
               ConvGeometry geometry, bool subm);

  const ConvGeometry& geometry() const { return geometry_; }
  bool subm() const { return subm_; }
  size_t num_in() const { return num_in_; }
  size_t num_out() const { return num_out_; }
  const int32_t* out_coors() const { return out_coors_.data(); }      // (M, 4)
  const int32_t* neighbors() const { return neighbors_.data(); }      // (M, kernel_volume)
  const int32_t* pair_in() const { return pair_in_.data(); }          // (pairs,)
  const int32_t* pair_out() const { return pair_out_.data(); }        // (pairs,)
  const std::vector<int32_t>& pair_offsets() const { return pair_offsets_; }  // (kvol + 1,)

 private:
  ConvGeometry geometry_;
  bool subm_;
  size_t num_in_;
  size_t num_out_ = 0;
  UsmArray<int32_t> out_coors_;
  UsmArray<int32_t> neighbors_;
  UsmArray<int32_t> pair_in_;
  UsmArray<int32_t> pair_out_;
  std::vector<int32_t> pair_offsets_;
};

// out (M, Cout) = act(sum_k gather(in, k) . W_k + bias): weight (Cout, kd, kh, kw, Cin) as spconv
// 2.x stores it; bias (Cout,) or nullptr; relu applies max(x, 0).
void sparse_conv(sycl::queue& q, const ConvRulebook& rulebook, const float* in, int32_t cin,
                 const float* weight, const float* bias, int32_t cout, bool relu, float* out);

// dense (C, D, H, W) from features (N, C) at coors (N, 4) (0, z, y, x); zero elsewhere.
void sparse_to_dense(sycl::queue& q, const float* features, const int32_t* coors, size_t num,
                     int32_t num_channels, const int32_t dims[3], float* dense);

}  // namespace v2x
