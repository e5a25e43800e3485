// The SYCL-2020 subset our kernels use, implemented on the host with OpenMP (design.md §4, build 1).
//
// Kernel sources are written against `namespace sycl` exactly as for a real SYCL compiler; this
// header lets g++ build the same sources without one. What is here, and how it maps:
//   queue            in-order and synchronous: every submission has finished when it returns, so
//                    `wait()` and `event::wait()` are no-ops (a real build uses an in_order queue);
//   range / id       1-D and 2-D; `parallel_for(range)` runs the work-items as an OpenMP loop with a
//                    static schedule;
//   nd_range/nd_item 1-D; work-groups run in parallel, the work-items of one group run in order on
//                    one thread; there are no barriers and no local memory (our kernels need neither:
//                    phases that must wait for each other are separate submissions);
//   atomic_ref       relaxed/seq_cst atomics on global memory through the GCC __atomic builtins;
//   USM              malloc_device / malloc_shared / malloc_host / free (freed blocks are cached
//                    for reuse, up to 256 MB), memcpy, memset, fill.
// Kernels must give the same bits whatever the thread count: nothing here depends on it except
// which thread runs which work-item.
#pragma once

#include <omp.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <map>
#include <mutex>
#include <new>
#include <stdexcept>
#include <type_traits>
#include <unordered_map>

namespace sycl {

enum class memory_order { relaxed, acquire, release, acq_rel, seq_cst };
enum class memory_scope { work_item, sub_group, work_group, device, system };
namespace access {
enum class address_space { global_space, local_space, constant_space, private_space, generic_space };
}  // namespace access

template <int Dims = 1>
class id;
template <int Dims = 1>
class range;

template <>
class range<1> {
 public:
  explicit range(size_t n0) : n_{n0} {}
  size_t operator[](int) const { return n_; }
  size_t get(int) const { return n_; }
  size_t size() const { return n_; }

 private:
  size_t n_;
};

template <>
class range<2> {
 public:
  range(size_t n0, size_t n1) : n_{n0, n1} {}
  size_t operator[](int d) const { return n_[d]; }
  size_t get(int d) const { return n_[d]; }
  size_t size() const { return n_[0] * n_[1]; }

 private:
  size_t n_[2];
};

template <>
class id<1> {
 public:
  explicit id(size_t i0) : i_{i0} {}
  size_t operator[](int) const { return i_; }
  size_t get(int) const { return i_; }
  operator size_t() const { return i_; }  // SYCL 2020: id<1> converts to size_t

 private:
  size_t i_;
};

template <>
class id<2> {
 public:
  id(size_t i0, size_t i1) : i_{i0, i1} {}
  size_t operator[](int d) const { return i_[d]; }
  size_t get(int d) const { return i_[d]; }

 private:
  size_t i_[2];
};

template <int Dims = 1>
class nd_range {
  static_assert(Dims == 1, "the host SYCL subset implements 1-D nd_range only");

 public:
  nd_range(range<1> global, range<1> local) : global_{global}, local_{local} {
    if (local[0] == 0 || global[0] % local[0] != 0) {
      throw std::invalid_argument("nd_range: global size must be a multiple of the local size");
    }
  }
  range<1> get_global_range() const { return global_; }
  range<1> get_local_range() const { return local_; }

 private:
  range<1> global_;
  range<1> local_;
};

template <int Dims = 1>
class nd_item {
  static_assert(Dims == 1, "the host SYCL subset implements 1-D nd_item only");

 public:
  nd_item(size_t group, size_t local, size_t local_size, size_t global_size)
      : group_{group}, local_{local}, local_size_{local_size}, global_size_{global_size} {}
  size_t get_global_id(int = 0) const { return group_ * local_size_ + local_; }
  size_t get_global_linear_id() const { return get_global_id(); }
  size_t get_local_id(int = 0) const { return local_; }
  size_t get_local_linear_id() const { return local_; }
  size_t get_group_linear_id() const { return group_; }
  size_t get_local_range(int = 0) const { return local_size_; }
  size_t get_global_range(int = 0) const { return global_size_; }
  size_t get_group_range(int = 0) const { return global_size_ / local_size_; }

 private:
  size_t group_, local_, local_size_, global_size_;
};

template <typename T, memory_order DefaultOrder = memory_order::relaxed,
          memory_scope DefaultScope = memory_scope::device,
          access::address_space Space = access::address_space::global_space>
class atomic_ref {
  static_assert(std::is_integral<T>::value || std::is_floating_point<T>::value,
                "atomic_ref needs an integral or floating-point type");

 public:
  explicit atomic_ref(T& ref) : ptr_{&ref} {}

