// PointPillarsScatter: submits the bodies of bodies/pillar_scatter_body.hpp.
#include "pillar_scatter.hpp"

#include "bodies/pillar_scatter_body.hpp"
#include "usm_array.hpp"
#include "v2x_launch.hpp"

namespace v2x {

void pillar_scatter(sycl::queue& q, const float* features, const int32_t* coors,
                    size_t num_pillars, int32_t num_channels, int32_t nx, int32_t ny,
                    float* canvas) {
  const size_t plane = static_cast<size_t>(nx) * static_cast<size_t>(ny);
  q.fill(canvas, 0.0f, plane * static_cast<size_t>(num_channels));
  if (num_pillars == 0) {
    q.wait();
    return;
  }
  UsmArray<int32_t> owner_buf(q, plane);
  int32_t* owner = owner_buf.data();
  q.fill(owner, int32_t{-1}, plane);
  V2X_FOR(q, num_pillars, pillar_claim_body, coors, ny, owner);
  V2X_FOR(q, num_pillars, pillar_write_body, features, num_channels, coors, nx, ny, owner, canvas);
  q.wait();
}

}  // namespace v2x
