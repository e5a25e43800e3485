// Per-class BEV NMS: submits the bodies of bodies/rotated_nms_body.hpp.
#include "rotated_nms.hpp"

#include <algorithm>

#include "bodies/rotated_nms_body.hpp"
#include "radix_sort.hpp"
#include "scan.hpp"
#include "usm_array.hpp"
#include "v2x_launch.hpp"

namespace v2x {

std::vector<int32_t> nms_bev(sycl::queue& q, const float* boxes, int32_t box_dim,
                             const float* scores, const int32_t* labels, int32_t max_label,
                             size_t n, NmsMode mode,
                             float iou_threshold, const float* radius, int32_t pre_max_size,
                             int32_t post_max_size) {
  std::vector<int32_t> result;
  if (n == 0 || pre_max_size <= 0 || post_max_size <= 0) return result;

  // Order: by class, then descending score, then index (two stable sorts).
  UsmArray<uint32_t> keys_buf(q, n);
  UsmArray<int32_t> order_buf(q, n);
  uint32_t* keys = keys_buf.data();
  int32_t* order = order_buf.data();
  V2X_FOR(q, n, nms_score_key_body, scores, keys, order);
  radix_sort_pairs(q, keys, order, n, 32);
  V2X_FOR(q, n, nms_label_key_body, order, labels, keys);
  std::vector<uint32_t> host_labels(n);
  radix_sort_pairs(q, keys, order, n, bits_for(static_cast<uint64_t>(max_label)));

  // Class segments, laid out on the host: there are only as many as classes.
  UsmArray<int32_t> flag_buf(q, n);
  int32_t* flag = flag_buf.data();
  V2X_FOR(q, n, nms_segment_flag_body, keys, flag);
  std::vector<int32_t> host_flag(n);
  q.memcpy(host_flag.data(), flag, n * sizeof(int32_t));
  q.memcpy(host_labels.data(), keys, n * sizeof(uint32_t));
  q.wait();
  std::vector<NmsSegment> segments;
  for (size_t t = 0; t < n; ++t) {
    if (host_flag[t] != 0) {
      segments.push_back(NmsSegment{static_cast<int32_t>(t), 0, 0,
                                    static_cast<int32_t>(host_labels[t])});
    }
  }
  int32_t rows = 0;
  int32_t longest = 0;
  for (size_t s = 0; s < segments.size(); ++s) {
    const int32_t end = s + 1 < segments.size() ? segments[s + 1].begin : static_cast<int32_t>(n);
    segments[s].length = std::min(end - segments[s].begin, pre_max_size);
    segments[s].row_offset = rows;
    rows += segments[s].length;
    longest = std::max(longest, segments[s].length);
  }
  const int32_t words = (longest + 63) / 64;
  std::vector<int32_t> host_row_segment(static_cast<size_t>(rows));
  for (size_t s = 0; s < segments.size(); ++s) {
    std::fill_n(host_row_segment.begin() + segments[s].row_offset, segments[s].length,
                static_cast<int32_t>(s));
  }
  UsmArray<NmsSegment> seg_buf(q, segments.size());
  UsmArray<int32_t> row_seg_buf(q, host_row_segment.size());
  q.memcpy(seg_buf.data(), segments.data(), segments.size() * sizeof(NmsSegment));
  q.memcpy(row_seg_buf.data(), host_row_segment.data(), host_row_segment.size() * sizeof(int32_t));

  const size_t mask_words = static_cast<size_t>(rows) * words;
  UsmArray<uint64_t> mask_buf(q, mask_words);
  uint64_t* mask = mask_buf.data();
  const NmsSegment* segs = seg_buf.data();
  const int32_t* row_segment = row_seg_buf.data();
  const int32_t m = static_cast<int32_t>(mode);
  V2X_FOR(q, mask_words, nms_mask_body, boxes, box_dim, order, segs, row_segment, words, m,
          iou_threshold, radius, mask);

  UsmArray<uint64_t> removed_buf(q, segments.size() * words);
  UsmArray<int32_t> keep_buf(q, n);
  uint64_t* removed = removed_buf.data();
  int32_t* keep = keep_buf.data();
  q.fill(removed, uint64_t{0}, segments.size() * words);
  q.fill(keep, int32_t{0}, n);
  V2X_FOR(q, segments.size(), nms_sweep_body, segs, order, mask, words, post_max_size, removed,
          keep);

  // Kept candidates in index order, then stably by descending score.
  int32_t* pos = flag;
  const size_t kept = static_cast<size_t>(exclusive_scan(q, keep, pos, n));
  UsmArray<uint32_t> kkeys(q, kept);
  UsmArray<int32_t> kvals(q, kept);
  uint32_t* kk = kkeys.data();
  int32_t* kv = kvals.data();
  V2X_FOR(q, n, nms_keep_compact_body, scores, keep, pos, kk, kv);
  radix_sort_pairs(q, kk, kv, kept, 32);
  result.resize(kept);
  q.memcpy(result.data(), kv, kept * sizeof(int32_t));
  q.wait();
  return result;
}

void bev_iou_pairs(sycl::queue& q, const float* a, const float* b, int32_t box_dim, size_t n,
                   float* out) {
  V2X_FOR(q, n, bev_iou_pair_body, a, b, box_dim, out);
  q.wait();
}

}  // namespace v2x
