// Exclusive prefix sum of int32 on the device (bodies/scan_body.hpp): compaction and offsets.
#pragma once

#include <cstddef>
#include <cstdint>

#include "bodies/scan_body.hpp"
#include "usm_array.hpp"
#include "v2x_launch.hpp"

namespace v2x {

// The exclusive scan of in[0..n) when the sums of its blocks of `block` elements are already in
// sums[0 .. num_blocks) (a kernel that produced `in` counted them): sums becomes the block offsets
// plus the total at sums[num_blocks], out[j] = in[0] + ... + in[j-1]; returns the total.
inline int32_t exclusive_scan_from_block_sums(sycl::queue& q, const int32_t* in, int32_t* out,
                                              size_t n, size_t block, int32_t* sums) {
  const size_t num_blocks = n == 0 ? 0 : (n + block - 1) / block;
  V2X_SINGLE(q, scan_block_offsets_body, sums, num_blocks);
  V2X_FOR(q, num_blocks, scan_block_apply_body, in, out, n, block, sums);
  int32_t total = 0;
  q.memcpy(&total, sums + num_blocks, sizeof(int32_t)).wait();
  return total;
}

// out[j] = in[0] + ... + in[j-1]; returns the total. `in` may equal `out`.
inline int32_t exclusive_scan(sycl::queue& q, const int32_t* in, int32_t* out, size_t n) {
  constexpr size_t kBlock = 8192;
  const size_t num_blocks = n == 0 ? 0 : (n + kBlock - 1) / kBlock;
  UsmArray<int32_t> sums(q, num_blocks + 1);
  int32_t* s = sums.data();
  V2X_FOR(q, num_blocks, scan_block_sum_body, in, n, kBlock, s);
  return exclusive_scan_from_block_sums(q, in, out, n, kBlock, s);
}

}  // namespace v2x
