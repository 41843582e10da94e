// Memory of the CUDA backend (the concept is in core/memory.hpp): device memory from cudaMalloc,
// copies and fills queued on the tag's stream.
//   - allocate / release: cudaMalloc / cudaFree, at set-up (never inside a step that may be
//     captured in a CUDA graph);
//   - copy_to_backend, copy_within, fill_zero: cudaMemcpyAsync / cudaMemsetAsync on be.stream,
//     ordered with the kernels queued there;
//   - copy_to_host: queued on be.stream, then the stream is synchronised so the host may read;
//   - synchronize: cudaStreamSynchronize(be.stream).
#pragma once

#include <cuda_runtime.h>

#include <cstring>
#include <string>

#include "rodimus/backend/cuda/cuda.cuh"
#include "rodimus/core/error.hpp"
#include "rodimus/core/memory.hpp"

namespace rodimus {

template <int Sm> struct memory_ops<cuda<Sm>> {
  static constexpr bool host_accessible = false;

  static void* allocate(const cuda<Sm>&, std::size_t bytes, const std::string& what) {
    void* p = nullptr;
    const cudaError_t e = cudaMalloc(&p, bytes == 0 ? 1 : bytes);
    if (e != cudaSuccess) {
      (void)cudaGetLastError(); // clear the sticky-free error so later calls are not blamed
      throw error(what + ": cannot allocate " + std::to_string(bytes) +
                  " bytes of device memory (" + cudaGetErrorString(e) + ")");
    }
    return p;
  }
  static void release(const cuda<Sm>&, void* p, std::size_t) noexcept {
    if (p) (void)cudaFree(p);
  }
  static status to_backend(const cuda<Sm>& be, void* d, const void* s, std::size_t n) noexcept {
    if (n == 0) return status::success();
    RODIMUS_CUDA_TRY(cudaMemcpyAsync(d, s, n, cudaMemcpyHostToDevice, be.stream));
    return status::success();
  }
  static status to_host(const cuda<Sm>& be, void* d, const void* s, std::size_t n) noexcept {
    if (n == 0) return status::success();
    RODIMUS_CUDA_TRY(cudaMemcpyAsync(d, s, n, cudaMemcpyDeviceToHost, be.stream));
    RODIMUS_CUDA_TRY(cudaStreamSynchronize(be.stream));
    return status::success();
  }
  static status within(const cuda<Sm>& be, void* d, const void* s, std::size_t n) noexcept {
    if (n == 0) return status::success();
    RODIMUS_CUDA_TRY(cudaMemcpyAsync(d, s, n, cudaMemcpyDeviceToDevice, be.stream));
    return status::success();
  }
  static status zero(const cuda<Sm>& be, void* d, std::size_t n) noexcept {
    if (n == 0) return status::success();
    RODIMUS_CUDA_TRY(cudaMemsetAsync(d, 0, n, be.stream));
    return status::success();
  }
  static status sync(const cuda<Sm>& be) noexcept {
    RODIMUS_CUDA_TRY(cudaStreamSynchronize(be.stream));
    return status::success();
  }
};

/// CUDA uploads from pinned memory: two staging blocks used in turn; before a block is rewritten,
/// the event recorded after the copy from it (two uploads earlier) is waited for, which has run
/// as soon as the step before last started: the host never waits for a step to finish.
template <int Sm> class upload_staging<cuda<Sm>> {
public:
  explicit upload_staging(const cuda<Sm>& be) : be_(be) {}
  upload_staging(const upload_staging&) = delete;
  upload_staging& operator=(const upload_staging&) = delete;
  ~upload_staging() {
    for (block& b : blocks_) {
      if (b.done) (void)cudaEventDestroy(b.done);
      if (b.host) (void)cudaFreeHost(b.host);
    }
  }

  [[nodiscard]] status upload(void* dst, const void* src, std::size_t bytes) {
    if (bytes == 0) return status::success();
    block& b = blocks_[next_];
    next_ ^= 1;
    if (b.done) RODIMUS_CUDA_TRY(cudaEventSynchronize(b.done)); // the copy two uploads ago
    if (b.bytes < bytes) {
      if (b.host) RODIMUS_CUDA_TRY(cudaFreeHost(b.host));
      b.host = nullptr;
      b.bytes = 0;
      RODIMUS_CUDA_TRY(cudaMallocHost(&b.host, bytes));
      b.bytes = bytes;
    }
    if (!b.done) RODIMUS_CUDA_TRY(cudaEventCreateWithFlags(&b.done, cudaEventDisableTiming));
    std::memcpy(b.host, src, bytes);
    RODIMUS_CUDA_TRY(cudaMemcpyAsync(dst, b.host, bytes, cudaMemcpyHostToDevice, be_.stream));
    RODIMUS_CUDA_TRY(cudaEventRecord(b.done, be_.stream));
    return status::success();
  }

private:
  struct block {
    void* host = nullptr;
    std::size_t bytes = 0;
    cudaEvent_t done = nullptr;
  };
  cuda<Sm> be_;
  block blocks_[2];
  int next_ = 0;
};

} // namespace rodimus
