// cuda_context: the library handles that some CUDA calls need (declared in backend/cuda/cuda.cuh).
//
//   cudaStream_t stream = ...;                  // owned by the caller
//   rodimus::cuda_context ctx(stream);          // throws rodimus::error naming what failed
//   rodimus::cuda<90> be{stream, &ctx};         // or ctx.backend<90>()
//   linear(be, args, ws);                       // cuBLAS work is queued on `stream`
//
// What it owns: a cuBLAS handle bound to `stream` (cublasSetStream) and a cuBLAS workspace in
// device memory (cublasSetWorkspace), so every cuBLAS call made through it allocates nothing and
// can be captured in a CUDA graph. The handle uses the default math mode (no TF32: an f32 GEMM with
// CUBLAS_COMPUTE_32F is computed in f32) and host pointer mode (alpha, beta passed by value).
//
// Rules:
//   - One context serves ONE stream: the tag of every call that uses it must be
//     `cuda<Sm>{ctx.stream(), &ctx}`; a call whose tag names another stream returns bad_argument
//     "context" (rebinding the handle with cublasSetStream would also reset its workspace to
//     cuBLAS's own pool, which allocates). Make one context per stream.
//   - It belongs to the device that was current when it was made; calls use it on that device.
//   - Like a cuBLAS handle, it is used by one host thread at a time.
//   - Non-copyable and non-movable (tags hold its address). The destructor destroys the handle,
//     then frees the workspace (both wait for work queued on the device).
#pragma once

#include <cublas_api.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <string>

#include "rodimus/backend/cuda/cuda.cuh"
#include "rodimus/core/error.hpp"
#include "rodimus/core/status.hpp"

namespace rodimus {

struct cuda_context {
  /// cuBLAS workspace size: what NVIDIA recommends for Hopper (32 MiB; 4 MiB suffices before it).
  static constexpr std::size_t default_cublas_workspace_bytes = std::size_t(32) << 20;

  /// A cuBLAS handle bound to `stream` with a workspace of `cublas_workspace_bytes` bytes, on the
  /// current device. Throws rodimus::error naming the call that failed (nothing leaks).
  explicit cuda_context(cudaStream_t stream,
                        std::size_t cublas_workspace_bytes = default_cublas_workspace_bytes)
      : stream_(stream), workspace_bytes_(cublas_workspace_bytes) {
    check(cublasCreate(&cublas_), "cublasCreate");
    try {
      check(cublasSetStream(cublas_, stream_), "cublasSetStream");
      if (workspace_bytes_ > 0) {
        const cudaError_t e = cudaMalloc(&workspace_, workspace_bytes_);
        if (e != cudaSuccess) {
          (void)cudaGetLastError();
          workspace_ = nullptr;
          throw error("cuda_context: cannot allocate " + std::to_string(workspace_bytes_) +
                      " bytes of cuBLAS workspace (" + cudaGetErrorString(e) + ")");
        }
        // Defined contents (compute-sanitizer initcheck), once, at set-up.
        const cudaError_t z = cudaMemset(workspace_, 0, workspace_bytes_);
        if (z != cudaSuccess) {
          (void)cudaGetLastError();
          throw error(std::string("cuda_context: cudaMemset of the cuBLAS workspace failed (") +
                      cudaGetErrorString(z) + ")");
        }
      }
      // After cublasSetStream: setting a stream resets the workspace to cuBLAS's own pool.
      check(cublasSetWorkspace(cublas_, workspace_, workspace_bytes_), "cublasSetWorkspace");
      check(cublasSetMathMode(cublas_, CUBLAS_DEFAULT_MATH), "cublasSetMathMode");
      check(cublasSetPointerMode(cublas_, CUBLAS_POINTER_MODE_HOST), "cublasSetPointerMode");
    } catch (...) {
      release();
      throw;
    }
  }

  cuda_context(const cuda_context&) = delete;
  cuda_context& operator=(const cuda_context&) = delete;
  cuda_context(cuda_context&&) = delete;
  cuda_context& operator=(cuda_context&&) = delete;

  ~cuda_context() { release(); }

  /// The stream this context serves.
  cudaStream_t stream() const noexcept { return stream_; }
  /// The cuBLAS handle (bound to stream(), workspace set).
  cublasHandle_t cublas() const noexcept { return cublas_; }
  std::size_t cublas_workspace_bytes() const noexcept { return workspace_bytes_; }

  /// The backend tag for calls on this context's stream.
  template <int Sm = 90> cuda<Sm> backend() noexcept {
    cuda<Sm> be;
    be.stream = stream_;
    be.context = this;
    return be;
  }

private:
  static void check(cublasStatus_t s, const char* call) {
    if (s != CUBLAS_STATUS_SUCCESS)
      throw error(std::string("cuda_context: ") + call + " failed (" + cublasGetStatusName(s) +
                  ": " + cublasGetStatusString(s) + ")");
  }
  void release() noexcept {
    if (cublas_) (void)cublasDestroy(cublas_);
    cublas_ = nullptr;
    if (workspace_) (void)cudaFree(workspace_);
    workspace_ = nullptr;
  }

  cudaStream_t stream_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  void* workspace_ = nullptr;
  std::size_t workspace_bytes_ = 0;
};

namespace detail {
/// ok, or device_error naming `what` (a static string) when a cuBLAS call did not succeed.
inline status cublas_status(cublasStatus_t s, const char* what) noexcept {
  return s == CUBLAS_STATUS_SUCCESS ? status::success()
                                    : status::fail(status_code::device_error, what);
}
} // namespace detail

} // namespace rodimus

/// Return status_code::device_error naming `call` from a function returning `status` when the
/// cuBLAS call fails.
#define RODIMUS_CUBLAS_TRY(call) RODIMUS_TRY(::rodimus::detail::cublas_status((call), #call))
