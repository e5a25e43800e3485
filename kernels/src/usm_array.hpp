// An owning USM device allocation with the size attached: every scratch buffer of a kernel wrapper.
#pragma once

#include <cstddef>
#include <new>
#include <utility>

#include "v2x_sycl.hpp"

#if defined(V2X_SYCL_REAL)
#include <mutex>
#include <vector>
#endif

namespace v2x {

#if defined(V2X_SYCL_REAL)
namespace detail {

// Freed device blocks kept for reuse, per device and context, as the host subset pools its USM:
// the wrappers allocate their scratch per call, and a fresh device allocation costs a runtime call,
// a blocking free and (on a CPU device) first-touch page faults every time. A block is returned
// only after its queue has finished with it (UsmArray waits first), so any queue may reuse it.
class DeviceBlockCache {
 public:
  static DeviceBlockCache& instance() {
    static DeviceBlockCache* cache = new DeviceBlockCache;  // never destroyed: see release()
    return *cache;
  }
  void* allocate(sycl::queue& q, size_t bytes) {
    const size_t rounded = ((bytes == 0 ? 1 : bytes) + 255) / 256 * 256;
    const sycl::device device = q.get_device();
    const sycl::context context = q.get_context();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      size_t best = free_.size();
      for (size_t i = 0; i < free_.size(); ++i) {  // the smallest block that fits, at most 2x
        const Block& b = free_[i];
        if (b.bytes >= rounded && b.bytes <= 2 * rounded && b.device == device &&
            b.context == context && (best == free_.size() || b.bytes < free_[best].bytes)) {
          best = i;
        }
      }
      if (best != free_.size()) {
        Block b = free_[best];
        free_.erase(free_.begin() + static_cast<std::ptrdiff_t>(best));
        cached_bytes_ -= b.bytes;
        used_.push_back(b);
        return b.ptr;
      }
    }
    void* p = sycl::malloc_device(rounded, device, context);
    if (p == nullptr) throw std::bad_alloc();  // a real SYCL runtime returns null when full
    std::lock_guard<std::mutex> lock(mutex_);
    used_.push_back(Block{p, rounded, device, context});
    return p;
  }
  // Takes back p once no queue uses it; the largest cached blocks beyond the cap are freed. (The
  // cache itself outlives everything: freeing at exit could run after the SYCL runtime's teardown.)
  void release(void* p) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (size_t i = 0; i < used_.size(); ++i) {
      if (used_[i].ptr != p) continue;
      free_.push_back(used_[i]);
      cached_bytes_ += used_[i].bytes;
      used_.erase(used_.begin() + static_cast<std::ptrdiff_t>(i));
      break;
    }
    while (cached_bytes_ > kMaxCachedBytes) {
      size_t largest = 0;
      for (size_t i = 1; i < free_.size(); ++i) {
        if (free_[i].bytes > free_[largest].bytes) largest = i;
      }
      sycl::free(free_[largest].ptr, free_[largest].context);
      cached_bytes_ -= free_[largest].bytes;
      free_.erase(free_.begin() + static_cast<std::ptrdiff_t>(largest));
    }
  }

 private:
  struct Block {
    void* ptr;
    size_t bytes;
    sycl::device device;
    sycl::context context;
  };
  static constexpr size_t kMaxCachedBytes = size_t{256} << 20;
  std::mutex mutex_;
  std::vector<Block> free_;
  std::vector<Block> used_;
  size_t cached_bytes_ = 0;
};

}  // namespace detail
#endif

template <typename T>
class UsmArray {
 public:
#if defined(V2X_SYCL_REAL)
  UsmArray(sycl::queue& q, size_t count)
      : q_{&q},
        size_{count},
        data_{static_cast<T*>(detail::DeviceBlockCache::instance().allocate(
            q, (count == 0 ? 1 : count) * sizeof(T)))} {}
  // Waits for the queue first: on a real, asynchronous SYCL queue a kernel may still use the block.
  ~UsmArray() {
    if (data_ != nullptr) {
      q_->wait();
      detail::DeviceBlockCache::instance().release(data_);
    }
  }
#else
  UsmArray(sycl::queue& q, size_t count)
      : q_{&q}, size_{count}, data_{sycl::malloc_device<T>(count == 0 ? 1 : count, q)} {}
  ~UsmArray() {
    if (data_ != nullptr) sycl::free(data_, *q_);
  }
#endif
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