  T load(memory_order = DefaultOrder) const { return __atomic_load_n(ptr_, __ATOMIC_SEQ_CST); }
  void store(T v, memory_order = DefaultOrder) const { __atomic_store_n(ptr_, v, __ATOMIC_SEQ_CST); }
  T exchange(T v, memory_order = DefaultOrder) const {
    return __atomic_exchange_n(ptr_, v, __ATOMIC_SEQ_CST);
  }
  bool compare_exchange_strong(T& expected, T desired, memory_order = DefaultOrder) const {
    return __atomic_compare_exchange_n(ptr_, &expected, desired, false, __ATOMIC_SEQ_CST,
                                       __ATOMIC_SEQ_CST);
  }
  T fetch_add(T v, memory_order = DefaultOrder) const {
    static_assert(std::is_integral<T>::value, "host subset: fetch_add on integers only");
    return __atomic_fetch_add(ptr_, v, __ATOMIC_SEQ_CST);
  }
  T fetch_min(T v, memory_order = DefaultOrder) const {
    T cur = load();
    while (v < cur && !compare_exchange_strong(cur, v)) {
    }
    return cur;
  }
  T fetch_max(T v, memory_order = DefaultOrder) const {
    T cur = load();
    while (v > cur && !compare_exchange_strong(cur, v)) {
    }
    return cur;
  }

 private:
  T* ptr_;
};

class event {
 public:
  void wait() {}
};

class queue;

class handler {
 public:
  template <typename Kernel>
  void parallel_for(range<1> r, const Kernel& k);
  template <typename Kernel>
  void parallel_for(range<2> r, const Kernel& k);
  template <typename Kernel>
  void parallel_for(nd_range<1> r, const Kernel& k);
  template <typename Kernel>
  void single_task(const Kernel& k) {
    k();
  }
  void memcpy(void* dst, const void* src, size_t bytes) { std::memcpy(dst, src, bytes); }
  template <typename T>
  void fill(T* ptr, const T& value, size_t count);
};

namespace detail {

// Threads of every parallel_for: n > 0 exactly n; 0 (the default) OpenMP's default count
// (OMP_NUM_THREADS or all cores) with dynamic adjustment on, so OpenMP shrinks the team when the
// machine is already busy (libgomp: cores minus load average). Many short regions on an
// oversubscribed machine otherwise wait, region after region, for a descheduled team member.
// A process-wide setting rather than OpenMP's per-thread one, so it holds in whichever thread
// submits (a ROS executor thread, say). Not part of SYCL: see v2x_host_set_num_threads.
inline int& requested_threads() {
  static int n = 0;
  return n;
}
inline int team_size() {
  const int n = requested_threads();
  return n > 0 ? n : omp_get_max_threads();
}

// Sets OpenMP's dynamic adjustment for the regions of one submission, restoring it afterwards.
class TeamPolicy {
 public:
  TeamPolicy() : previous_{omp_get_dynamic()} { omp_set_dynamic(requested_threads() == 0); }
  ~TeamPolicy() { omp_set_dynamic(previous_); }
  TeamPolicy(const TeamPolicy&) = delete;
  TeamPolicy& operator=(const TeamPolicy&) = delete;

 private:
  int previous_;
};

template <typename Kernel>
void run_range1(size_t n, const Kernel& k) {
  const std::ptrdiff_t count = static_cast<std::ptrdiff_t>(n);
  const int team = team_size();
  if (count <= 1 || team <= 1) {  // no parallel region for one work-item or one thread
    for (std::ptrdiff_t i = 0; i < count; ++i) k(id<1>(static_cast<size_t>(i)));
    return;
  }
  TeamPolicy policy;
#pragma omp parallel for schedule(static) num_threads(team)
  for (std::ptrdiff_t i = 0; i < count; ++i) {
    k(id<1>(static_cast<size_t>(i)));
  }
}

template <typename Kernel>
void run_range2(size_t n0, size_t n1, const Kernel& k) {
  const std::ptrdiff_t count = static_cast<std::ptrdiff_t>(n0 * n1);
  TeamPolicy policy;
#pragma omp parallel for schedule(static) num_threads(team_size())
  for (std::ptrdiff_t i = 0; i < count; ++i) {
    const size_t u = static_cast<size_t>(i);
    k(id<2>(u / n1, u % n1));
  }
}

template <typename Kernel>
void run_nd_range1(size_t global, size_t local, const Kernel& k) {
  const std::ptrdiff_t groups = static_cast<std::ptrdiff_t>(global / local);
  TeamPolicy policy;
#pragma omp parallel for schedule(static) num_threads(team_size())
  for (std::ptrdiff_t g = 0; g < groups; ++g) {
    for (size_t l = 0; l < local; ++l) {
      k(nd_item<1>(static_cast<size_t>(g), l, local, global));
    }
  }
}

}  // namespace detail

template <typename Kernel>
void handler::parallel_for(range<1> r, const Kernel& k) {
  detail::run_range1(r[0], k);
}
template <typename Kernel>
void handler::parallel_for(range<2> r, const Kernel& k) {
  detail::run_range2(r[0], r[1], k);
}
template <typename Kernel>
void handler::parallel_for(nd_range<1> r, const Kernel& k) {
  detail::run_nd_range1(r.get_global_range()[0], r.get_local_range()[0], k);
}
template <typename T>
void handler::fill(T* ptr, const T& value, size_t count) {
  const T v = value;
  detail::run_range1(count, [=](id<1> i) { ptr[i] = v; });
}

namespace property {
namespace queue {
struct in_order {};
}  // namespace queue
}  // namespace property

struct property_list {
  property_list() = default;
  template <typename... Props>
  property_list(Props...) {}
};

class queue {
 public:
  queue() = default;
  explicit queue(const property_list&) {}

