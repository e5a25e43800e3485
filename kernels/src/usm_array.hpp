// An owning USM device allocation with the size attached: every scratch buffer of a kernel wrapper.
#pragma once

#include <cstddef>
#include <utility>

#include "v2x_sycl.hpp"

namespace v2x {

template <typename T>
class UsmArray {
 public:
  UsmArray(sycl::queue& q, size_t count)
      : q_{&q}, size_{count}, data_{sycl::malloc_device<T>(count == 0 ? 1 : count, q)} {}
  ~UsmArray() {
    if (data_ != nullptr) sycl::free(data_, *q_);
  }
  UsmArray(const UsmArray&) = delete;
  UsmArray& operator=(const UsmArray&) = delete;
  UsmArray(UsmArray&& other) noexcept
      : q_{other.q_}, size_{other.size_}, data_{std::exchange(other.data_, nullptr)} {}
  UsmArray& operator=(UsmArray&& other) noexcept {
    std::swap(q_, other.q_);
    std::swap(size_, other.size_);
    std::swap(data_, other.data_);
    return *this;
  }

  T* data() const { return data_; }
  size_t size() const { return size_; }

  // One element copied back to the host (a count or total that sizes the next step).
  T read(sycl::queue& q, size_t index) const {
    T value{};
    q.memcpy(&value, data_ + index, sizeof(T)).wait();
    return value;
  }

 private:
  sycl::queue* q_;
  size_t size_;
  T* data_;
};

}  // namespace v2x
