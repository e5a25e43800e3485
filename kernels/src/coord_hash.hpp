// Allocation and reset of the grid-cell hash table of bodies/coord_hash_body.hpp.
#pragma once

#include <cstddef>
#include <cstdint>

#include "bodies/coord_hash_body.hpp"
#include "usm_array.hpp"
#include "v2x_launch.hpp"

namespace v2x {

class CoordHashTable {
 public:
  // Room for `max_keys` distinct keys at a load factor of at most one half.
  CoordHashTable(sycl::queue& q, size_t max_keys)
      : capacity_{capacity_for(max_keys)}, entries_(q, 2 * capacity_) {
    int32_t* e = entries_.data();
    V2X_FOR(q, capacity_, coord_hash_clear_body, e);
  }

  CoordHash view() const { return CoordHash{entries_.data(), mask()}; }
  const int32_t* entries() const { return entries_.data(); }
  uint32_t mask() const { return static_cast<uint32_t>(capacity_ - 1); }
  size_t capacity() const { return capacity_; }

 private:
  static size_t capacity_for(size_t max_keys) {
    size_t c = 64;
    while (c < 2 * max_keys) c *= 2;
    return c;
  }
  size_t capacity_;
  UsmArray<int32_t> entries_;
};

}  // namespace v2x
