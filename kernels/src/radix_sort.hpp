// Stable radix sort of (uint32 key, int32 value) pairs on the device (bodies/radix_sort_body.hpp):
// every ordering our kernels produce (voxels, frustum ranks, output sites, scores) goes through it,
// so equal keys always keep their input order and results never depend on the thread count.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>

#include "bodies/radix_sort_body.hpp"
#include "scan.hpp"
#include "usm_array.hpp"
#include "v2x_launch.hpp"

namespace v2x {

// Sorts keys[0..n) ascending, carrying vals along, in place. Only the low `key_bits` bits of the
// keys are looked at (all of them must be zero above).
inline void radix_sort_pairs(sycl::queue& q, uint32_t* keys, int32_t* vals, size_t n,
                             int key_bits) {
  if (n < 2 || key_bits <= 0) return;
  const size_t tile = n / 256 > 2048 ? (n + 255) / 256 : 2048;
  const size_t num_tiles = (n + tile - 1) / tile;
  UsmArray<uint32_t> keys_tmp(q, n);
  UsmArray<int32_t> vals_tmp(q, n);
  UsmArray<int32_t> hist(q, kRadixBuckets * num_tiles);
  uint32_t* k_src = keys;
  int32_t* v_src = vals;
  uint32_t* k_dst = keys_tmp.data();
  int32_t* v_dst = vals_tmp.data();
  int32_t* h = hist.data();
  for (int shift = 0; shift < key_bits; shift += kRadixBits) {
    const uint32_t* kin = k_src;
    const int32_t* vin = v_src;
    uint32_t* kout = k_dst;
    int32_t* vout = v_dst;
    V2X_FOR(q, num_tiles, radix_histogram_body, kin, n, tile, num_tiles, shift, h);
    exclusive_scan(q, h, h, kRadixBuckets * num_tiles);
    V2X_FOR(q, num_tiles, radix_scatter_body, kin, vin, n, tile, num_tiles, shift, h, kout, vout);
    std::swap(k_src, k_dst);
    std::swap(v_src, v_dst);
  }
  if (k_src != keys) {
    q.memcpy(keys, k_src, n * sizeof(uint32_t));
    q.memcpy(vals, v_src, n * sizeof(int32_t));
  }
  q.wait();
}

// Number of bits needed to hold every value in [0, max_value].
inline int bits_for(uint64_t max_value) {
  int bits = 0;
  while (bits < 64 && (max_value >> bits) != 0) ++bits;
  return bits;
}

}  // namespace v2x
