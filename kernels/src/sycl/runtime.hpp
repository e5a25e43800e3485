// The sycl backend's runtime (design.md §4): SYCL devices named by selector strings, and the
// kernels of device_kernels.cpp compiled for a device by the DPC++ kernel compiler, once per
// process.
#pragma once

#include <sycl/sycl.hpp>

#include <cstddef>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "sources.hpp"
#include "v2x_sycl_rtc.hpp"

namespace v2x::rtc {

// No SYCL device matches a selector (or no SYCL platform loads at all): the message says which
// devices there are.
class DeviceNotFound : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// One SYCL device: its selector "backend:index" (index among that backend's devices), its type
// (cpu, gpu, accelerator), name and platform.
struct DeviceEntry {
  std::string selector;
  std::string type;
  std::string name;
  std::string platform;
};

// Every device the SYCL runtime finds, in its order.
std::vector<DeviceEntry> list_devices();

// The device named by `selector`: "backend:type" or "backend:index", backend one of opencl,
// level_zero, cuda, hip, native_cpu or *, type one of cpu, gpu, accelerator (fpga) or *; the first
// matching device. std::invalid_argument for a malformed selector, DeviceNotFound when none
// matches.
sycl::device select_device(const std::string& selector);

// The kernels compiled for one device and context. compile() builds them (seconds: one call of the
// kernel compiler over device_kernels.cpp) the first time a device is asked for, and returns the
// same library afterwards; find_kernel (v2x_sycl_rtc.hpp) looks it up by a queue's device.
class KernelLibrary {
 public:
  static std::shared_ptr<KernelLibrary> compile(const sycl::context& context,
                                                const sycl::device& device);

  KernelLibrary(const sycl::context& context, const sycl::device& device,
                sycl::kernel_bundle<sycl::bundle_state::executable> bundle, double seconds);

  const sycl::context& context() const { return context_; }
  const sycl::device& device() const { return device_; }
  double compile_seconds() const { return compile_seconds_; }
  const LaunchKernel& kernel(const std::string& name);

 private:
  sycl::context context_;
  sycl::device device_;
  sycl::kernel_bundle<sycl::bundle_state::executable> bundle_;
  double compile_seconds_;
  size_t compute_units_;
  std::mutex mutex_;
  std::unordered_map<std::string, LaunchKernel> kernels_;
};

// The DPC++ kernel compiler's options: IEEE float as the host build compiles it (-ffp-contract=off,
// no a*b+c contraction; V2X_FMA stays an explicit fma), no device libraries (the bodies use only
// sycl:: builtins).
std::vector<std::string> compile_options();

}  // namespace v2x::rtc
