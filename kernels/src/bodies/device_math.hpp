// What kernel bodies may use beyond plain C++: float math, atomics and the inline marker, each
// mapped to sycl:: in a real SYCL build and to std:: / our host subset otherwise (design.md §4).
//
// Rules every body under bodies/ follows, so the same text compiles as SYCL device code (also
// through the DPC++ kernel compiler at run time): float only (no double literals or math), no
// recursion, no exceptions, no allocation, no host calls, no lambdas capturing by reference; a
// body is a free inline function of (work-item index, USM pointers, scalars / POD structs).
#pragma once

#include <cstdint>

#include "v2x_sycl.hpp"

#if defined(V2X_SYCL_REAL) || defined(SYCL_LANGUAGE_VERSION)
#define V2X_MATH_NS sycl
#else
#include <cmath>
#define V2X_MATH_NS std
#endif

#define V2X_BODY inline

#define V2X_FLOOR(x) V2X_MATH_NS::floor(x)
#define V2X_ROUND(x) V2X_MATH_NS::round(x)
#define V2X_EXP(x) V2X_MATH_NS::exp(x)
#define V2X_SQRT(x) V2X_MATH_NS::sqrt(x)
#define V2X_SIN(x) V2X_MATH_NS::sin(x)
#define V2X_COS(x) V2X_MATH_NS::cos(x)
#define V2X_ATAN2(y, x) V2X_MATH_NS::atan2(y, x)
#define V2X_FABS(x) V2X_MATH_NS::fabs(x)
#define V2X_FMA(a, b, c) V2X_MATH_NS::fma(a, b, c)
#define V2X_ISFINITE(x) V2X_MATH_NS::isfinite(x)

namespace v2x {

constexpr float kPi = 3.14159265358979323846f;

// Relaxed device-scope atomics on global USM memory: all our kernels need (counters, hash slots,
// min / max of an index). Relaxed suffices because results are read only after the kernel ends.
template <typename T>
using device_atomic = sycl::atomic_ref<T, sycl::memory_order::relaxed, sycl::memory_scope::device,
                                       sycl::access::address_space::global_space>;

// Float bits as an unsigned key whose unsigned order is the float's order (for radix sorting).
V2X_BODY uint32_t float_order_key(float f) {
  const uint32_t u = __builtin_bit_cast(uint32_t, f);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

}  // namespace v2x
