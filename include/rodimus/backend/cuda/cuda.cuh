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

/// How `linear` multiplies f32 activations by 16-bit weights on the tensor cores (rows beyond its
/// GEMV kernel's; backend/cuda/linear.cuh, "Numerics"):
///   exact    x as the sum of two 16-bit parts, two products (one GEMM over both parts at decode
///            batches): f32-level accuracy (the default;
///            the golden fixtures are checked this way);
///   rounded  x rounded to the weight's dtype once, one product: what a model run in bf16 does,
///            half the tensor-core work, an error of one 16-bit rounding of x per product (the
///            bf16 golden logits moved by about 3e-3 on the H200). The SW-SKA prefill then also
///            runs on bf16 tensor cores (backend/cuda/swska_prefill_mma.cuh: q, k, v and the
///            softmax weights rounded to bf16 once, f32 accumulation and softmax).
enum class cuda_matmul : unsigned char { exact, rounded };

/// How consecutive kernels on the stream are launched (backend/cuda/launch.cuh):
///   overlapped  programmatic dependent launch on sm_90 and newer (the default): a kernel is
///               scheduled while the one before it finishes and runs what depends on no earlier
///               kernel (the GEMV's first weight loads) before it waits for that kernel's results;
///               hides most of the launch gap and the first memory round trip of each kernel,
///               which is much of a batch-1 decode step. The same bits as serial.
///   serial      each kernel is scheduled after the previous one has finished (plain stream
///               order; what older GPUs always do).
enum class cuda_launch : unsigned char { overlapped, serial };

/// Choices of individual kernels' tiles, for engines that tune per GPU and for tests and
/// benchmarks that cover or compare each one (0: chosen per call from the shape, the default).
/// Every GLA choice gives the same bits; a pair not listed returns unsupported "tuning".
///   gla_columns, gla_warps   the tensor-core chunked GLA (gla_chunked with cuda_matmul::rounded,
///                            backend/cuda/gla_chunked_mma.cuh): value columns per CTA and warps
///                            per CTA, one of 32 / 8, 64 / 8, 128 / 8, 128 / 16 at K <= 64 (K in
///                            65 .. 128 always runs 64 / 8).
///   swska_rows, swska_keys   the tensor-core SW-SKA prefill (swska_prefill with
///                            cuda_matmul::rounded, backend/cuda/swska_prefill_mma.cuh): query
///                            rows per warp and keys per shared-memory tile, one of 16 / 64,
///                            32 / 32, 32 / 64. The tiles agree within the rounded mode's bound,
///                            not bit for bit (a sequence's key tiles start at the first key of
///                            the query tile, 64 or 128 tokens, so the online softmax rescales
///                            at other keys). A tile the device has not the shared memory for
///                            returns unsupported "tuning" too.
///   swska_decode_min_keys    the SW-SKA decode: the fewest keys of a window piece (1 .. 4096),
///                            in place of swska_policy::decode_min_split_keys. It changes the
///                            pieces (their number, fixed by shapes, and how many a row's
///                            history uses), so the workspace too (swska_decode_workspace_bytes
///                            of the same tag); results agree within f32 rounding (the online
///                            softmax meets the keys in other groups). Out of range: unsupported
///                            "tuning".
///   gemv                     the GEMV of linear, rmsnorm_linear and swiglu_linear at 1 or 2 rows
///                            of x: policy (linear_policy::gemv_stream), registers (the register
///                            kernel of backend/cuda/linear.cuh) or streamed (sm_90 and newer: the
///                            kernel of backend/cuda/linear_stream.cuh, whose weight rows arrive
///                            in shared memory by bulk copies, where its layouts allow; else the
///                            register kernel). Both multiply exactly in f32; the sums' order
///                            differs, so results agree within f32 rounding, not bit for bit.
enum class cuda_gemv : unsigned char { policy, registers, streamed };

struct cuda_tuning {
  int gla_columns = 0;
  int gla_warps = 0;
  int swska_rows = 0;
  int swska_keys = 0;
  int swska_decode_min_keys = 0;
  cuda_gemv gemv = cuda_gemv::policy;
};

/// CUDA backend for compute capability Sm/10 (completes the declaration in core/backend.hpp).
/// `stream`: where every kernel of a call is queued; `context`: the handles of the calls that need
/// one (nullptr where none is used; such a call then returns null_pointer "context"); `matmul`:
/// see cuda_matmul; `launch`: see cuda_launch; `tuning`: see cuda_tuning.
template <int Sm = 90> struct cuda {
  cudaStream_t stream = nullptr;
  cuda_context* context = nullptr;
  cuda_matmul matmul = cuda_matmul::exact;
  cuda_launch launch = cuda_launch::overlapped;
  cuda_tuning tuning{};
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
