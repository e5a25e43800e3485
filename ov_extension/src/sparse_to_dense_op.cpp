// SparseToDense custom op: shape inference and the CPU evaluate over v2x::sparse_to_dense.
#include "sparse_to_dense_op.hpp"

#include "kernel_queue.hpp"
#include "sparse_conv.hpp"

namespace v2x_ov {

SparseToDense::SparseToDense(const ov::OutputVector& args, std::vector<int64_t> spatial_shape)
    : ov::op::Op(args), spatial_shape_(std::move(spatial_shape)) {
  constructor_validate_and_infer_types();
}

void SparseToDense::validate_and_infer_types() {
  OPENVINO_ASSERT(get_input_size() == 2, "SparseToDense: expects 2 inputs (features, indices), got ",
                  get_input_size());
  check_three(spatial_shape_, "SparseToDense", "spatial_shape");
  const ov::Dimension channels = dim_or_dynamic(get_input_partial_shape(0), 1);
  const ov::Dimension out_channels = channels.is_static()
                                         ? ov::Dimension(channels.get_length() * spatial_shape_[0])
                                         : ov::Dimension::dynamic();
  set_output_type(0, ov::element::f32, ov::PartialShape{1, out_channels, spatial_shape_[2], spatial_shape_[1]});
}

std::shared_ptr<ov::Node> SparseToDense::clone_with_new_inputs(const ov::OutputVector& new_args) const {
  return std::make_shared<SparseToDense>(new_args, spatial_shape_);
}

bool SparseToDense::visit_attributes(ov::AttributeVisitor& visitor) {
  visitor.on_attribute("spatial_shape", spatial_shape_);
  return true;
}

bool SparseToDense::evaluate(ov::TensorVector& outputs, const ov::TensorVector& inputs) const {
  const ov::Shape& feature_shape = inputs[0].get_shape();
  OPENVINO_ASSERT(feature_shape.size() == 2, "SparseToDense: features must be (M, C), got ", feature_shape);
  const size_t m = feature_shape[0];
  const size_t channels = feature_shape[1];
  OPENVINO_ASSERT(inputs[1].get_shape() == ov::Shape({m, 4}), "SparseToDense: indices must be (", m,
                  ", 4), got ", inputs[1].get_shape());
  const int32_t z_dim = static_cast<int32_t>(spatial_shape_[0]);
  const int32_t y_dim = static_cast<int32_t>(spatial_shape_[1]);
  const int32_t x_dim = static_cast<int32_t>(spatial_shape_[2]);
  // (0, z, y, x) -> (0, z, x, y): the kernel's (C, D, H, W) output over dims (Z, X, Y) is then
  // (C * Z, X, Y), the BEV layout, with no transpose of the dense map.
  const int32_t* coors = inputs[1].data<const int32_t>();
  std::vector<int32_t> swapped(4 * m);
  for (size_t i = 0; i < m; ++i) {
    const int32_t* c = coors + 4 * i;
    OPENVINO_ASSERT(c[0] == 0, "SparseToDense: batch index must be 0 (one frame), row ", i, " has ", c[0]);
    OPENVINO_ASSERT(c[1] >= 0 && c[1] < z_dim && c[2] >= 0 && c[2] < y_dim && c[3] >= 0 && c[3] < x_dim,
                    "SparseToDense: site ", i, " lies outside spatial_shape (z, y, x) = (", z_dim, ", ", y_dim,
                    ", ", x_dim, ")");
    swapped[4 * i] = 0;
    swapped[4 * i + 1] = c[1];
    swapped[4 * i + 2] = c[3];
    swapped[4 * i + 3] = c[2];
  }
  outputs[0].set_shape(ov::Shape{1, channels * static_cast<size_t>(z_dim), static_cast<size_t>(x_dim),
                                 static_cast<size_t>(y_dim)});
  const int32_t dims[3] = {z_dim, x_dim, y_dim};
  v2x::sparse_to_dense(kernel_queue(), inputs[0].data<const float>(), swapped.data(), m,
                       static_cast<int32_t>(channels), dims, outputs[0].data<float>());
  return true;
}

}  // namespace v2x_ov
