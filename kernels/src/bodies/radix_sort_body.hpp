// Bodies of a stable LSD radix sort of (uint32 key, int32 value) pairs, 8 bits per pass. Each
// work-item owns one tile of the input; counts are laid out digit-major (hist[digit * tiles +
// tile]) so one exclusive scan over them gives every tile its stable output offsets.
#pragma once

#include <cstddef>
#include <cstdint>

#include "device_math.hpp"

namespace v2x {

constexpr int kRadixBits = 8;
constexpr uint32_t kRadixBuckets = 1u << kRadixBits;

// Work-item t: histogram of the digit at `shift` over tile t (written, not accumulated).
V2X_BODY void radix_histogram_body(size_t t, const uint32_t* keys, size_t n, size_t tile,
                                   size_t num_tiles, int shift, int32_t* hist) {
  for (uint32_t d = 0; d < kRadixBuckets; ++d) hist[d * num_tiles + t] = 0;
  const size_t begin = t * tile;
  const size_t end = begin + tile < n ? begin + tile : n;
  for (size_t j = begin; j < end; ++j) {
    const uint32_t d = (keys[j] >> shift) & (kRadixBuckets - 1u);
    hist[d * num_tiles + t] += 1;
  }
}

// Work-item t: moves tile t's pairs to their places; `offsets` is the scanned histogram and is
// advanced in place (each tile touches only its own column).
V2X_BODY void radix_scatter_body(size_t t, const uint32_t* keys_in, const int32_t* vals_in,
                                 size_t n, size_t tile, size_t num_tiles, int shift,
                                 int32_t* offsets, uint32_t* keys_out, int32_t* vals_out) {
  const size_t begin = t * tile;
  const size_t end = begin + tile < n ? begin + tile : n;
  for (size_t j = begin; j < end; ++j) {
    const uint32_t k = keys_in[j];
    const uint32_t d = (k >> shift) & (kRadixBuckets - 1u);
    const int32_t pos = offsets[d * num_tiles + t];
    offsets[d * num_tiles + t] = pos + 1;
    keys_out[pos] = k;
    vals_out[pos] = vals_in[j];
  }
}

}  // namespace v2x
