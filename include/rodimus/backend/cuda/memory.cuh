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

} // namespace rodimus
