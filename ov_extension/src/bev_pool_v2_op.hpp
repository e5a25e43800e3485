// BevPoolV2: camera depth x context features pooled into the BEV grid through precomputed
// geometry (guide §5.2.3), run by kernels/src/bevpool.cpp.
//
// Inputs: depth (1, D, fH, fW) f32 (softmax over D); feature (1, fH, fW, C) f32; indices (P,) i32,
// P = D * fH * fW; intervals (K + 1, 3) i32 rows (start, end, bev_rank) ending with the sentinel
// rank -1. Attribute bev_dims (nx, ny, nz). Output (1, nz * C, nx, ny) f32, channel z * C + c,
// rows along x (BEVFusion's layout).
#pragma once

#include <vector>

#include "openvino/op/op.hpp"

namespace v2x_ov {

class BevPoolV2 : public ov::op::Op {
 public:
  OPENVINO_OP("BevPoolV2", "v2xfusion");

  BevPoolV2() = default;
  BevPoolV2(const ov::OutputVector& args, std::vector<int64_t> bev_dims);

  void validate_and_infer_types() override;
  std::shared_ptr<ov::Node> clone_with_new_inputs(const ov::OutputVector& new_args) const override;
  bool visit_attributes(ov::AttributeVisitor& visitor) override;
  bool evaluate(ov::TensorVector& outputs, const ov::TensorVector& inputs) const override;
  bool has_evaluate() const override { return true; }

 private:
  std::vector<int64_t> bev_dims_;
};

}  // namespace v2x_ov
