// The SYCL queue every custom op of the extension submits our kernels to, and the checks their
// evaluate() methods share.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "openvino/core/except.hpp"
#include "openvino/core/partial_shape.hpp"
#include "v2x_sycl.hpp"

namespace v2x_ov {

// One in-order queue for the library (the kernels' host backend runs submissions synchronously).
// Never destroyed, like the rulebook cache that frees through it: no exit-time destructor ordering.
inline sycl::queue& kernel_queue() {
  static auto* q = new sycl::queue(v2x::make_queue());
  return *q;
}

// Domain of the custom ONNX nodes and IR version string of the ops (v2xfusion_tools/export/custom_ops.py).
inline constexpr const char* kDomain = "v2xfusion";

// An attribute given as three ints (z, y, x) or (x, y, z), checked at conversion time.
inline void check_three(const std::vector<int64_t>& v, const char* op, const char* name) {
  OPENVINO_ASSERT(v.size() == 3, op, ": attribute ", name, " needs 3 values, got ", v.size());
}

inline ov::Dimension dim_or_dynamic(const ov::PartialShape& shape, int64_t axis) {
  if (shape.rank().is_static() && shape.rank().get_length() > axis) return shape[axis];
  return ov::Dimension::dynamic();
}

}  // namespace v2x_ov
