// Anonymous memory on huge pages for large streamed data: huge_page_buffer (a block owned RAII:
// the model weights) and huge_page_allocator (std::vector storage: the recurrent states).
//
// Why not the heap: weights are streamed once per decode step (GB-sized, far beyond every cache)
// and a batch's states are read and written once, so a step's time is the memory bandwidth. Two
// things cost bandwidth here:
//   - 4 KiB pages: one TLB miss per 4 KiB streamed. The block is aligned to 2 MiB and advised
//     MADV_HUGEPAGE, so with transparent huge pages on ("always" or "madvise") it is backed by
//     2 MiB pages;
//   - file-backed pages: on some virtual machines reading a file mapping (page cache) runs several
//     times slower than anonymous memory (measured on the build machine, bench/results/README.md).
// The memory is zero until written; pages are committed on first touch.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <utility>

#include "rodimus/core/error.hpp"

namespace rodimus {

namespace detail {

constexpr std::size_t kHugePageBytes = std::size_t(2) << 20;

/// `bytes` (> 0) of zeroed anonymous memory, 2 MiB aligned and advised MADV_HUGEPAGE; nullptr
/// when the system refuses. Release with huge_page_unmap(p, bytes).
inline void* huge_page_map(std::size_t bytes) noexcept {
  if (bytes == 0 || bytes > SIZE_MAX - 2 * kHugePageBytes) {
    errno = ENOMEM;
    return nullptr;
  }
  const std::size_t mapped = (bytes + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes;
  // Over-map by one huge page and unmap the unaligned head and tail.
  const std::size_t raw_bytes = mapped + kHugePageBytes;
  void* raw =
      ::mmap(nullptr, raw_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return nullptr;
  const auto start = reinterpret_cast<std::uintptr_t>(raw);
  const std::uintptr_t aligned = (start + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes;
  const std::size_t head = aligned - start, tail = raw_bytes - head - mapped;
  if (head) ::munmap(raw, head);
  if (tail) ::munmap(reinterpret_cast<void*>(aligned + mapped), tail);
  void* p = reinterpret_cast<void*>(aligned);
#ifdef MADV_HUGEPAGE
  (void)::madvise(p, mapped, MADV_HUGEPAGE); // advice only: fine if THP is off
#endif
  return p;
}

inline void huge_page_unmap(void* p, std::size_t bytes) noexcept {
  if (p) ::munmap(p, (bytes + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes);
}

} // namespace detail

/// The machine's physical memory in bytes, or 0 where unknown: sizes beyond it cannot be held in
/// anonymous memory (zero-filling or copying into an over-committed mapping ends in the OOM
/// killer, not an error).
inline double physical_memory_bytes() noexcept {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? double(pages) * double(page) : 0.0;
}

class huge_page_buffer {
public:
  static constexpr std::size_t huge_page_bytes = detail::kHugePageBytes;

  huge_page_buffer() = default;
  /// `bytes` of zeroed memory, 2 MiB aligned; throws rodimus::error naming `what` on failure.
  huge_page_buffer(std::size_t bytes, const std::string& what) {
    if (bytes == 0) return;
    data_ = static_cast<unsigned char*>(detail::huge_page_map(bytes));
    if (!data_)
      throw error(what + ": cannot allocate " + std::to_string(bytes) +
                  " bytes of memory: " + std::strerror(errno));
    size_ = bytes;
  }
  huge_page_buffer(const huge_page_buffer&) = delete;
  huge_page_buffer& operator=(const huge_page_buffer&) = delete;
  huge_page_buffer(huge_page_buffer&& o) noexcept { swap(o); }
  huge_page_buffer& operator=(huge_page_buffer&& o) noexcept {
    if (this != &o) {
      release();
      swap(o);
    }
    return *this;
  }
  ~huge_page_buffer() { release(); }

  unsigned char* data() noexcept { return data_; }
  const unsigned char* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }

private:
  void swap(huge_page_buffer& o) noexcept {
    std::swap(data_, o.data_);
    std::swap(size_, o.size_);
  }
  void release() noexcept {
    detail::huge_page_unmap(data_, size_);
    data_ = nullptr;
    size_ = 0;
  }

  unsigned char* data_ = nullptr;
  std::size_t size_ = 0;
};

/// A std::allocator that puts allocations of at least one huge page (2 MiB) on huge pages (as
/// huge_page_buffer) and smaller ones on the heap: for std::vector-held buffers that are streamed
/// (the recurrent states of a state pool).
template <class T> struct huge_page_allocator {
  using value_type = T;
  huge_page_allocator() = default;
  template <class U> huge_page_allocator(const huge_page_allocator<U>&) noexcept {}

  T* allocate(std::size_t n) {
    if (n > SIZE_MAX / sizeof(T)) throw std::bad_array_new_length();
    const std::size_t bytes = n * sizeof(T);
    if (bytes < detail::kHugePageBytes) return std::allocator<T>().allocate(n);
    void* p = detail::huge_page_map(bytes);
    if (!p) throw std::bad_alloc();
    return static_cast<T*>(p);
  }
  void deallocate(T* p, std::size_t n) noexcept {
    if (n * sizeof(T) < detail::kHugePageBytes)
      std::allocator<T>().deallocate(p, n);
    else
      detail::huge_page_unmap(p, n * sizeof(T));
  }
  template <class U> bool operator==(const huge_page_allocator<U>&) const noexcept { return true; }
  template <class U> bool operator!=(const huge_page_allocator<U>&) const noexcept { return false; }
};

} // namespace rodimus
