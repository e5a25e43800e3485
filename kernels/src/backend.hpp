// The backend the Python bindings run kernels on: the queue every wrapper submits to and what to
// report about it. One class, two builds (design.md §4): the host subset (module _core: OpenMP on
// this CPU) and runtime-compiled SYCL (module _sycl, V2X_SYCL_RTC: a SYCL device picked by a
// selector string, its kernels compiled by the DPC++ kernel compiler once per process).
#pragma once

#include <memory>
#include <string>

#include "v2x_sycl.hpp"

#if defined(V2X_SYCL_RTC)
#include "sycl/runtime.hpp"
#endif

namespace v2x {

#if defined(V2X_SYCL_RTC)

class Backend : public std::enable_shared_from_this<Backend> {
 public:
  // The device of `selector` (rtc::select_device), its kernels compiled (or taken from this
  // process's cache) and an in-order queue on it.
  explicit Backend(const std::string& selector)
      : selector_{selector},
        queue_{rtc::select_device(selector), sycl::property::queue::in_order{}},
        library_{rtc::KernelLibrary::compile(queue_.get_context(), queue_.get_device())} {}

  sycl::queue& queue() { return queue_; }
  const std::string& name() const { return kName; }
  const std::string& selector() const { return selector_; }
  std::string device() const {
    const sycl::device d = queue_.get_device();
    return d.get_info<sycl::info::device::name>() + " (" +
           d.get_platform().get_info<sycl::info::platform::name>() + ", " + selector_ + ")";
  }
  double compile_seconds() const { return library_->compile_seconds(); }

 private:
  inline static const std::string kName = "sycl";
  std::string selector_;
  sycl::queue queue_;
  std::shared_ptr<rtc::KernelLibrary> library_;
};

#else

class Backend : public std::enable_shared_from_this<Backend> {
 public:
  // The process's one backend of _core (the host subset, or an icpx / acpp build): every
  // HostKernels and the module-level functions share it.
  static std::shared_ptr<Backend> instance() {
    static std::shared_ptr<Backend> backend{new Backend};
    return backend;
  }

  sycl::queue& queue() { return queue_; }
  const std::string& name() const { return kName; }
#if defined(V2X_SYCL_REAL)
  // _core compiled ahead of time by icpx / acpp: SYCL's default device.
  std::string device() const {
    return queue_.get_device().get_info<sycl::info::device::name>() + " (compiled ahead of time)";
  }
#else
  std::string device() const { return "host CPU (OpenMP)"; }
#endif
  double compile_seconds() const { return 0.0; }

 private:
  Backend() : queue_{make_queue()} {}
  inline static const std::string kName = V2X_KERNELS_BACKEND_NAME;
  sycl::queue queue_;
};

#endif

}  // namespace v2x
