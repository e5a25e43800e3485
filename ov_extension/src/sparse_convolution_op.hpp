// SparseConvolution: one SubMConv3d or strided SparseConv3d of the SparseEncoder with BatchNorm
// folded into weight and bias and an optional ReLU (guide §5.1), run by kernels/src/sparse_conv.cpp.
//
// Inputs: features (N, Cin) f32; indices (N, 4) i32 (batch, z, y, x); weight (Cout, kz, ky, kx, Cin)
// f32 (spconv 2.x layout); bias (Cout,) f32. Attributes, per axis in (z, y, x) order: kernel_size,
// stride, padding, dilation, in_spatial_shape; subm (0 / 1); indice_key (convs with the same key and
// the same input sites share one rulebook, as spconv's indice_key); activation ("relu" | "none").
// Outputs: features (M, Cout) f32; a strided conv (subm 0) also outputs its sites (M, 4) i32, sorted
// by (batch, z, y, x). A SubM conv keeps its input sites (M = N, same order).
#pragma once

#include <string>
#include <vector>

#include "openvino/op/op.hpp"

namespace v2x_ov {

class SparseConvolution : public ov::op::Op {
 public:
  OPENVINO_OP("SparseConvolution", "v2xfusion");

  SparseConvolution() = default;

  void validate_and_infer_types() override;
  std::shared_ptr<ov::Node> clone_with_new_inputs(const ov::OutputVector& new_args) const override;
  bool visit_attributes(ov::AttributeVisitor& visitor) override;
  bool evaluate(ov::TensorVector& outputs, const ov::TensorVector& inputs) const override;
  bool has_evaluate() const override { return true; }

 private:
  std::vector<int64_t> kernel_size_;
  std::vector<int64_t> stride_;
  std::vector<int64_t> padding_;
  std::vector<int64_t> dilation_;
  std::vector<int64_t> in_spatial_shape_;
  int64_t subm_ = 0;
  std::string indice_key_;
  std::string activation_ = "none";
};

}  // namespace v2x_ov
