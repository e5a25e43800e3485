// BevPoolV2 custom op: shape inference, attribute mapping and the CPU evaluate over v2x::bev_pool.
#include "bev_pool_v2_op.hpp"

#include <string>

#include "bevpool.hpp"
#include "kernel_queue.hpp"

namespace v2x_ov {

BevPoolV2::BevPoolV2(const ov::OutputVector& args, std::vector<int64_t> bev_dims)
    : ov::op::Op(args), bev_dims_(std::move(bev_dims)) {
  constructor_validate_and_infer_types();
}

void BevPoolV2::validate_and_infer_types() {
  OPENVINO_ASSERT(get_input_size() == 4, "BevPoolV2: expects 4 inputs (depth, feature, indices, intervals), got ",
                  get_input_size());
  check_three(bev_dims_, "BevPoolV2", "bev_dims");
  for (size_t i = 0; i < 2; ++i) {
    OPENVINO_ASSERT(get_input_element_type(i).is_dynamic() || get_input_element_type(i) == ov::element::f32,
                    "BevPoolV2: input ", i, " must be f32, got ", get_input_element_type(i));
  }
  for (size_t i = 2; i < 4; ++i) {
    OPENVINO_ASSERT(get_input_element_type(i).is_dynamic() || get_input_element_type(i) == ov::element::i32,
                    "BevPoolV2: input ", i, " (", i == 2 ? "indices" : "intervals", ") must be i32, got ",
                    get_input_element_type(i));
  }
  const ov::Dimension channels = dim_or_dynamic(get_input_partial_shape(1), 3);
  const ov::Dimension out_channels = channels.is_static()
                                         ? ov::Dimension(channels.get_length() * bev_dims_[2])
                                         : ov::Dimension::dynamic();
  set_output_type(0, ov::element::f32, ov::PartialShape{1, out_channels, bev_dims_[0], bev_dims_[1]});
}

std::shared_ptr<ov::Node> BevPoolV2::clone_with_new_inputs(const ov::OutputVector& new_args) const {
  return std::make_shared<BevPoolV2>(new_args, bev_dims_);
}

bool BevPoolV2::visit_attributes(ov::AttributeVisitor& visitor) {
  visitor.on_attribute("bev_dims", bev_dims_);
  return true;
}

bool BevPoolV2::evaluate(ov::TensorVector& outputs, const ov::TensorVector& inputs) const {
  const ov::Shape& depth_shape = inputs[0].get_shape();
  const ov::Shape& feature_shape = inputs[1].get_shape();
  OPENVINO_ASSERT(depth_shape.size() == 4 && depth_shape[0] == 1,
                  "BevPoolV2: depth must be (1, D, fH, fW), got ", depth_shape);
  OPENVINO_ASSERT(feature_shape.size() == 4 && feature_shape[0] == 1 && feature_shape[1] == depth_shape[2] &&
                      feature_shape[2] == depth_shape[3],
                  "BevPoolV2: feature must be (1, fH, fW, C) matching depth ", depth_shape, ", got ",
                  feature_shape);
  const size_t points = depth_shape[1] * depth_shape[2] * depth_shape[3];
  const size_t num_indices = inputs[2].get_size();
  const ov::Shape& interval_shape = inputs[3].get_shape();
  OPENVINO_ASSERT(interval_shape.size() == 2 && interval_shape[1] == 3 && interval_shape[0] >= 1,
                  "BevPoolV2: intervals must be (K + 1, 3), got ", interval_shape);
  const int32_t* indices = inputs[2].data<const int32_t>();
  const int32_t* intervals = inputs[3].data<const int32_t>();
  const size_t num_intervals = interval_shape[0];
  // Geometry comes from a file beside the model: a wrong one must fail here, not read out of bounds.
  for (size_t j = 0; j < num_indices; ++j) {
    OPENVINO_ASSERT(indices[j] >= 0 && static_cast<size_t>(indices[j]) < points, "BevPoolV2: indices[", j,
                    "] = ", indices[j], " is not a frustum point (D * fH * fW = ", points,
                    "): the geometry does not belong to this model");
  }
  const int64_t cells = bev_dims_[0] * bev_dims_[1] * bev_dims_[2];
  OPENVINO_ASSERT(intervals[3 * (num_intervals - 1) + 2] == -1,
                  "BevPoolV2: the last interval must be the sentinel with rank -1");
  for (size_t r = 0; r < num_intervals; ++r) {
    const int32_t start = intervals[3 * r], end = intervals[3 * r + 1], rank = intervals[3 * r + 2];
    OPENVINO_ASSERT(start >= 0 && start <= end && static_cast<size_t>(end) <= num_indices,
                    "BevPoolV2: interval ", r, " (", start, ", ", end, ") is not a range of indices");
    OPENVINO_ASSERT(rank < cells && (rank >= 0 || (rank == -1 && r + 1 == num_intervals)),
                    "BevPoolV2: interval ", r, " has rank ", rank, " outside the BEV grid of ", cells,
                    " cells");
  }
  const size_t channels = feature_shape[3];
  outputs[0].set_shape(ov::Shape{1, channels * static_cast<size_t>(bev_dims_[2]),
                                  static_cast<size_t>(bev_dims_[0]), static_cast<size_t>(bev_dims_[1])});
  const int32_t dims[3] = {static_cast<int32_t>(bev_dims_[0]), static_cast<int32_t>(bev_dims_[1]),
                           static_cast<int32_t>(bev_dims_[2])};
  v2x::bev_pool(kernel_queue(), inputs[0].data<const float>(), inputs[1].data<const float>(),
                static_cast<int32_t>(channels), depth_shape[2] * depth_shape[3], indices, intervals,
                num_intervals, dims, outputs[0].data<float>());
  return true;
}

}  // namespace v2x_ov
