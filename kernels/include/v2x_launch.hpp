// How a kernel wrapper submits a body of src/bodies (design.md §4): one macro call per submission,
// expanded for the build at hand, so every build runs the same bodies in the same order.
//
//   V2X_FOR(q, n, body, args...)            work-items i = 0 .. n-1 run body(i, args...)
//   V2X_FOR_T(q, n, body, (targs), args...) the same with the template body<targs>
//   V2X_SINGLE(q, body, args...)            one work-item runs body(args...)
//
// Host subset and compiled SYCL (icpx, acpp): a parallel_for / single_task over a lambda that
// calls the body. Runtime-compiled SYCL (V2X_SYCL_RTC, the sycl backend of the Python module):
// the free-function kernel v2x_<body> (v2x_<body>_<targs> for templates) of
// src/sycl/device_kernels.cpp, which the DPC++ kernel compiler built from the same body, is
// launched by name with the arguments converted to the body's parameter types, exactly as the
// lambda's call converts them.
#pragma once

#include "v2x_sycl.hpp"

#define V2X_UNPAREN(...) __VA_ARGS__

#if defined(V2X_SYCL_RTC)

#include "v2x_sycl_rtc.hpp"

#define V2X_FOR(q, n, body, ...)                                                              \
  ::v2x::rtc::launch_items((q), (n), "v2x_" #body, static_cast<decltype(&body)>(nullptr), \
                           __VA_ARGS__)
#define V2X_FOR_T(q, n, body, targs, ...)                                                  \
  ::v2x::rtc::launch_items((q), (n), ::v2x::rtc::instance_name("v2x_" #body, V2X_UNPAREN targs), \
                           static_cast<decltype(&body<V2X_UNPAREN targs>)>(nullptr), __VA_ARGS__)
#define V2X_SINGLE(q, body, ...) \
  ::v2x::rtc::launch_single((q), "v2x_" #body, static_cast<decltype(&body)>(nullptr), __VA_ARGS__)

#else

#define V2X_FOR(q, n, body, ...) \
  (q).parallel_for(sycl::range<1>(n), [=](sycl::id<1> v2x_item) { body(v2x_item[0], __VA_ARGS__); })
#define V2X_FOR_T(q, n, body, targs, ...)                          \
  (q).parallel_for(sycl::range<1>(n), [=](sycl::id<1> v2x_item) { \
    body<V2X_UNPAREN targs>(v2x_item[0], __VA_ARGS__);            \
  })
#define V2X_SINGLE(q, body, ...) (q).single_task([=]() { body(__VA_ARGS__); })

#endif
