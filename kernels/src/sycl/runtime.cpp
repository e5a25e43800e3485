// The sycl backend's runtime: device selection by selector string, and the kernel library compiled
// at run time by the DPC++ kernel compiler (sycl_ext_oneapi_kernel_compiler), cached per process.
#include "runtime.hpp"

#include <algorithm>
#include <chrono>
#include <optional>

namespace v2x::rtc {

namespace syclex = sycl::ext::oneapi::experimental;

namespace {

// Largest work-group launched: a good size on GPUs, and on the OpenCL CPU device a task of a few
// hundred vectorized work-items.
constexpr size_t kMaxGroup = 256;

std::string backend_name(sycl::backend b) {
  switch (b) {
    case sycl::backend::opencl:
      return "opencl";
    case sycl::backend::ext_oneapi_level_zero:
      return "level_zero";
    case sycl::backend::ext_oneapi_cuda:
      return "cuda";
    case sycl::backend::ext_oneapi_hip:
      return "hip";
    case sycl::backend::ext_oneapi_native_cpu:
      return "native_cpu";
    default:
      return "other";
  }
}

std::string type_name(sycl::info::device_type t) {
  switch (t) {
    case sycl::info::device_type::cpu:
      return "cpu";
    case sycl::info::device_type::gpu:
      return "gpu";
    case sycl::info::device_type::accelerator:
      return "accelerator";
    default:
      return "other";
  }
}

// Every device, or DeviceNotFound when the runtime cannot even load a platform.
std::vector<sycl::device> all_devices() {
  try {
    return sycl::device::get_devices();
  } catch (const sycl::exception& e) {
    throw DeviceNotFound(std::string("the SYCL runtime found no platform: ") + e.what());
  }
}

std::string device_list_text() {
  std::string text;
  for (const DeviceEntry& d : list_devices()) {
    text += (text.empty() ? "" : "; ") + d.selector + " (" + d.type + ", " + d.name + ", " +
            d.platform + ")";
  }
  return text.empty() ? "none" : text;
}

// Process-wide: the libraries compiled so far. Never destroyed: SYCL objects must not outlive the
// SYCL runtime's own teardown at exit, whose order against this file's statics is unspecified.
struct Registry {
  std::mutex mutex;
  std::vector<std::shared_ptr<KernelLibrary>> libraries;
};
Registry& registry() {
  static Registry* r = new Registry;
  return *r;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

std::vector<DeviceEntry> list_devices() {
  std::vector<DeviceEntry> out;
  std::vector<std::pair<sycl::backend, int>> counts;
  for (const sycl::device& d : all_devices()) {
    const sycl::backend b = d.get_backend();
    auto it =
        std::find_if(counts.begin(), counts.end(), [&](const auto& c) { return c.first == b; });
    if (it == counts.end()) it = counts.insert(counts.end(), {b, 0});
    out.push_back(DeviceEntry{backend_name(b) + ":" + std::to_string(it->second++),
                              type_name(d.get_info<sycl::info::device::device_type>()),
                              d.get_info<sycl::info::device::name>(),
                              d.get_platform().get_info<sycl::info::platform::name>()});
  }
  return out;
}

sycl::device select_device(const std::string& selector) {
  const size_t colon = selector.find(':');
  if (colon == std::string::npos || selector.find(':', colon + 1) != std::string::npos) {
    throw std::invalid_argument("device: '" + selector +
                                "' is not a selector 'backend:type' or 'backend:index' (e.g. "
                                "opencl:cpu, level_zero:gpu, opencl:0)");
  }
  const std::string backend = selector.substr(0, colon);
  const std::string device = selector.substr(colon + 1);
  static const char* kBackends[] = {"opencl", "level_zero", "cuda", "hip", "native_cpu", "*"};
  static const char* kTypes[] = {"cpu", "gpu", "accelerator", "fpga", "*"};
  if (std::find(std::begin(kBackends), std::end(kBackends), backend) == std::end(kBackends)) {
    throw std::invalid_argument("device: unknown SYCL backend '" + backend + "' in '" + selector +
                                "' (use opencl, level_zero, cuda, hip, native_cpu or *)");
  }
  const bool is_index = !device.empty() && std::all_of(device.begin(), device.end(), [](char c) {
    return c >= '0' && c <= '9';
  });
  if (!is_index && std::find(std::begin(kTypes), std::end(kTypes), device) == std::end(kTypes)) {
    throw std::invalid_argument("device: unknown device type '" + device + "' in '" + selector +
                                "' (use cpu, gpu, accelerator, * or an index)");
  }
  const std::string type = device == "fpga" ? "accelerator" : device;
  int position = 0;
  for (const sycl::device& d : all_devices()) {
    if (backend != "*" && backend_name(d.get_backend()) != backend) continue;
    const std::string d_type = type_name(d.get_info<sycl::info::device::device_type>());
    const bool match =
        is_index ? std::to_string(position) == device : (type == "*" || d_type == type);
    ++position;
    if (match) return d;
  }
  throw DeviceNotFound("no SYCL device matches '" + selector + "'; devices found: " +
                       device_list_text());
}

std::vector<std::string> compile_options() {
  return {"-fno-sycl-device-lib=all", "-ffp-contract=off"};
}

std::shared_ptr<KernelLibrary> KernelLibrary::compile(const sycl::context& context,
                                                      const sycl::device& device) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  for (const auto& lib : r.libraries) {
    if (lib->context() == context && lib->device() == device) return lib;
  }
  sycl::device target = device;  // ext_oneapi_can_build is not const
  if (!target.ext_oneapi_can_build(syclex::source_language::sycl)) {
    throw DeviceNotFound("the SYCL device '" + device.get_info<sycl::info::device::name>() +
                         "' cannot compile SYCL source at run time (kernel compiler missing)");
  }
  const auto start = std::chrono::steady_clock::now();
  syclex::include_files includes;
  for (size_t i = 0; i < kNumIncludeFiles; ++i) {
    includes.add(kIncludeFiles[i].name, kIncludeFiles[i].text);
  }
  auto source = syclex::create_kernel_bundle_from_source(
      context, syclex::source_language::sycl, kKernelSource.text, syclex::properties{includes});
  std::string log;
  std::optional<sycl::kernel_bundle<sycl::bundle_state::executable>> bundle;
  try {
    bundle = syclex::build(source, std::vector<sycl::device>{device},
                           syclex::properties{syclex::build_options{compile_options()},
                                              syclex::save_log{&log}});
  } catch (const sycl::exception& e) {
    throw std::runtime_error(std::string("the DPC++ kernel compiler failed on ") +
                             kKernelSource.name + ": " + e.what() + "\n" + log);
  }
  auto lib = std::make_shared<KernelLibrary>(context, device, std::move(*bundle),
                                             seconds_since(start));
  r.libraries.push_back(lib);
  return lib;
}

KernelLibrary::KernelLibrary(const sycl::context& context, const sycl::device& device,
                             sycl::kernel_bundle<sycl::bundle_state::executable> bundle,
                             double seconds)
    : context_{context},
      device_{device},
      bundle_{std::move(bundle)},
      compile_seconds_{seconds},
      compute_units_{
          std::max<size_t>(1, device.get_info<sycl::info::device::max_compute_units>())} {}

const LaunchKernel& KernelLibrary::kernel(const std::string& name) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = kernels_.find(name);
  if (it != kernels_.end()) return it->second;
  if (!bundle_.ext_oneapi_has_kernel(name)) {
    throw std::logic_error("kernel " + name + " is not in the compiled bundle (no wrapper in " +
                           kKernelSource.name + ")");
  }
  sycl::kernel k = bundle_.ext_oneapi_get_kernel(name);
  const size_t limit = k.get_info<sycl::info::kernel_device_specific::work_group_size>(device_);
  return kernels_.emplace(name, LaunchKernel{k, std::min(kMaxGroup, limit), compute_units_})
      .first->second;
}

const LaunchKernel& find_kernel(const sycl::queue& q, const std::string& name) {
  std::shared_ptr<KernelLibrary> lib;
  {
    Registry& r = registry();
    std::lock_guard<std::mutex> lock(r.mutex);
    const sycl::context context = q.get_context();
    const sycl::device device = q.get_device();
    for (const auto& l : r.libraries) {
      if (l->context() == context && l->device() == device) lib = l;
    }
  }
  if (!lib) {
    throw std::runtime_error("no kernels were compiled for the queue's SYCL device (" +
                             q.get_device().get_info<sycl::info::device::name>() + ")");
  }
  return lib->kernel(name);
}

}  // namespace v2x::rtc
