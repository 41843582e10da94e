// Memory of a backend: the one small concept that the runtime (weights, state pool, activations,
// workspaces) and the tests are written against, so that the same code runs on the host backends
// and on a device.
//
//   backend_buffer<Backend> buf(be, bytes, "what")   RAII, move-only block in the backend's memory
//                                                    (zero-filled); throws rodimus::error naming
//                                                    `what` when it cannot be had
//   copy_to_backend(be, dst, src, bytes)             host -> backend memory
//   copy_to_host(be, dst, src, bytes)                backend -> host; complete when it returns
//   copy_within(be, dst, src, bytes)                 backend -> backend, ordered with the kernels
//   fill_zero(be, dst, bytes)
//   synchronize(be)                                  wait for everything queued on the backend
//   memory_traits<Backend>::host_accessible          true where the host may dereference its memory
//
// Copies and fills return a status (device_error naming the call) and never throw, so they can run
// between kernels. Each backend implements them in a specialisation of memory_ops: the host
// backends (scalar, cpu<Arch>) in backend/cpu/memory.hpp (ordinary host memory, large blocks on
// 2 MiB pages; every operation immediate), CUDA in backend/cuda/memory.cuh (on the tag's stream).
// Include the backend's header, not this one alone, where a buffer is made.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <utility>

#include "rodimus/core/backend.hpp"
#include "rodimus/core/error.hpp"
#include "rodimus/core/status.hpp"

namespace rodimus {

/// How one backend allocates, copies and synchronises; specialised per backend tag.
template <class Backend> struct memory_ops;

template <class Backend> struct memory_traits {
  static constexpr bool host_accessible = memory_ops<Backend>::host_accessible;
};

template <class Backend>
[[nodiscard]] status copy_to_backend(const Backend& be, void* dst, const void* src,
                                     std::size_t bytes) noexcept {
  return memory_ops<Backend>::to_backend(be, dst, src, bytes);
}
template <class Backend>
[[nodiscard]] status copy_to_host(const Backend& be, void* dst, const void* src,
                                  std::size_t bytes) noexcept {
  return memory_ops<Backend>::to_host(be, dst, src, bytes);
}
template <class Backend>
[[nodiscard]] status copy_within(const Backend& be, void* dst, const void* src,
                                 std::size_t bytes) noexcept {
  return memory_ops<Backend>::within(be, dst, src, bytes);
}
template <class Backend>
[[nodiscard]] status fill_zero(const Backend& be, void* dst, std::size_t bytes) noexcept {
  return memory_ops<Backend>::zero(be, dst, bytes);
}
template <class Backend> [[nodiscard]] status synchronize(const Backend& be) noexcept {
  return memory_ops<Backend>::sync(be);
}

/// A block of the backend's memory, zero-filled, owned (freed on destruction), move-only.
template <class Backend> class backend_buffer {
public:
  backend_buffer() = default;
  backend_buffer(const Backend& be, std::size_t bytes, const std::string& what)
      : be_(be), bytes_(bytes) {
    if (bytes == 0) return;
    data_ = static_cast<unsigned char*>(memory_ops<Backend>::allocate(be, bytes, what));
    const status s = memory_ops<Backend>::zero(be, data_, bytes);
    if (!s.ok()) {
      memory_ops<Backend>::release(be_, data_, bytes_);
      throw error(what + ": " + to_string(s));
    }
  }
  backend_buffer(const backend_buffer&) = delete;
  backend_buffer& operator=(const backend_buffer&) = delete;
  backend_buffer(backend_buffer&& o) noexcept { swap(o); }
  backend_buffer& operator=(backend_buffer&& o) noexcept {
    if (this != &o) {
      backend_buffer tmp(std::move(o));
      swap(tmp);
    }
    return *this;
  }
  ~backend_buffer() {
    if (data_) memory_ops<Backend>::release(be_, data_, bytes_);
  }

  unsigned char* data() const noexcept { return data_; }
  template <class T> T* as() const noexcept { return reinterpret_cast<T*>(data_); }
  std::size_t size() const noexcept { return bytes_; }
  const Backend& backend() const noexcept { return be_; }

  void swap(backend_buffer& o) noexcept {
    std::swap(be_, o.be_);
    std::swap(data_, o.data_);
    std::swap(bytes_, o.bytes_);
  }

private:
  Backend be_{};
  unsigned char* data_ = nullptr;
  std::size_t bytes_ = 0;
};

/// Make `buf` hold at least `bytes` (a new, zero-filled block when it is smaller; contents are not
/// kept). For buffers that grow with the batch, allocated outside the steps that must not allocate.
template <class Backend>
void reserve(backend_buffer<Backend>& buf, const Backend& be, std::size_t bytes,
             const std::string& what) {
  if (buf.size() < bytes) buf = backend_buffer<Backend>(be, bytes, what);
}

} // namespace rodimus

namespace rodimus {

/// Small host -> backend uploads that never make the host wait for the backend (the model runner's
/// batch metadata before each step). The host backends copy at once; the CUDA backend
/// (backend/cuda/memory.cuh) copies from pinned host memory, alternating between two staging
/// blocks, each reused only once the copy queued from it two uploads earlier has run.
template <class Backend> class upload_staging {
public:
  explicit upload_staging(const Backend& be) : be_(be) {}
  /// Copy `bytes` from `src` to `dst` (backend memory), ordered before the work queued after it.
  [[nodiscard]] status upload(void* dst, const void* src, std::size_t bytes) {
    return copy_to_backend(be_, dst, src, bytes);
  }

private:
  Backend be_;
};

} // namespace rodimus
