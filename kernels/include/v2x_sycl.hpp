// Picks the SYCL implementation the kernels compile against: a real SYCL compiler (icpx, acpp),
// selected by CMake with V2X_SYCL_REAL, or our OpenMP host subset (v2x_sycl_host.hpp). The DPC++
// kernel compiler, compiling the kernel bodies at run time (src/sycl/device_kernels.cpp), defines
// V2X_SYCL_KERNEL_COMPILER and gets only the headers the bodies use: the whole <sycl/sycl.hpp>
// more than doubles that compile.
#pragma once

#if defined(V2X_SYCL_KERNEL_COMPILER)
#include <sycl/atomic_ref.hpp>
#include <sycl/builtins.hpp>
#elif defined(V2X_SYCL_REAL)
#include <sycl/sycl.hpp>
#else
#include "v2x_sycl_host.hpp"
#endif

#if !defined(V2X_SYCL_KERNEL_COMPILER)
namespace v2x {

// The in-order queue every kernel wrapper submits to: kernels of one operation run one after
// another, as the host subset runs them.
inline sycl::queue make_queue() { return sycl::queue{sycl::property::queue::in_order{}}; }

}  // namespace v2x
#endif
