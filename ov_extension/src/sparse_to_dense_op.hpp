// SparseToDense: the SparseEncoder's last sparse features written into the dense BEV map (guide
// §5.1), run by kernels/src/sparse_conv.cpp's sparse_to_dense.
//
// Inputs: features (M, C) f32; indices (M, 4) i32 (0, z, y, x), one frame. Attribute spatial_shape
// (Z, Y, X). Output (1, C * Z, X, Y) f32: BEVFusion's BEV layout (rows along x), channel c * Z + z,
// exactly what the PyTorch SparseEncoder returns, so no dense transpose follows the op.
#pragma once

#include <vector>

#include "openvino/op/op.hpp"

namespace v2x_ov {

class SparseToDense : public ov::op::Op {
 public:
  OPENVINO_OP("SparseToDense", "v2xfusion");

  SparseToDense() = default;
  SparseToDense(const ov::OutputVector& args, std::vector<int64_t> spatial_shape);

  void validate_and_infer_types() override;
  std::shared_ptr<ov::Node> clone_with_new_inputs(const ov::OutputVector& new_args) const override;
  bool visit_attributes(ov::AttributeVisitor& visitor) override;
  bool evaluate(ov::TensorVector& outputs, const ov::TensorVector& inputs) const override;
  bool has_evaluate() const override { return true; }

 private:
  std::vector<int64_t> spatial_shape_;
};

}  // namespace v2x_ov