  template <typename CommandGroup>
  event submit(const CommandGroup& cgf) {
    handler h;
    cgf(h);
    return event{};
  }
  template <typename Kernel>
  event parallel_for(range<1> r, const Kernel& k) {
    detail::run_range1(r[0], k);
    return event{};
  }
  template <typename Kernel>
  event parallel_for(range<2> r, const Kernel& k) {
    detail::run_range2(r[0], r[1], k);
    return event{};
  }
  template <typename Kernel>
  event parallel_for(nd_range<1> r, const Kernel& k) {
    detail::run_nd_range1(r.get_global_range()[0], r.get_local_range()[0], k);
    return event{};
  }
  template <typename Kernel>
  event single_task(const Kernel& k) {
    k();
    return event{};
  }
  event memcpy(void* dst, const void* src, size_t bytes) {
    if (bytes != 0) std::memcpy(dst, src, bytes);
    return event{};
  }
  event memset(void* ptr, int value, size_t bytes) {
    if (bytes != 0) std::memset(ptr, value, bytes);
    return event{};
  }
  template <typename T>
  event fill(T* ptr, const T& value, size_t count) {
    handler h;
    h.fill(ptr, value, count);
    return event{};
  }
  void wait() {}
  void wait_and_throw() {}
};

namespace detail {

// USM allocations come from a small cache of freed blocks, as SYCL runtimes pool USM: kernels
// allocate their scratch per call, and fresh pages would cost a page fault each on first touch.
class UsmCache {
 public:
  static UsmCache& instance() {
    static UsmCache cache;
    return cache;
  }
  void* allocate(size_t bytes) {
    // 64-byte alignment: a cache line, and enough for any vector load the compiler emits.
    const size_t rounded = ((bytes == 0 ? 1 : bytes) + 63) / 64 * 64;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      // the smallest cached block that fits and wastes at most half of itself
      auto it = free_.lower_bound(rounded);
      if (it != free_.end() && it->first <= 2 * rounded) {
        void* p = it->second;
        cached_bytes_ -= it->first;
        sizes_[p] = it->first;
        free_.erase(it);
        return p;
      }
    }
    void* p = std::aligned_alloc(64, rounded);
    if (p == nullptr) throw std::bad_alloc();
    std::lock_guard<std::mutex> lock(mutex_);
    sizes_[p] = rounded;
    return p;
  }
  void release(void* p) {
    if (p == nullptr) return;
    std::lock_guard<std::mutex> lock(mutex_);
    const auto it = sizes_.find(p);
    const size_t bytes = it->second;
    sizes_.erase(it);
    if (bytes > kMaxCachedBytes) {
      std::free(p);
      return;
    }
    free_.emplace(bytes, p);
    cached_bytes_ += bytes;
    while (cached_bytes_ > kMaxCachedBytes) {  // drop the largest blocks first
      auto last = std::prev(free_.end());
      cached_bytes_ -= last->first;
      std::free(last->second);
      free_.erase(last);
    }
  }
  ~UsmCache() {
    for (auto& block : free_) std::free(block.second);
  }

 private:
  static constexpr size_t kMaxCachedBytes = size_t{256} << 20;
  std::mutex mutex_;
  std::multimap<size_t, void*> free_;
  std::unordered_map<void*, size_t> sizes_;
  size_t cached_bytes_ = 0;
};

inline void* usm_alloc(size_t bytes) { return UsmCache::instance().allocate(bytes); }

}  // namespace detail

template <typename T>
T* malloc_device(size_t count, const queue&) {
  return static_cast<T*>(detail::usm_alloc(count * sizeof(T)));
}
template <typename T>
T* malloc_shared(size_t count, const queue&) {
  return static_cast<T*>(detail::usm_alloc(count * sizeof(T)));
}
template <typename T>
T* malloc_host(size_t count, const queue&) {
  return static_cast<T*>(detail::usm_alloc(count * sizeof(T)));
}
inline void free(void* ptr, const queue&) { detail::UsmCache::instance().release(ptr); }

}  // namespace sycl

// Host-subset extension: the number of threads kernels run on (0: OpenMP's default, adjusted to
// the machine's load).
inline void v2x_host_set_num_threads(int n) { sycl::detail::requested_threads() = n < 0 ? 0 : n; }
inline int v2x_host_num_threads() { return sycl::detail::team_size(); }
