// SparseConvolution custom op: attribute checks, shape inference, a rulebook cache keyed by
// indice_key, and the CPU evaluate over v2x::ConvRulebook + v2x::sparse_conv.
#include "sparse_convolution_op.hpp"

#include <algorithm>
#include <cstring>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "kernel_queue.hpp"
#include "sparse_conv.hpp"

namespace v2x_ov {

namespace {

// SubM convs of one level share their input sites; building the rulebook once per frame and level
// instead of once per conv is what spconv's indice_key does. A cached rulebook is reused only when
// the key, the geometry and every input site are equal, so a stale entry can never be used.
struct CachedRulebook {
  std::vector<int32_t> coors;
  v2x::ConvGeometry geometry{};
  bool subm = false;
  std::shared_ptr<const v2x::ConvRulebook> rulebook;
};

std::mutex cache_mutex;
// Never destroyed: its rulebooks free their buffers through kernel_queue(), and static destructors at
// process exit would run in an order that may have destroyed the queue first.
std::unordered_map<std::string, CachedRulebook>& rulebook_cache() {
  static auto* cache = new std::unordered_map<std::string, CachedRulebook>();
  return *cache;
}

bool same_geometry(const v2x::ConvGeometry& a, const v2x::ConvGeometry& b) {
  return std::memcmp(&a, &b, sizeof(v2x::ConvGeometry)) == 0;
}

std::shared_ptr<const v2x::ConvRulebook> find_or_build(const std::string& key, const int32_t* coors, size_t n,
                                                        int32_t batch_size, const v2x::ConvGeometry& g,
                                                        bool subm) {
  {
    std::lock_guard<std::mutex> lock(cache_mutex);
    auto it = rulebook_cache().find(key);
    if (it != rulebook_cache().end() && it->second.subm == subm && same_geometry(it->second.geometry, g) &&
        it->second.coors.size() == 4 * n &&
        std::memcmp(it->second.coors.data(), coors, 4 * n * sizeof(int32_t)) == 0) {
      return it->second.rulebook;
    }
  }
  auto rulebook = std::make_shared<const v2x::ConvRulebook>(kernel_queue(), coors, n, batch_size, g, subm);
  std::lock_guard<std::mutex> lock(cache_mutex);
  CachedRulebook& entry = rulebook_cache()[key];
  entry.coors.assign(coors, coors + 4 * n);
  entry.geometry = g;
  entry.subm = subm;
  entry.rulebook = rulebook;
  return rulebook;
}

}  // namespace

void SparseConvolution::validate_and_infer_types() {
  OPENVINO_ASSERT(get_input_size() == 4,
                  "SparseConvolution: expects 4 inputs (features, indices, weight, bias), got ", get_input_size());
  for (const auto* attr : {&kernel_size_, &stride_, &padding_, &dilation_, &in_spatial_shape_}) {
    check_three(*attr, "SparseConvolution", "kernel_size / stride / padding / dilation / in_spatial_shape");
  }
  OPENVINO_ASSERT(activation_ == "relu" || activation_ == "none",
                  "SparseConvolution: activation must be 'relu' or 'none', got '", activation_, "'");
  for (int d = 0; d < 3; ++d) {
    OPENVINO_ASSERT(kernel_size_[d] > 0 && stride_[d] > 0 && dilation_[d] > 0 && padding_[d] >= 0 &&
                        in_spatial_shape_[d] > 0,
                    "SparseConvolution ", indice_key_, ": kernel, stride, dilation and shape must be > 0");
    if (subm_) {
      OPENVINO_ASSERT(stride_[d] == 1 && kernel_size_[d] % 2 == 1 &&
                          padding_[d] == kernel_size_[d] / 2 * dilation_[d],
                      "SparseConvolution ", indice_key_,
                      ": a SubM conv needs stride 1, an odd kernel and padding kernel_size // 2 * dilation");
    }
  }
  const ov::Dimension sites = dim_or_dynamic(get_input_partial_shape(0), 0);
  const ov::Dimension out_channels = dim_or_dynamic(get_input_partial_shape(2), 0);
  const ov::Dimension out_sites = subm_ ? sites : ov::Dimension::dynamic();
  set_output_size(subm_ ? 1 : 2);
  set_output_type(0, ov::element::f32, ov::PartialShape{out_sites, out_channels});
  if (!subm_) set_output_type(1, ov::element::i32, ov::PartialShape{out_sites, 4});
}

std::shared_ptr<ov::Node> SparseConvolution::clone_with_new_inputs(const ov::OutputVector& new_args) const {
  auto node = std::make_shared<SparseConvolution>();
  node->kernel_size_ = kernel_size_;
  node->stride_ = stride_;
  node->padding_ = padding_;
  node->dilation_ = dilation_;
  node->in_spatial_shape_ = in_spatial_shape_;
  node->subm_ = subm_;
  node->indice_key_ = indice_key_;
  node->activation_ = activation_;
  node->set_arguments(new_args);
  node->constructor_validate_and_infer_types();
  return node;
}

bool SparseConvolution::visit_attributes(ov::AttributeVisitor& visitor) {
  visitor.on_attribute("kernel_size", kernel_size_);
  visitor.on_attribute("stride", stride_);
  visitor.on_attribute("padding", padding_);
  visitor.on_attribute("dilation", dilation_);
  visitor.on_attribute("in_spatial_shape", in_spatial_shape_);
  visitor.on_attribute("subm", subm_);
  visitor.on_attribute("indice_key", indice_key_);
  visitor.on_attribute("activation", activation_);
  return true;
}

bool SparseConvolution::evaluate(ov::TensorVector& outputs, const ov::TensorVector& inputs) const {
  const ov::Shape& feature_shape = inputs[0].get_shape();
  const ov::Shape& index_shape = inputs[1].get_shape();
  const ov::Shape& weight_shape = inputs[2].get_shape();
  OPENVINO_ASSERT(feature_shape.size() == 2, "SparseConvolution ", indice_key_, ": features must be (N, Cin), got ",
                  feature_shape);
  const size_t n = feature_shape[0];
  const size_t cin = feature_shape[1];
  OPENVINO_ASSERT(index_shape == ov::Shape({n, 4}), "SparseConvolution ", indice_key_, ": indices must be (",
                  n, ", 4), got ", index_shape);
  OPENVINO_ASSERT(weight_shape.size() == 5 && static_cast<int64_t>(weight_shape[1]) == kernel_size_[0] &&
                      static_cast<int64_t>(weight_shape[2]) == kernel_size_[1] &&
                      static_cast<int64_t>(weight_shape[3]) == kernel_size_[2] && weight_shape[4] == cin,
                  "SparseConvolution ", indice_key_, ": weight must be (Cout, kz, ky, kx, ", cin, "), got ",
                  weight_shape);
  const size_t cout = weight_shape[0];
  OPENVINO_ASSERT(inputs[3].get_size() == cout, "SparseConvolution ", indice_key_, ": bias must have ", cout,
                  " values");

  v2x::ConvGeometry g{};
  g.kernel_volume = 1;
  for (int d = 0; d < 3; ++d) {
    g.in_dims[d] = static_cast<int32_t>(in_spatial_shape_[d]);
    g.kernel[d] = static_cast<int32_t>(kernel_size_[d]);
    g.stride[d] = static_cast<int32_t>(stride_[d]);
    g.padding[d] = static_cast<int32_t>(padding_[d]);
    g.dilation[d] = static_cast<int32_t>(dilation_[d]);
    g.out_dims[d] = subm_ ? g.in_dims[d]
                          : (g.in_dims[d] + 2 * g.padding[d] - g.dilation[d] * (g.kernel[d] - 1) - 1) / g.stride[d] + 1;
    g.kernel_volume *= g.kernel[d];
  }
  const int32_t* coors = inputs[1].data<const int32_t>();
  int32_t batch_size = 1;
  // Sites come from the voxelizer outside the model: one outside the grid would index past the
  // hash tables, so it is refused here.
  for (size_t i = 0; i < n; ++i) {
    OPENVINO_ASSERT(coors[4 * i] >= 0, "SparseConvolution ", indice_key_, ": negative batch index in row ", i);
    batch_size = std::max(batch_size, coors[4 * i] + 1);
    for (int d = 0; d < 3; ++d) {
      OPENVINO_ASSERT(coors[4 * i + 1 + d] >= 0 && coors[4 * i + 1 + d] < g.in_dims[d], "SparseConvolution ",
                      indice_key_, ": site ", i, " lies outside in_spatial_shape (z, y, x) = (", g.in_dims[0],
                      ", ", g.in_dims[1], ", ", g.in_dims[2], ")");
    }
  }
  const std::shared_ptr<const v2x::ConvRulebook> rulebook =
      find_or_build(indice_key_, coors, n, batch_size, g, subm_ != 0);
  const size_t m = rulebook->num_out();
  outputs[0].set_shape(ov::Shape{m, cout});
  v2x::sparse_conv(kernel_queue(), *rulebook, inputs[0].data<const float>(), static_cast<int32_t>(cin),
                   inputs[2].data<const float>(), inputs[3].data<const float>(), static_cast<int32_t>(cout),
                   activation_ == "relu", outputs[0].data<float>());
  if (!subm_) {
    outputs[1].set_shape(ov::Shape{m, 4});
    kernel_queue().memcpy(outputs[1].data<int32_t>(), rulebook->out_coors(), 4 * m * sizeof(int32_t)).wait();
  }
  return true;
}

}  // namespace v2x_ov
