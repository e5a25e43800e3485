// CenterHead post-processing, part 1: heatmap peaks, top-k and box decoding of one task.
#pragma once

#include <cstddef>
#include <cstdint>

#include "bodies/centerhead_decode_body.hpp"
#include "usm_array.hpp"

namespace v2x {

// The maps of one task, all (channels, nx, ny) float32: heatmap (K, nx, ny) (logits when
// apply_sigmoid, else scores), reg (2), height (1), dim (3, log sizes), rot (2: sin, cos),
// vel (2) or nullptr.
struct CenterHeadMaps {
  const float* heatmap;
  const float* reg;
  const float* height;
  const float* dim;
  const float* rot;
  const float* vel;
};

// Decoding in two steps: the constructor finds and decodes the candidates (peaks above the score
// threshold, best max_num by score, ties by pixel index, then the centre-range filter); fill()
// writes them in descending score order.
class CenterHeadDecode {
 public:
  CenterHeadDecode(sycl::queue& q, const CenterHeadMaps& maps, const CenterHeadDecodeParams& p,
                   bool apply_sigmoid, int32_t max_num);
  size_t num_boxes() const { return num_boxes_; }
  int32_t box_dim() const { return box_dim_; }
  // boxes (n, 7 or 9), scores (n,), labels (n,) = class index + label_offset.
  void fill(float* boxes, float* scores, int32_t* labels, int32_t label_offset);

 private:
  sycl::queue& q_;
  int32_t box_dim_;
  size_t num_top_ = 0;
  size_t num_boxes_ = 0;
  UsmArray<float> boxes_;
  UsmArray<float> scores_;
  UsmArray<int32_t> labels_;
  UsmArray<int32_t> in_range_;
  UsmArray<int32_t> position_;
};

}  // namespace v2x
