// Caller buffers (numpy arrays) as kernel memory. The host subset runs its kernels on the caller's
// buffers themselves, no copies; a real SYCL device gets device USM copies, because a GPU cannot
// read or write pageable host memory (and a CPU device is given no shortcut either).
#pragma once

#include <cstddef>

#include "usm_array.hpp"

namespace v2x {

// Read-only input of count elements at `host` (nullptr: an absent optional input, get() nullptr).
template <typename T>
class DeviceInput {
 public:
#if defined(V2X_SYCL_REAL)
  DeviceInput(sycl::queue& q, const T* host, size_t count) : copy_(q, host != nullptr ? count : 0) {
    if (host != nullptr && count != 0) q.memcpy(copy_.data(), host, count * sizeof(T));
    ptr_ = host != nullptr ? copy_.data() : nullptr;
  }
#else
  DeviceInput(sycl::queue&, const T* host, size_t) : ptr_{host} {}
#endif
  DeviceInput(const DeviceInput&) = delete;
  DeviceInput& operator=(const DeviceInput&) = delete;

  const T* get() const { return ptr_; }

 private:
#if defined(V2X_SYCL_REAL)
  UsmArray<T> copy_;
#endif
  const T* ptr_ = nullptr;
};

// Output of count elements the kernels write in full; finish() makes them the host buffer's.
template <typename T>
class DeviceOutput {
 public:
#if defined(V2X_SYCL_REAL)
  DeviceOutput(sycl::queue& q, T* host, size_t count)
      : q_{&q}, host_{host}, count_{count}, copy_(q, count) {}
  T* get() const { return copy_.data(); }
  void finish() {
    if (count_ != 0) q_->memcpy(host_, copy_.data(), count_ * sizeof(T));
    q_->wait();
  }
#else
  DeviceOutput(sycl::queue&, T* host, size_t) : host_{host} {}
  T* get() const { return host_; }
  void finish() {}
#endif
  DeviceOutput(const DeviceOutput&) = delete;
  DeviceOutput& operator=(const DeviceOutput&) = delete;

 private:
#if defined(V2X_SYCL_REAL)
  sycl::queue* q_;
  T* host_;
  size_t count_;
  UsmArray<T> copy_;
#else
  T* host_;
#endif
};

}  // namespace v2x
