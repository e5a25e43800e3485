// An open-addressing hash table from a non-negative int32 key (a linear grid-cell index) to the
// smallest int32 value inserted with it. Inserts from many work-items at once are safe; the slot
// a key lands in may depend on timing, but key -> min(value) never does, which is all callers read.
//
// Entries are (key, value) int32 pairs side by side, so a probe touches one cache line, and keys
// that differ only in their low 3 bits (neighbouring x cells) start in the same 64-byte line.
#pragma once

#include <cstdint>

#include "device_math.hpp"

namespace v2x {

constexpr int32_t kEmptyKey = -1;
constexpr int32_t kNoValue = 0x7fffffff;

// entries[2 s] = key of slot s (kEmptyKey when free), entries[2 s + 1] = its value (kNoValue
// until set). Capacity = mask + 1, a power of two >= 8 and at least twice the distinct keys, so
// probing always ends.
struct CoordHash {
  int32_t* entries;
  uint32_t mask;
};

V2X_BODY uint32_t coord_hash_start(int32_t key, uint32_t mask) {
  uint32_t h = (static_cast<uint32_t>(key) >> 3) * 0x9E3779B1u;
  h ^= h >> 15;
  return ((h << 3) | (static_cast<uint32_t>(key) & 7u)) & mask;
}

// Work-item s: slot s emptied.
V2X_BODY void coord_hash_clear_body(size_t s, int32_t* entries) {
  entries[2 * s] = kEmptyKey;
  entries[2 * s + 1] = kNoValue;
}

// Inserts (key, value), keeping the minimum value per key; returns the key's slot.
V2X_BODY uint32_t coord_hash_insert_min(CoordHash table, int32_t key, int32_t value) {
  uint32_t slot = coord_hash_start(key, table.mask);
  for (;;) {
    int32_t* entry = table.entries + 2 * static_cast<size_t>(slot);
    device_atomic<int32_t> key_ref(entry[0]);
    int32_t current = key_ref.load();
    if (current == kEmptyKey) {
      key_ref.compare_exchange_strong(current, key);
      // on failure `current` now holds the key another work-item put there
      if (current == kEmptyKey) current = key;
    }
    if (current == key) {
      device_atomic<int32_t> v(entry[1]);
      if (value < v.load()) v.fetch_min(value);
      return slot;
    }
    slot = (slot + 1u) & table.mask;
  }
}

// The value stored for `key`, or -1 when the key is absent. Only after all inserts have finished.
V2X_BODY int32_t coord_hash_lookup(const int32_t* entries, uint32_t mask, int32_t key) {
  uint32_t slot = coord_hash_start(key, mask);
  for (;;) {
    const int32_t k = entries[2 * static_cast<size_t>(slot)];
    if (k == key) return entries[2 * static_cast<size_t>(slot) + 1];
    if (k == kEmptyKey) return -1;
    slot = (slot + 1u) & mask;
  }
}

}  // namespace v2x
