// PointPillarsScatter (Pipeline A): pillar features (V, C) onto the canvas (C, nx, ny).
#pragma once

#include <cstddef>
#include <cstdint>

#include "v2x_sycl.hpp"

namespace v2x {

// features: (V, C); coors: (V, 4) as (batch, x, y, z), every x in [0, nx), y in [0, ny);
// canvas: (C, nx, ny), rows along x (BEVFusion's BEV layout), fully written (zero where no pillar
// lies).
void pillar_scatter(sycl::queue& q, const float* features, const int32_t* coors,
                    size_t num_pillars, int32_t num_channels, int32_t nx, int32_t ny,
                    float* canvas);

}  // namespace v2x
