// Bodies of the exclusive prefix sum over int32 (three passes: block sums, a scan of the block
// sums, block-local scans). Integer sums, so the result is exact and independent of blocking.
#pragma once

#include <cstddef>
#include <cstdint>

#include "device_math.hpp"

namespace v2x {

// Work-item b: sums[b] = in[b*block ... min(n, (b+1)*block)).
V2X_BODY void scan_block_sum_body(size_t b, const int32_t* in, size_t n, size_t block,
                                  int32_t* sums) {
  const size_t begin = b * block;
  const size_t end = begin + block < n ? begin + block : n;
  int32_t s = 0;
  for (size_t j = begin; j < end; ++j) s += in[j];
  sums[b] = s;
}

// Single work-item: sums[0 .. num_blocks) becomes its exclusive scan, sums[num_blocks] the total.
V2X_BODY void scan_block_offsets_body(int32_t* sums, size_t num_blocks) {
  int32_t running = 0;
  for (size_t b = 0; b < num_blocks; ++b) {
    const int32_t v = sums[b];
    sums[b] = running;
    running += v;
  }
  sums[num_blocks] = running;
}

// Work-item b: out[j] = offset of block b + sum of in[begin .. j). `in` may equal `out`.
V2X_BODY void scan_block_apply_body(size_t b, const int32_t* in, int32_t* out, size_t n,
                                    size_t block, const int32_t* sums) {
  const size_t begin = b * block;
  const size_t end = begin + block < n ? begin + block : n;
  int32_t running = sums[b];
  for (size_t j = begin; j < end; ++j) {
    const int32_t v = in[j];
    out[j] = running;
    running += v;
  }
}

}  // namespace v2x
