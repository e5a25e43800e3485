// Per-work-item bodies of PointPillarsScatter: pillar features onto the dense BEV canvas.
#pragma once

#include <cstddef>
#include <cstdint>

#include "device_math.hpp"

namespace v2x {

// Canvas layout (C, nx, ny), rows along x as BEVFusion's BEV maps: cell = x * ny + y.

// Work-item v: claims pillar v's cell; with duplicate coordinates the highest pillar index wins,
// as if the pillars were written one after another.
V2X_BODY void pillar_claim_body(size_t v, const int32_t* coors, int32_t ny, int32_t* owner) {
  const int32_t cell = coors[4 * v + 1] * ny + coors[4 * v + 2];
  device_atomic<int32_t>(owner[cell]).fetch_max(static_cast<int32_t>(v));
}

// Work-item v: writes pillar v's C features into canvas (C, nx, ny) if it owns its cell.
V2X_BODY void pillar_write_body(size_t v, const float* features, int32_t num_channels,
                                const int32_t* coors, int32_t nx, int32_t ny, const int32_t* owner,
                                float* canvas) {
  const int32_t cell = coors[4 * v + 1] * ny + coors[4 * v + 2];
  if (owner[cell] != static_cast<int32_t>(v)) return;
  const size_t plane = static_cast<size_t>(nx) * static_cast<size_t>(ny);
  const float* f = features + v * static_cast<size_t>(num_channels);
  for (int32_t c = 0; c < num_channels; ++c) canvas[c * plane + cell] = f[c];
}

}  // namespace v2x
