// CenterHead decoding: submits the bodies of bodies/centerhead_decode_body.hpp.
#include "centerhead_decode.hpp"

#include "radix_sort.hpp"
#include "scan.hpp"
#include "v2x_launch.hpp"

namespace v2x {

CenterHeadDecode::CenterHeadDecode(sycl::queue& q, const CenterHeadMaps& maps,
                                   const CenterHeadDecodeParams& params, bool apply_sigmoid,
                                   int32_t max_num)
    : q_{q},
      box_dim_{params.has_velocity != 0 ? 9 : 7},
      boxes_(q, 0),
      scores_(q, 0),
      labels_(q, 0),
      in_range_(q, 0),
      position_(q, 0) {
  const CenterHeadDecodeParams p = params;
  const size_t n = static_cast<size_t>(p.num_classes) * p.nx * p.ny;
  if (n == 0 || max_num <= 0) return;
  UsmArray<float> sig(q, apply_sigmoid ? n : 0);
  const float* scores = maps.heatmap;
  if (apply_sigmoid) {
    float* s = sig.data();
    const float* logits = maps.heatmap;
    V2X_FOR(q, n, heatmap_sigmoid_body, logits, s);
    scores = s;
  }
  UsmArray<int32_t> flag_buf(q, n);
  UsmArray<int32_t> pos_buf(q, n);
  int32_t* flag = flag_buf.data();
  int32_t* pos = pos_buf.data();
  V2X_FOR(q, n, heatmap_peak_flag_body, scores, p, flag);
  const size_t count = static_cast<size_t>(exclusive_scan(q, flag, pos, n));
  UsmArray<uint32_t> keys(q, count);
  UsmArray<int32_t> pixels(q, count);
  uint32_t* k = keys.data();
  int32_t* px = pixels.data();
  V2X_FOR(q, n, heatmap_candidate_body, scores, flag, pos, k, px);
  radix_sort_pairs(q, k, px, count, 32);

  num_top_ = count < static_cast<size_t>(max_num) ? count : static_cast<size_t>(max_num);
  boxes_ = UsmArray<float>(q, num_top_ * box_dim_);
  scores_ = UsmArray<float>(q, num_top_);
  labels_ = UsmArray<int32_t>(q, num_top_);
  in_range_ = UsmArray<int32_t>(q, num_top_);
  position_ = UsmArray<int32_t>(q, num_top_);
  float* b = boxes_.data();
  float* bs = scores_.data();
  int32_t* lab = labels_.data();
  int32_t* inr = in_range_.data();
  const CenterHeadMaps m = maps;
  const float* reg = m.reg;
  const float* height = m.height;
  const float* dim = m.dim;
  const float* rot = m.rot;
  const float* vel = m.vel;
  V2X_FOR(q, num_top_, centerhead_box_body, px, scores, reg, height, dim, rot, vel, p, b, bs, lab,
          inr);
  num_boxes_ = static_cast<size_t>(exclusive_scan(q, inr, position_.data(), num_top_));
  q.wait();
}

void CenterHeadDecode::fill(float* boxes, float* scores, int32_t* labels, int32_t label_offset) {
  if (num_top_ == 0) return;
  const float* b = boxes_.data();
  const float* bs = scores_.data();
  const int32_t* lab = labels_.data();
  const int32_t* inr = in_range_.data();
  const int32_t* pos = position_.data();
  const int32_t dim = box_dim_;
  V2X_FOR(q_, num_top_, centerhead_compact_body, b, bs, lab, inr, pos, dim, label_offset, boxes,
          scores, labels);
  q_.wait();
}

}  // namespace v2x
