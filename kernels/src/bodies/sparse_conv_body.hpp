// Per-work-item bodies of the sparse 3-D convolution of Pipeline B: rulebook construction
// (SubMConv3d and strided SparseConv3d), gather-GEMM-scatter with folded-BN bias and ReLU, and
// SparseToDense. Coordinates are (batch, z, y, x); kernel offsets are numbered
// k = (kz * kh + ky) * kw + kx, the order of spconv 2.x weights (Cout, kd, kh, kw, Cin).
#pragma once

#include <cstddef>
#include <cstdint>

#include "coord_hash_body.hpp"
#include "device_math.hpp"

namespace v2x {

// One convolution's index geometry, per axis in (z, y, x) order. Output site o reads input site
// o * stride - padding + k * dilation (cross-correlation, as torch and spconv).
struct ConvGeometry {
  int32_t in_dims[3];
  int32_t out_dims[3];
  int32_t kernel[3];
  int32_t stride[3];
  int32_t padding[3];
  int32_t dilation[3];
  int32_t kernel_volume;
};

V2X_BODY int32_t site_key(int32_t b, int32_t z, int32_t y, int32_t x, const int32_t dims[3]) {
  return ((b * dims[0] + z) * dims[1] + y) * dims[2] + x;
}

// Work-item i: input site i goes into the input hash (key -> smallest row with that site).
V2X_BODY void conv_input_insert_body(size_t i, const int32_t* coors, ConvGeometry g,
                                     CoordHash table) {
  const int32_t* c = coors + 4 * i;
  coord_hash_insert_min(table, site_key(c[0], c[1], c[2], c[3], g.in_dims),
                        static_cast<int32_t>(i));
}

// Work-item i: every output site that input i reaches through some kernel offset goes into the
// output hash. Offsets are walked as nested loops (no integer division per offset).
V2X_BODY void conv_output_candidate_body(size_t i, const int32_t* coors, ConvGeometry g,
                                         CoordHash table) {
  const int32_t* c = coors + 4 * i;
  for (int32_t kz = 0; kz < g.kernel[0]; ++kz) {
    const int32_t tz = c[1] + g.padding[0] - kz * g.dilation[0];
    if (tz < 0 || tz % g.stride[0] != 0 || tz / g.stride[0] >= g.out_dims[0]) continue;
    for (int32_t ky = 0; ky < g.kernel[1]; ++ky) {
      const int32_t ty = c[2] + g.padding[1] - ky * g.dilation[1];
      if (ty < 0 || ty % g.stride[1] != 0 || ty / g.stride[1] >= g.out_dims[1]) continue;
      for (int32_t kx = 0; kx < g.kernel[2]; ++kx) {
        const int32_t tx = c[3] + g.padding[2] - kx * g.dilation[2];
        if (tx < 0 || tx % g.stride[2] != 0 || tx / g.stride[2] >= g.out_dims[2]) continue;
        coord_hash_insert_min(table,
                              site_key(c[0], tz / g.stride[0], ty / g.stride[1], tx / g.stride[2],
                                       g.out_dims),
                              0);
      }
    }
  }
}

// Work-item s over hash slots: 1 for an occupied slot.
V2X_BODY void conv_slot_flag_body(size_t s, const int32_t* hash_entries, int32_t* flag) {
  flag[s] = hash_entries[2 * s] != kEmptyKey ? 1 : 0;
}

// Work-item s: occupied slot s's (key, s) goes to its compacted position.
V2X_BODY void conv_slot_compact_body(size_t s, const int32_t* hash_entries, const int32_t* position,
                                     uint32_t* out_keys, int32_t* out_slots) {
  const int32_t key = hash_entries[2 * s];
  if (key == kEmptyKey) return;
  out_keys[position[s]] = static_cast<uint32_t>(key);
  out_slots[position[s]] = static_cast<int32_t>(s);
}

// Work-item o over the sorted output sites: the hash slot of output o now holds o, its row.
V2X_BODY void conv_output_row_body(size_t o, const int32_t* sorted_slots, int32_t* hash_entries) {
  hash_entries[2 * static_cast<size_t>(sorted_slots[o]) + 1] = static_cast<int32_t>(o);
}

// Work-item i (strided / regular convolution): for every offset k through which input i reaches
// an output o, neighbors[o, k] = min(neighbors[o, k], i) (min: of duplicate input sites the first
// row counts, as the hash lookups of SubM give). neighbors starts all kNoValue.
V2X_BODY void conv_scatter_neighbor_body(size_t i, const int32_t* coors, ConvGeometry g,
                                         const int32_t* out_hash_entries, uint32_t out_hash_mask,
                                         int32_t* neighbors) {
  const int32_t* c = coors + 4 * i;
  int32_t k = 0;
  for (int32_t kz = 0; kz < g.kernel[0]; ++kz) {
    const int32_t tz = c[1] + g.padding[0] - kz * g.dilation[0];
    const bool z_ok = tz >= 0 && tz % g.stride[0] == 0 && tz / g.stride[0] < g.out_dims[0];
    for (int32_t ky = 0; ky < g.kernel[1]; ++ky) {
      const int32_t ty = c[2] + g.padding[1] - ky * g.dilation[1];
      const bool y_ok = z_ok && ty >= 0 && ty % g.stride[1] == 0 && ty / g.stride[1] < g.out_dims[1];
      for (int32_t kx = 0; kx < g.kernel[2]; ++kx, ++k) {
        const int32_t tx = c[3] + g.padding[2] - kx * g.dilation[2];
        if (!(y_ok && tx >= 0 && tx % g.stride[2] == 0 && tx / g.stride[2] < g.out_dims[2])) continue;
        const int32_t o = coord_hash_lookup(
            out_hash_entries, out_hash_mask,
            site_key(c[0], tz / g.stride[0], ty / g.stride[1], tx / g.stride[2], g.out_dims));
        device_atomic<int32_t>(neighbors[static_cast<size_t>(o) * g.kernel_volume + k])
            .fetch_min(static_cast<int32_t>(i));
      }
    }
  }
}

// Work-item j: an entry no input reached becomes -1.
V2X_BODY void conv_neighbor_missing_body(size_t j, int32_t* neighbors) {
  if (neighbors[j] == kNoValue) neighbors[j] = -1;
}

// Work-item o: coordinate (batch, z, y, x) of output site o from its sorted key.
V2X_BODY void conv_output_coord_body(size_t o, const uint32_t* keys, ConvGeometry g,
                                     int32_t* out_coors) {
  int32_t key = static_cast<int32_t>(keys[o]);
  out_coors[4 * o + 3] = key % g.out_dims[2];
  key /= g.out_dims[2];
  out_coors[4 * o + 2] = key % g.out_dims[1];
  key /= g.out_dims[1];
  out_coors[4 * o + 1] = key % g.out_dims[0];
  out_coors[4 * o + 0] = key / g.out_dims[0];
}

// Work-item o: neighbors[o, k] = the input row that output o reads through offset k, or -1, for
// every k (nested loops over the offsets, no integer division).
V2X_BODY void conv_neighbor_body(size_t o, const int32_t* out_coors, ConvGeometry g,
                                 const int32_t* hash_entries, uint32_t hash_mask,
                                 int32_t* neighbors) {
  const int32_t* c = out_coors + 4 * o;
  int32_t* row = neighbors + o * static_cast<size_t>(g.kernel_volume);
  int32_t k = 0;
  for (int32_t kz = 0; kz < g.kernel[0]; ++kz) {
    const int32_t pz = c[1] * g.stride[0] - g.padding[0] + kz * g.dilation[0];
    const bool z_ok = pz >= 0 && pz < g.in_dims[0];
    for (int32_t ky = 0; ky < g.kernel[1]; ++ky) {
      const int32_t py = c[2] * g.stride[1] - g.padding[1] + ky * g.dilation[1];
      const bool y_ok = z_ok && py >= 0 && py < g.in_dims[1];
      for (int32_t kx = 0; kx < g.kernel[2]; ++kx, ++k) {
        const int32_t px = c[3] * g.stride[2] - g.padding[2] + kx * g.dilation[2];
        row[k] = (y_ok && px >= 0 && px < g.in_dims[2])
                     ? coord_hash_lookup(hash_entries, hash_mask, site_key(c[0], pz, py, px, g.in_dims))
                     : -1;
      }
    }
  }
}

// Work-item o: flag[k * M + o] = 1 when output o has an input through offset k (k-major flags,
// whose exclusive scan numbers the pairs offset by offset).
V2X_BODY void conv_pair_flag_body(size_t o, const int32_t* neighbors, size_t num_out,
                                  int32_t kernel_volume, int32_t* flag) {
  const int32_t* row = neighbors + o * static_cast<size_t>(kernel_volume);
  for (int32_t k = 0; k < kernel_volume; ++k) flag[k * num_out + o] = row[k] >= 0 ? 1 : 0;
}

// Work-item o: writes output o's pairs (input row, o) at their k-major positions.
V2X_BODY void conv_pair_write_body(size_t o, const int32_t* neighbors, size_t num_out,
                                   int32_t kernel_volume, const int32_t* position,
                                   int32_t* pair_in, int32_t* pair_out) {
  const int32_t* row = neighbors + o * static_cast<size_t>(kernel_volume);
  for (int32_t k = 0; k < kernel_volume; ++k) {
    const int32_t n = row[k];
    if (n < 0) continue;
    const int32_t p = position[k * num_out + o];
    pair_in[p] = n;
    pair_out[p] = static_cast<int32_t>(o);
  }
}

// Work-item j: weight element j of the packed layout (kernel_volume, Cin, Cout) from spconv's
// (Cout, kd, kh, kw, Cin), so a GEMM row walks contiguous output channels.
V2X_BODY void conv_pack_weight_body(size_t j, const float* weight, int32_t kernel_volume,
                                    int32_t cin, int32_t cout, float* packed) {
  const size_t co = j % static_cast<size_t>(cout);
  const size_t ci = (j / static_cast<size_t>(cout)) % static_cast<size_t>(cin);
  const size_t k = j / (static_cast<size_t>(cout) * static_cast<size_t>(cin));
  packed[j] = weight[(co * static_cast<size_t>(kernel_volume) + k) * static_cast<size_t>(cin) + ci];
}

// Work-item gid = row block * (Cout / CB) + column block, for the pairs [pair_begin, pair_end)
// of one kernel offset: out[pair_out] += in[pair_in] . W_k for RB pairs x CB output channels.
// Within one offset every output row appears at most once, so the adds never collide, and the
// offsets run one after another: each output's sum has a fixed order whatever the threads.
template <int RB, int CB>
V2X_BODY void conv_gemm_body(size_t gid, const float* in, int32_t cin, const float* weight_k,
                             int32_t cout, const int32_t* pair_in, const int32_t* pair_out,
                             size_t pair_begin, size_t pair_end, float* out) {
  const size_t col_blocks = static_cast<size_t>(cout / CB);
  const size_t p0 = pair_begin + (gid / col_blocks) * RB;
  const int32_t c0 = static_cast<int32_t>(gid % col_blocks) * CB;
  const float* rows[RB];
  int valid = 0;
  for (int r = 0; r < RB; ++r) {
    const size_t p = p0 + static_cast<size_t>(r) < pair_end ? p0 + r : pair_end - 1;
    valid += p0 + static_cast<size_t>(r) < pair_end ? 1 : 0;
    rows[r] = in + static_cast<size_t>(pair_in[p]) * static_cast<size_t>(cin);
  }
  float acc[RB][CB];
  for (int r = 0; r < RB; ++r)
    for (int cc = 0; cc < CB; ++cc) acc[r][cc] = 0.0f;
  for (int32_t ci = 0; ci < cin; ++ci) {
    const float* w = weight_k + static_cast<size_t>(ci) * static_cast<size_t>(cout) + c0;
    for (int r = 0; r < RB; ++r) {
      const float a = rows[r][ci];
      for (int cc = 0; cc < CB; ++cc) acc[r][cc] = V2X_FMA(a, w[cc], acc[r][cc]);
    }
  }
  for (int r = 0; r < valid; ++r) {
    float* o = out + static_cast<size_t>(pair_out[p0 + r]) * static_cast<size_t>(cout) + c0;
    for (int cc = 0; cc < CB; ++cc) o[cc] += acc[r][cc];
  }
}

// Work-item j over (M, Cout): adds the folded batch-norm bias and applies ReLU if asked.
V2X_BODY void conv_bias_relu_body(size_t j, const float* bias, int32_t cout, int32_t relu,
                                  float* out) {
  float v = out[j];
  if (bias != nullptr) v += bias[j % static_cast<size_t>(cout)];
  if (relu != 0 && v < 0.0f) v = 0.0f;
  out[j] = v;
}

// Work-item i: claims site i's dense cell; with duplicate sites the highest row wins.
V2X_BODY void dense_claim_body(size_t i, const int32_t* coors, int32_t dim_y, int32_t dim_x,
                               int32_t* owner) {
  const int32_t* c = coors + 4 * i;
  const int32_t cell = (c[1] * dim_y + c[2]) * dim_x + c[3];
  device_atomic<int32_t>(owner[cell]).fetch_max(static_cast<int32_t>(i));
}

// Work-item i: writes site i's C features into dense (C, D, H, W) if it owns its cell.
V2X_BODY void dense_write_body(size_t i, const float* features, int32_t num_channels,
                               const int32_t* coors, int32_t dim_y, int32_t dim_x, size_t volume,
                               const int32_t* owner, float* dense) {
  const int32_t* c = coors + 4 * i;
  const int32_t cell = (c[1] * dim_y + c[2]) * dim_x + c[3];
  if (owner[cell] != static_cast<int32_t>(i)) return;
  const float* f = features + i * static_cast<size_t>(num_channels);
  for (int32_t ch = 0; ch < num_channels; ++ch) dense[ch * volume + cell] = f[ch];
}

}  // namespace v2x
