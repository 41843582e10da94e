// The CUDA backend tag and its error helper.
//
//   rodimus::cuda<Sm>   Sm = compute capability * 10 the kernels are tuned for (90: Hopper,
//   H100/H200).
//                       It carries the stream every kernel of a call is launched on (nullptr: the
//                       legacy default stream) and the library handles of the calls that need
//                       them (cuda_context). Kernels only enqueue work: they never synchronise,
//                       allocate or print; a call returns once its launches are queued.
//   RODIMUS_CUDA_TRY(call)   in a function returning `status`: when the CUDA runtime call fails,
//                       return status_code::device_error naming the call ("cudaGetLastError()").
#pragma once

#include <cuda_runtime.h>

#include "rodimus/core/backend.hpp"
#include "rodimus/core/macros.hpp"
#include "rodimus/core/status.hpp"

namespace rodimus {

/// Library handles that some CUDA kernels need (cuBLAS for `linear`), created once per stream by
/// the caller and shared by every call on it (defined in backend/cuda/context.cuh).
struct cuda_context;

/// CUDA backend for compute capability Sm/10 (completes the declaration in core/backend.hpp).
/// `stream`: where every kernel of a call is queued; `context`: the handles of the calls that need
/// one (nullptr where none is used; such a call then returns null_pointer "context").
template <int Sm = 90> struct cuda {
  cudaStream_t stream = nullptr;
  cuda_context* context = nullptr;
};

namespace detail {
/// ok, or device_error naming `what` (a static string) when `e` is not cudaSuccess.
inline status cuda_status(cudaError_t e, const char* what) noexcept {
  return e == cudaSuccess ? status::success() : status::fail(status_code::device_error, what);
}
} // namespace detail

} // namespace rodimus

/// Return status_code::device_error naming `call` from a function returning `status` when the CUDA
/// runtime call fails.
#define RODIMUS_CUDA_TRY(call) RODIMUS_TRY(::rodimus::detail::cuda_status((call), #call))
