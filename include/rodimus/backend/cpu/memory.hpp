// The host backends' memory (scalar and cpu<Arch>: both run on the host): the memory_ops of the
// concept in core/memory.hpp, as backend/cuda/memory.cuh is CUDA's. Ordinary host memory, blocks
// of 2 MiB and more on huge pages (backend/cpu/huge_page_buffer.hpp), smaller ones 256-byte
// aligned from the heap, all zero-filled; copies and fills complete on return.
#pragma once

#include <cstddef>
#include <cstring>
#include <new>
#include <string>

#include "rodimus/backend/cpu/huge_page_buffer.hpp"
#include "rodimus/core/backend.hpp"
#include "rodimus/core/error.hpp"
#include "rodimus/core/memory.hpp"
#include "rodimus/core/status.hpp"

namespace rodimus {

/// The host backends' memory: plain host memory, operations complete on return.
struct host_memory_ops {
  static constexpr bool host_accessible = true;
  static constexpr std::size_t alignment = 256;

  static void* allocate(std::size_t bytes, const std::string& what) {
    if (bytes >= detail::kHugePageBytes) { // large blocks on huge pages (zeroed by the kernel)
      void* p = detail::huge_page_map(bytes);
      if (!p) throw error(what + ": cannot allocate " + std::to_string(bytes) + " bytes");
      return p;
    }
    void* p = ::operator new(bytes == 0 ? 1 : bytes, std::align_val_t(alignment), std::nothrow);
    if (!p) throw error(what + ": cannot allocate " + std::to_string(bytes) + " bytes");
    std::memset(p, 0, bytes);
    return p;
  }
  static void release(void* p, std::size_t bytes) noexcept {
    if (!p) return;
    if (bytes >= detail::kHugePageBytes)
      detail::huge_page_unmap(p, bytes);
    else
      ::operator delete(p, std::align_val_t(alignment));
  }
  static status copy(void* dst, const void* src, std::size_t bytes) noexcept {
    if (bytes) std::memmove(dst, src, bytes);
    return status::success();
  }
  static status fill_zero(void* dst, std::size_t bytes) noexcept {
    if (bytes) std::memset(dst, 0, bytes);
    return status::success();
  }
};

template <> struct memory_ops<scalar> : host_memory_ops {
  static void* allocate(const scalar&, std::size_t n, const std::string& w) {
    return host_memory_ops::allocate(n, w);
  }
  static void release(const scalar&, void* p, std::size_t n) noexcept {
    host_memory_ops::release(p, n);
  }
  static status to_backend(const scalar&, void* d, const void* s, std::size_t n) noexcept {
    return copy(d, s, n);
  }
  static status to_host(const scalar&, void* d, const void* s, std::size_t n) noexcept {
    return copy(d, s, n);
  }
  static status within(const scalar&, void* d, const void* s, std::size_t n) noexcept {
    return copy(d, s, n);
  }
  static status zero(const scalar&, void* d, std::size_t n) noexcept { return fill_zero(d, n); }
  static status sync(const scalar&) noexcept { return status::success(); }
};

template <class Arch> struct memory_ops<cpu<Arch>> : host_memory_ops {
  static void* allocate(const cpu<Arch>&, std::size_t n, const std::string& w) {
    return host_memory_ops::allocate(n, w);
  }
  static void release(const cpu<Arch>&, void* p, std::size_t n) noexcept {
    host_memory_ops::release(p, n);
  }
  static status to_backend(const cpu<Arch>&, void* d, const void* s, std::size_t n) noexcept {
    return copy(d, s, n);
  }
  static status to_host(const cpu<Arch>&, void* d, const void* s, std::size_t n) noexcept {
    return copy(d, s, n);
  }
  static status within(const cpu<Arch>&, void* d, const void* s, std::size_t n) noexcept {
    return copy(d, s, n);
  }
  static status zero(const cpu<Arch>&, void* d, std::size_t n) noexcept { return fill_zero(d, n); }
  static status sync(const cpu<Arch>&) noexcept { return status::success(); }
};

} // namespace rodimus
