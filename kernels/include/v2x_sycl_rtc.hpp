// Host side of the runtime-compiled SYCL path: launching the free-function kernels that the DPC++
// kernel compiler built from src/sycl/device_kernels.cpp (design.md §4), by name, on a real SYCL
// queue. The compiled kernels of a queue's device are found through find_kernel
// (src/sycl/runtime.cpp), which compiles them once per process and device.
#pragma once

#include <sycl/sycl.hpp>

#include <cstddef>
#include <string>

namespace v2x::rtc {

// A compiled kernel, the largest work-group it is launched with on its device (at most 256, a
// good size on GPUs, and at most what the kernel allows there) and the device's compute units.
struct LaunchKernel {
  sycl::kernel kernel;
  size_t max_group;
  size_t compute_units;
};

// The work-group size for n work-items: max_group when there are enough items for every compute
// unit, smaller (a power of two) when there are not, so that a few dozen items (the per-block
// passes, each looping over thousands of elements) still spread over all compute units.
inline size_t group_size(const LaunchKernel& k, size_t n) {
  const size_t per_unit = (n + k.compute_units - 1) / k.compute_units;
  size_t group = 1;
  while (group * 2 <= per_unit && group * 2 <= k.max_group) group *= 2;
  return group;
}

// The kernel `name` of the bundle compiled for q's device and context; std::logic_error when the
// bundle has no such kernel (a wrapper missing from device_kernels.cpp), std::runtime_error when
// no bundle was compiled for that device (no sycl backend was opened on it).
const LaunchKernel& find_kernel(const sycl::queue& q, const std::string& name);

// "base_a_b" for the template instance base<a, b>: the kernel name of a template body.
template <typename... Args>
std::string instance_name(const char* base, Args... template_args) {
  std::string name = base;
  ((name += "_" + std::to_string(template_args)), ...);
  return name;
}

// Work-items 0 .. n-1 of the kernel `name`, whose body has the parameters (size_t, P...): the
// kernel's parameters are (size_t n, P...), the nd_range is n rounded up to whole work-groups, and
// work-items at or beyond n return at once.
template <typename... P, typename... A>
void launch_items(sycl::queue& q, size_t n, const std::string& name, void (*)(size_t, P...),
                  const A&... args) {
  static_assert(sizeof...(P) == sizeof...(A), "launch: argument count differs from the body's");
  if (n == 0) return;
  const LaunchKernel& k = find_kernel(q, name);
  const size_t group = group_size(k, n);
  const size_t global = (n + group - 1) / group * group;
  q.submit([&](sycl::handler& h) {
    h.set_args(n, static_cast<P>(args)...);
    h.parallel_for(sycl::nd_range<1>(global, group), k.kernel);
  });
}

// One work-item of the kernel `name`, whose parameters are the body's.
template <typename... P, typename... A>
void launch_single(sycl::queue& q, const std::string& name, void (*)(P...), const A&... args) {
  static_assert(sizeof...(P) == sizeof...(A), "launch: argument count differs from the body's");
  const LaunchKernel& k = find_kernel(q, name);
  q.submit([&](sycl::handler& h) {
    h.set_args(static_cast<P>(args)...);
    h.parallel_for(sycl::nd_range<1>(1, 1), k.kernel);
  });
}

}  // namespace v2x::rtc
