// CenterHead post-processing, part 2: per-class NMS in bird's-eye view, rotated-IoU or circle.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "v2x_sycl.hpp"

namespace v2x {

enum class NmsMode : int32_t { kRotatedIou = 0, kCircle = 1 };

// boxes (n, box_dim >= 7) as (x, y, z, dx, dy, dz, yaw, ...); scores (n,); labels (n,) in
// [0, max_label].
// Per class: candidates in descending score (ties: lower index first), the first pre_max_size
// of them, greedy suppression (rotated: BEV IoU > iou_threshold; circle: centre distance <=
// radius[label]), at most post_max_size kept. Returns the kept indices of all classes in
// descending score (ties: lower index first).
std::vector<int32_t> nms_bev(sycl::queue& q, const float* boxes, int32_t box_dim,
                             const float* scores, const int32_t* labels, int32_t max_label,
                             size_t n, NmsMode mode,
                             float iou_threshold, const float* radius, int32_t pre_max_size,
                             int32_t post_max_size);

// Rotated BEV IoU of box pairs (a[i], b[i]) (the IoU the NMS uses), out (n,).
void bev_iou_pairs(sycl::queue& q, const float* a, const float* b, int32_t box_dim, size_t n,
                   float* out);

}  // namespace v2x
