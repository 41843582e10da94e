// linear() on the CUDA backend (math and shapes in rodimus/primitives/linear.hpp):
//
//   y[m, n] = sum_k x[m, k] * w[n, k]        x: (M, K) Act, w: (N, K) Weight, y: (M, N) Act
//
// Act: f32 (the model's activations), bf16, f16; Weight: f32, bf16, f16 used in place, in the
// dtype they are stored in. Every pointer is device memory; the call only enqueues work on
// be.stream (never synchronises, never allocates) and can be captured in a CUDA graph.
//
//   linear_workspace_bytes(be, args)   device workspace that linear(be, args, ws) needs (0 except
//                                      on the cuBLAS path with 16-bit weights and f32 x)
//   linear(be, args, ws)               ok, or the status the CPU backends give for the same bad
//                                      argument; null_pointer "context" when the cuBLAS path runs
//                                      without be.context, bad_argument "context" when be.context
//                                      serves another stream, workspace_too_small "ws"
//
// Two paths, chosen per call from the shapes (linear_policy<Sm>):
//   M <= gemv_max_m (decode), or any call cuBLAS cannot take: the GEMV kernel. It is bound by the
//     weight stream: each warp owns R weight rows, reads each of them once for all (up to MR = 8)
//     x rows with 16-byte loads in the stored dtype (U loads per row in flight per lane, widened to
//     f32 in registers), keeps MR x R f32 accumulators and sums them across the warp with
//     shuffles; a grid-stride loop covers any N. Few row groups (small N): the CTA's warps split
//     K instead and add their sums in shared memory. With inner stride 1 and 16-byte-aligned rows
//     (K a multiple of 8 for 16-bit weights, 4 for f32, or padded row strides) the loads are
//     vectors and the last K % 8 (K % 4) columns are read element-wise; otherwise (odd K with
//     packed rows, any other strides) every element is loaded on its own, still coalesced along K
//     when the inner stride is 1. M > MR loops over groups of MR rows of x (the weight rows are
//     then re-read, from L2).
//     rmsnorm_linear and swiglu_linear run this kernel with an input prologue (x + residual or
//     x * silu(gate), then RMSNorm or not: linear_input_prologue). At 1 or 2 rows of x whose K
//     f32 fit linear_policy::gemv_stage_max_bytes it is staged: each CTA puts its rows through
//     the prologue once, into shared memory, and the loop reads x from there as the plain kernel
//     does. (The kernel can also apply it to every item inside the loop; rmsnorm_linear and
//     swiglu_linear no longer ask for that: at 8 rows it recomputed the rows' prologue for every
//     row group, 2.24 ms for the 1.6B model's LM head and 112 us a mid-size projection on an
//     H200, bench/results/2026-12-06-h200-s13/; past 2 rows they take cuBLAS's operand,
//     linear_operand.cuh.)
//   M > gemv_max_m with unit inner strides, row strides >= the row length (cuBLAS's leading
//     dimensions) and sizes below 2^31: cuBLAS (be.context's handle, which has its own workspace).
//     Row-major y = x w^T is, in cuBLAS's column-major terms, y^T (N x M, ld = y.stride[0]) =
//     op_T(w: K x N, ld = w.stride[0]) . (x^T: K x M, ld = x.stride[0]): one cublasGemmEx with
//     transa = T, transb = N, no data transposed. CUBLAS_COMPUTE_32F throughout (the handle's
//     default math mode: no TF32, an f32 x f32 product is computed in f32).
//       f32 x f32:    A, B, C f32.
//       bf16 x bf16, f16 x f16 (16-bit activations): A, B, C in that dtype.
//       f32 x bf16, f32 x f16: cuBLAS does not mix A and B types, so one small kernel first
//                     splits x into two parts in the weight's dtype, hi = W(x) and lo = W(x - hi),
//                     in the caller's workspace (2 x M x K values, row stride K, and at decode
//                     batches 2 x M x N f32 sums, below); then two
//                     GEMMs, y = w . hi (beta 0) and y += w . lo (beta 1), A = w, B = hi / lo, C
//                     = y in f32. Twice the tensor-core work of one product, and exact to f32
//                     level: the model's golden logits need it (x rounded to bf16 once moved
//                     the bf16 golden logits by 3e-3 and tiny-coder's by 9e-2 on the H200).
//                     At decode batches (M <= 128 and 8 M <= K: linear_policy::
//                     gemm_stacked_max_m) the parts are one (2M, K) operand [hi; lo] and one GEMM
//                     writes their 2M x N products to the workspace, which a small kernel adds,
//                     y = (w . hi) + (w . lo) in f32 as the beta-1 GEMM rounds it: the weights
//                     are read once instead of twice.
//                     be.matmul == cuda_matmul::rounded: hi only, one GEMM (x rounded once to
//                     the weight's dtype, as a bf16 model computes; half the tensor-core work).
//     Other mixes (e.g. bf16 activations with f16 weights) are not model configurations; they take
//     the GEMV kernel at any M (correct, not fast).
//
// Numerics. Both paths multiply in f32 and accumulate in f32 (the order differs from the CPU).
//   GEMV: x and w are used exactly (widened, never rounded).
//   cuBLAS with 16-bit weights and f32 x: x is multiplied as hi + lo, which equals x to a relative
//     u^2 per element (unit roundoff u: bf16 2^-8, f16 2^-11), so for each output
//         |y_cuda[m, n] - y_exact[m, n]| <= (u^2 + K 2^-23) * sum_k |x[m, k] w[n, k]|
//     (the second term bounds the f32 accumulation). f16 additionally needs |x| < 65520 (larger
//     values become inf) and represents lo below 2^-14 as a subnormal (an absolute error of at
//     most 2^-25 per element). tests/cases/linear_cases.hpp checks exactly this bound.
//   cuBLAS with 16-bit weights, f32 x and cuda_matmul::rounded: x is multiplied as W(x), within a
//     relative u per element, so the bound above holds with u in place of u^2.
//   cuBLAS f32 x f32 and 16-bit x 16-bit: inputs exact; only the f32 accumulation (and the final
//     rounding to a 16-bit y) differ from the reference.
#pragma once

#include <cublas_v2.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <climits>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "rodimus/backend/cuda/context.cuh"
#include "rodimus/backend/cuda/cuda.cuh"
#include "rodimus/backend/cuda/launch.cuh"
#include "rodimus/core/dtype.hpp"
#include "rodimus/core/status.hpp"
#include "rodimus/core/tensor_view.hpp"
#include "rodimus/core/workspace.hpp"
#include "rodimus/primitives/elementwise.hpp"
#include "rodimus/primitives/linear.hpp"

namespace rodimus {

/// Tuning constants of linear on cuda<Sm> (first version, not yet measured: a benchmark of the
/// Rodimus sizes, N, K in 1024..8192 and the LM head N = 126464, K = 2048, is to tune them).
///   gemv_max_m: the GEMV kernel streams the weights once for up to gemv_max_m rows of x; above
///     that, cuBLAS's tensor-core GEMM (weights read once per output tile) wins (measured below).
///   gemv_rows_*: weight rows per warp. Each x load is shared by R rows: with 8 x rows and f32 x,
///     every 16 B of bf16 weights needs 8 x 32 B of x from L1, so R = 4 keeps L1 traffic (about 4x
///     the HBM bytes) within what L1 serves; with 1-2 x rows R = 2 gives twice as many warps for
///     small N (N = 2048: 1024 warps).
///   gemv_unroll: 16-byte loads per weight row and lane issued before the first is used (R x U x
///     512 B in flight per warp).
///   gemv_split_*: a weight matrix of fewer than gemv_split_below_groups row groups (every Rodimus
///     projection but the LM head and the widest FFN/mixer inputs) does not give the GPU enough
///     loads in flight with a warp per row group (an H200 needs ~36 KB in flight per SM; a decode
///     step's in_proj, N = 64, ran at ~0.05 of the copy bandwidth): the K range is then split
///     over the gemv_split_warps warps of a CTA, one row group per CTA, and their partial sums
///     are added in shared memory in a fixed order (deterministic).
template <int Sm> struct linear_policy {
  // 2, not 8: from 3 rows of x on, cuBLAS on the stacked parts (below) reads the weights once at
  // a better rate than the GEMV kernel (bench_linear_cuda on an H100, 2026-12-07, 8192 x 2048 bf16:
  // 4 rows 19.3 us in the GEMV against 17.1 stacked, 8 rows 45.0 against 17.3; the LM head, 8
  // rows, 283 against 189 us; bench/results/2026-12-07-h100-s17/).
  static constexpr index_t gemv_max_m = 2;
  static constexpr int gemv_warps = 4; // warps per CTA (128 threads) without a K split
  static constexpr int gemv_rows_small_m = 2;
  static constexpr int gemv_rows = 4;
  static constexpr int gemv_unroll = 2;
  // bench_launch_cuda's bm_gemv_config on an H100 (2026-12-05, overlapped, batch 1, N x 2048
  // bf16): split over 8 warps 4.83 / 11.22 / 15.75 us at N = 2048 / 5456 / 8192 against 5.42 /
  // 10.04 / 12.49 us unsplit (4 warps): the split wins only at 2048 rows (1024 row groups).
  static constexpr index_t gemv_split_below_groups = 2048;
  static constexpr int gemv_split_warps = 8;
  // At most this many CTAs with the K split (4 per SM of 132; more row groups loop, and their x
  // row comes from L1): the same sweep at 2048 rows, 1024 CTAs -> 528, 4.79 -> 4.51 us plain and
  // 7.25 -> 6.66 us with rmsnorm_linear's prologue (264 CTAs: 6.67 / 8.88, too few loads in
  // flight).
  static constexpr index_t gemv_split_max_ctas = 528;
  // (An L2 prefetch of each CTA's weight rows before its overlapped wait,
  // cp.async.bulk.prefetch.L2, was measured and dropped: bench_launch_cuda on an H100, 2026-12-06,
  // made every size slower, 4.51 -> 4.58 us at 2048 rows, 11.88 -> 14.19 us at 8192 unsplit, 13.79
  // -> 16.17 us with the norm prologue; bench/results/2026-12-06-h100/.)
  // The input prologue (rmsnorm_linear, swiglu_linear) at one or two rows of x: staged (every CTA
  // puts its x rows through the prologue into shared memory once, then runs the plain kernel's
  // loop on them) where the rows take at most gemv_stage_max_bytes (32 KiB: K <= 8192 at one row,
  // 4096 at two); otherwise not fused, and from 3 rows cuBLAS's operand (top of the file). The
  // in-loop prologue cost 1.9-2.2 us a call over the plain kernel on an H100 (2026-12-06, 6.70
  // against 4.51 us at 2048 x 2048; capped at 64 registers it spilled 8-32 bytes at one row,
  // 136-180 at two). Staged (bm_gemv_config<..., Pro, Stage>, same run, H100, 2026-12-06, us, one x
  // row): 2048 x 2048 split, residual + norm: plain 4.53, in the loop 6.68, staged 5.74; 2048 x
  // 4096, gate + norm: 6.63 / 12.05 / 9.91; 2048 x 2728, gate: 5.19 / 9.60 / 7.23; two rows 8.27
  // / 15.76 / 10.26 at 2048 x 2048. What staging still costs is its round trips (one 16-byte piece
  // of x, operand and weight per thread at a time). Batch-1 decode of rodimus-plus-1.6b with it
  // (and RoPE inside the SW-SKA decode, the mixer's two-row projection call): 396.8 -> 427.5
  // tokens/s.
  static constexpr bool gemv_stage_prologue = true;
  // The streamed GEMV (linear_stream.cuh) at 1 or 2 rows of x on sm_90 and newer where its
  // layouts allow (cuda_tuning::gemv policy; registers and streamed choose either kernel); its
  // shared memory at most gemv_stream_smem_bytes (and the device's opt-in limit): the stages a warp
  // keeps in flight. Off until it has been measured against the register kernel on a GPU.
  static constexpr bool gemv_stream = false;
  static constexpr std::size_t gemv_stream_smem_bytes = 224 * 1024;
  static constexpr index_t gemv_stage_max_bytes = 32 * 1024;
  // Warps per CTA of the staged kernel without a K split: 8, not gemv_warps, since the staging
  // is shared by twice the rows and each thread's part of it takes half the round trips
  // (bench_launch_cuda on an H100, 2026-12-06, norm prologue with sum_out, 4 -> 8 warps: one x
  // row 8.61 -> 8.55 us at 4224 rows, 10.93 -> 10.05 at 5456, 13.75 -> 12.53 at 8192 (the plain
  // kernel 12.04); two rows 10.76 -> 9.14, 11.65 -> 10.15, 19.74 -> 17.11;
  // bench/results/2026-12-06-h100-s10/).
  static constexpr int gemv_stage_warps = 8;
  static_assert(gemv_stage_max_bytes <= 46 * 1024, "within the 48 KiB of shared memory a launch "
                                                   "gets without opting in, with the kernel's own");
  static constexpr int convert_threads = 256;
  // cuda_matmul::exact multiplies f32 x as two 16-bit parts. As two GEMMs (y = w . hi, then
  // y += w . lo) every weight is read twice; stacked, one GEMM of 2M columns ([hi; lo]) reads
  // them once into a workspace of 2M x N f32 sums and a small kernel adds the halves into y. Per
  // call that saves 2 N K bytes of weights and costs about 8 M N bytes of sums more (written,
  // read, and y no longer read back by the second GEMM), so it pays while M < K / 4: stacked up to
  // gemm_stacked_max_m rows and while 8 M <= K (decode batches; a prefill keeps the two GEMMs).
  // (bench_linear_cuda, same run, 8192 x 2048, two GEMMs -> stacked: 16 rows 23.9 -> 17.8 us, 64
  // rows 27.1 -> 21.8, 128 rows 30.9 -> 27.3, 256 rows 42.1 -> 44.7; the LM head at 64 rows 396
  // -> 251 us.)
  static constexpr index_t gemm_stacked_max_m = 128;
  static constexpr int add_halves_threads = 256;
};

namespace detail {

enum class linear_cuda_path { nothing, gemv, gemm, gemm_convert };

/// The dtype pairs that cuBLAS takes (directly, or with x converted to the weight's dtype).
template <class Act, class Weight>
constexpr bool linear_cublas_types = (std::is_same_v<Act, float> &&
                                      (std::is_same_v<Weight, float> ||
                                       std::is_same_v<Weight, bf16> ||
                                       std::is_same_v<Weight, f16>)) ||
                                     (std::is_same_v<Act, bf16> && std::is_same_v<Weight, bf16>) ||
                                     (std::is_same_v<Act, f16> && std::is_same_v<Weight, f16>);

template <class T> constexpr cudaDataType_t cuda_data_type() noexcept {
  if constexpr (std::is_same_v<T, bf16>)
    return CUDA_R_16BF;
  else if constexpr (std::is_same_v<T, f16>)
    return CUDA_R_16F;
  else
    return CUDA_R_32F;
}

/// Which path linear(cuda<Sm>) takes for arguments that passed linear_check.
template <int Sm, class Act, class Weight>
linear_cuda_path linear_select_path(const linear_args<Act, Weight>& a) noexcept {
  const index_t M = a.x.shape[0], K = a.x.shape[1], N = a.w.shape[0];
  if (M == 0 || N == 0) return linear_cuda_path::nothing;
  if constexpr (!linear_cublas_types<Act, Weight>) {
    return linear_cuda_path::gemv;
  } else {
    if (M <= linear_policy<Sm>::gemv_max_m || K == 0) return linear_cuda_path::gemv;
    const index_t ldx = a.x.stride[0], ldw = a.w.stride[0], ldy = a.y.stride[0];
    const bool unit = a.x.stride[1] == 1 && a.w.stride[1] == 1 && a.y.stride[1] == 1;
    const bool lds = ldx >= K && ldw >= K && ldy >= N;
    constexpr index_t most = INT_MAX;
    const bool fits =
        M <= most && N <= most && K <= most && ldx <= most && ldw <= most && ldy <= most;
    if (!unit || !lds || !fits) return linear_cuda_path::gemv;
    if constexpr (std::is_same_v<Act, float> && !std::is_same_v<Weight, float>)
      return linear_cuda_path::gemm_convert;
    else
      return linear_cuda_path::gemm;
  }
}

/// Whether cuda_matmul::exact multiplies an (M, K) x on the cuBLAS path as one GEMM of its stacked
/// parts (linear_policy::gemm_stacked_max_m). The workspace is sized for it in either mode.
template <int Sm> constexpr bool linear_stacks_parts(index_t M, index_t K) noexcept {
  return M <= linear_policy<Sm>::gemm_stacked_max_m && 8 * M <= K;
}

// ---- device conversions (bit-identical to load_as / store_as in core/dtype.hpp) ----

template <class T> __device__ __forceinline__ float linear_to_f32(T v) {
  if constexpr (std::is_same_v<T, bf16>)
    return __uint_as_float(std::uint32_t(v.bits) << 16);
  else if constexpr (std::is_same_v<T, f16>)
    return __half2float(__ushort_as_half(v.bits));
  else
    return float(v);
}

template <class T> __device__ __forceinline__ T linear_from_f32(float v) {
  if constexpr (std::is_same_v<T, f16>)
    return f16::from_bits(__half_as_ushort(__float2half_rn(v))); // round to nearest even
  else
    return store_as<T>(v);
}

/// The 4 / sizeof(T) values of T packed in one 32-bit word (the lower address in the low bits).
template <class T> __device__ __forceinline__ void linear_unpack_word(std::uint32_t u, float* out) {
  if constexpr (std::is_same_v<T, float>) {
    out[0] = __uint_as_float(u);
  } else if constexpr (std::is_same_v<T, bf16>) {
    out[0] = __uint_as_float(u << 16);
    out[1] = __uint_as_float(u & 0xffff0000u);
  } else {
    static_assert(std::is_same_v<T, f16>, "f32, bf16 or f16");
    out[0] = __half2float(__ushort_as_half(static_cast<unsigned short>(u & 0xffffu)));
    out[1] = __half2float(__ushort_as_half(static_cast<unsigned short>(u >> 16)));
  }
}

/// The N values of T at p (p aligned to min(16, N * sizeof(T)) bytes) as f32: 16-byte loads (8-byte
/// when N * sizeof(T) == 8). Streaming loads (evict first) for data read once, cached for reuse.
template <class T, int N, bool Stream>
__device__ __forceinline__ void linear_load_vec(const T* p, float (&out)[N]) {
  constexpr int bytes = N * int(sizeof(T));
  constexpr int per_word = 4 / int(sizeof(T));
  static_assert(bytes % 16 == 0 || bytes == 8, "16-byte or 8-byte pieces");
  if constexpr (bytes % 16 == 0) {
#pragma unroll
    for (int i = 0; i < bytes / 16; ++i) {
      const uint4* q = reinterpret_cast<const uint4*>(p) + i;
      const uint4 u = Stream ? __ldcs(q) : __ldg(q);
      linear_unpack_word<T>(u.x, out + (4 * i + 0) * per_word);
      linear_unpack_word<T>(u.y, out + (4 * i + 1) * per_word);
      linear_unpack_word<T>(u.z, out + (4 * i + 2) * per_word);
      linear_unpack_word<T>(u.w, out + (4 * i + 3) * per_word);
    }
  } else {
    const uint2* q = reinterpret_cast<const uint2*>(p);
    const uint2 u = Stream ? __ldcs(q) : __ldg(q);
    linear_unpack_word<T>(u.x, out);
    linear_unpack_word<T>(u.y, out + per_word);
  }
}

/// One weight item in registers as loaded: 16 bytes (Vec) or one element.
template <class Weight, bool Vec> struct linear_w_raw { uint4 v; };
template <class Weight> struct linear_w_raw<Weight, false> { Weight v; };

/// Sum of v over the 32 lanes of the warp (every lane gets it; every lane must call).
__device__ __forceinline__ float linear_warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1)
    v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

/// What a GEMV may do to each x row on its way in (rmsnorm_linear, swiglu_linear), in device terms:
/// s = x + residual, or x * silu(gate), or x; then, with a norm weight, RMSNorm: s's sum of squares
/// accumulated (beside the products, or while staging), s * weight fed to the products, and every
/// output scaled by rsqrt(mean(s^2) + eps) after the sums (weight == nullptr: s itself is fed, no
/// norm). sum_out: CTA 0 writes s (staged: while staging; in the loop: its first round's warps
/// cover every column once). Rows of 16-byte-aligned f32 with unit inner stride
/// (rmsnorm_linear_fusable, swiglu_linear_fusable).
/// (An epilogue that ran the mixer's conv step on fc's outputs, which would save the step's launch,
/// was measured and dropped: its registers made this kernel spill, 8 -> 68 bytes, and batch-1
/// decode of rodimus-plus-1.6b 5% slower on an H100, 395 -> 376 tokens/s, 2026-12-06.)
struct linear_input_prologue {
  const float* residual = nullptr;
  index_t residual_stride = 0;
  const float* gate = nullptr;
  index_t gate_stride = 0;
  float* sum_out = nullptr;
  index_t sum_stride = 0;
  const float* weight = nullptr;
  float eps = 0.0f;
};

/// CTAs per SM the in-loop prologue variant of the GEMV asks registers for, and the plain kernel
/// with a K split at one row of x (64 registers a thread: 4 CTAs of 8 warps, so the split's 528
/// CTAs are resident at once on 132 SMs). The in-loop prologue needs about 25 more registers,
/// which would cost a wave of CTAs at 1024 row groups; capped at 64 it spills 12 to 40 bytes at one
/// row of x, 144 to 184 at two (bf16 weights, ptxas sm_90, CUDA 13, with the next pass's weights
/// preloaded; 8 to 32 and 136 to 180 on 2026-12-06 without). The plain split kernel at one row
/// fits without spills in 62 registers (72 unbounded once the next pass's weights are preloaded,
/// which would have left 3 CTAs of 8 warps per SM).
constexpr int linear_prologue_min_ctas(int warps) noexcept {
  return warps >= 16 ? 2 : warps >= 8 ? 4 : 8; // 64 registers a thread
}

/// CTAs per SM the staged prologue variant asks registers for, without spilling: at one row of x
/// at most 64 registers, as the in-loop variant (it uses 54 / 57 with 4 / 8 warps); at two rows up
/// to 72 / 80 with 4 / 8 warps (it uses 72 / 77; ptxas sm_90, bf16 weights, the next pass's weights
/// preloaded), 7 / 3 CTAs per SM.
constexpr int linear_stage_min_ctas(int warps, int mr) noexcept {
  return mr == 1 ? linear_prologue_min_ctas(warps) : warps >= 16 ? 1 : warps >= 8 ? 3 : 7;
}

/// Shared memory the staged prologue takes: mr rows of K f32.
constexpr index_t linear_stage_bytes(int mr, index_t K) noexcept {
  return index_t(mr) * K * index_t(sizeof(float));
}

/// 4-value pieces of an x row a thread of the staged prologue loads before it uses the first (3
/// 16-byte loads each, while the first weight loads wait in registers). ptxas (sm_90, bf16
/// weights): 1 fits the registers of linear_stage_min_ctas without spills (2026-12-06: 54 / 56
/// registers at one row of x, 4 / 8 warps, 72 / 71 at two; with the next pass's weights preloaded
/// 54 / 57 and 72 / 77); 2 spills 16 bytes at one row with 8 warps, 8 at two
/// rows with 4 warps; 3 up to 64 bytes.
constexpr int linear_stage_quads_in_flight = 1;

/// The values the prologue combines with x row m at columns [k, k + VEC): the residual or the gate
/// (o untouched when np has neither).
template <int VEC>
__device__ __forceinline__ void linear_prologue_operand(const linear_input_prologue& np, index_t m,
                                                        index_t k, float (&o)[VEC]) {
  if (np.residual)
    linear_load_vec<float, VEC, false>(np.residual + m * np.residual_stride + k, o);
  else if (np.gate)
    linear_load_vec<float, VEC, false>(np.gate + m * np.gate_stride + k, o);
}

/// The prologue's arithmetic on the VEC values v of x row m at column k, with o from
/// linear_prologue_operand and w the norm weight's values there: v becomes s * weight (or s), ss
/// gains s^2 (with a norm); s is stored to sum_out when `write`.
template <int VEC>
__device__ __forceinline__ void
linear_prologue_apply(const linear_input_prologue& np, index_t m, index_t k, float (&v)[VEC],
                      const float (&o)[VEC], const float (&w)[VEC], float& ss, bool write) {
#pragma unroll
  for (int e = 0; e < VEC; ++e) {
    if (np.residual)
      v[e] += o[e];
    else if (np.gate)
      v[e] *= silu(o[e]);
  }
  if (write) {
    float4* out = reinterpret_cast<float4*>(np.sum_out + m * np.sum_stride + k);
#pragma unroll
    for (int q = 0; q < VEC / 4; ++q)
      out[q] = make_float4(v[4 * q], v[4 * q + 1], v[4 * q + 2], v[4 * q + 3]);
  }
  if (!np.weight) return;
#pragma unroll
  for (int e = 0; e < VEC; ++e) {
    ss = fmaf(v[e], v[e], ss);
    v[e] *= w[e];
  }
}

/// One item of x row m at column k through the prologue (v: VEC values of x). Every load first
/// (one round trip; sum_out's store may alias nothing the compiler can prove, so loads after it
/// would wait for it), then the arithmetic.
template <int VEC>
__device__ __forceinline__ void linear_prologue_item(const linear_input_prologue& np, index_t m,
                                                     index_t k, float (&v)[VEC], float& ss,
                                                     bool write) {
  float o[VEC], w[VEC];
  linear_prologue_operand<VEC>(np, m, k, o);
  if (np.weight) linear_load_vec<float, VEC, false>(np.weight + k, w);
  linear_prologue_apply<VEC>(np, m, k, v, o, w, ss, write);
}

/// Where the staged x keeps values [4 q, 4 q + 4) of piece j (VEC values) of row m, in float4
/// units: the quarters of a piece lie `items` float4 apart, so a warp reading the pieces of 32
/// consecutive lanes reads 32 consecutive float4 per quarter (no bank conflicts).
template <int VEC>
__device__ __forceinline__ int linear_stage_index(int m, int q, int j, int items) {
  return (m * (VEC / 4) + q) * items + j;
}

/// The staged prologue's first step, by every thread of a CTA of Threads: x rows [0, M) (M <= MR)
/// through np over all K columns into `staged` (linear_stage_index's layout; K * M f32 fit in
/// shared memory, so 32-bit indices), one row after the other, SC 4-value pieces per thread
/// loaded before any is used (linear_stage_quads_in_flight in the register kernel; the streamed
/// kernel has registers to spare); CTA 0 writes sum_out; ss[m] gains this thread's part of row
/// m's sum of squares. The caller syncs the CTA before anyone reads `staged`.
template <int MR, int VEC, int Threads, int SC = linear_stage_quads_in_flight>
__device__ __forceinline__ void linear_stage_input(const tensor_view<const float, 2>& x,
                                                   const linear_input_prologue& np, float4* staged,
                                                   float (&ss)[MR]) {
  static_assert(VEC % 4 == 0, "pieces of whole float4");
  const int M = int(x.shape[0]), quads = int(x.shape[1] / 4), items = quads / (VEC / 4);
  const bool write = np.sum_out && blockIdx.x == 0;
#pragma unroll
  for (int m = 0; m < MR; ++m) {
    if (m >= M) break;
    for (int c0 = int(threadIdx.x); c0 < quads; c0 += Threads * SC) {
      float v[SC][4], o[SC][4], w[SC][4];
#pragma unroll
      for (int i = 0; i < SC; ++i) {
        const int c = c0 + i * Threads;
        if (c >= quads) continue;
        linear_load_vec<float, 4, false>(x.data + m * x.stride[0] + 4 * c, v[i]);
        linear_prologue_operand<4>(np, m, 4 * c, o[i]);
        if (np.weight) linear_load_vec<float, 4, false>(np.weight + 4 * c, w[i]);
      }
#pragma unroll
      for (int i = 0; i < SC; ++i) {
        const int c = c0 + i * Threads;
        if (c >= quads) continue;
        linear_prologue_apply<4>(np, m, 4 * c, v[i], o[i], w[i], ss[m], write);
        staged[linear_stage_index<VEC>(m, c % (VEC / 4), c / (VEC / 4), items)] =
            make_float4(v[i][0], v[i][1], v[i][2], v[i][3]);
      }
    }
  }
}

/// The VEC values of piece j of staged row m (linear_stage_index's layout).
template <int VEC>
__device__ __forceinline__ void linear_staged_piece(const float4* staged, int m, int j, int items,
                                                    float (&v)[VEC]) {
#pragma unroll
  for (int q = 0; q < VEC / 4; ++q) {
    const float4 f = staged[linear_stage_index<VEC>(m, q, j, items)];
    v[4 * q] = f.x;
    v[4 * q + 1] = f.y;
    v[4 * q + 2] = f.z;
    v[4 * q + 3] = f.w;
  }
}

/// The GEMV kernel (see the top of the file). Warps x 32 threads per CTA; KS == 1: each warp owns
/// groups of R weight rows (grid-stride), and for each group every MR rows of x. KS == Warps: the
/// CTA owns one row group at a time and warp s takes the s-th of KS contiguous K ranges (whole
/// 32-item steps); the warps' sums meet in shared memory and warp 0 adds them in order s = 0..KS-1.
///   Vec: items are 16-byte pieces of a weight row (VEC = 16 / sizeof(Weight) values) and the
///        matching VEC values of x; requires unit inner strides and 16-byte-aligned weight rows,
///        x rows aligned to min(16, VEC * sizeof(Act)) bytes (linear_gemv_vec). The K % VEC
///        columns after the last whole piece are read element-wise (one per lane).
///   !Vec: items are single elements at any strides.
/// Per warp and row group: loop over items in steps of 32 x U (uniform trip count over the warp),
/// U x R weight loads issued first, then for each of them the MR x rows' matching values and the
/// MR x R fused multiply-adds; finally 5 shuffles per accumulator, and lane m * R + r stores
/// y[m0 + m, n0 + r]. Before those sums each warp issues the first step of weight loads of its next
/// pass (the next MR rows of x, or its next row group), so that their round trip overlaps the
/// sums, the K split's barriers and the stores.
///   Pro: x goes through the prologue np (linear_input_prologue; Vec, f32 x, K % VEC == 0). In the
///        loop (!Stage): each item of x through linear_prologue_item as it is read, and with the
///        norm each x row's sum of squares summed like the accumulators (its own shuffles and
///        shared slot) and scaling the row's outputs.
///   Stage (Pro, M <= MR <= 2, linear_stage_bytes(MR, K) of dynamic shared memory): every CTA
///        first puts its x rows through the prologue over all K columns into shared memory
///        (linear_stage_input; each warp's part of the sums of squares in stage_sq), once before
///        its rounds; the loop then reads x from there as the plain kernel reads it from global
///        memory, and the outputs are scaled by the rows' rsqrt(mean(s^2) + eps) at the end. With
///        a.w_constant the first step's weight loads of the first round are issued before the wait
///        as in the plain kernel (they stay in wr through the staging).
template <class Act, class Weight, int MR, int R, int U, int Warps, int KS, bool Vec,
          bool Pro = false, bool Stage = false>
__global__ void __launch_bounds__(Warps * 32, Stage ? linear_stage_min_ctas(Warps, MR)
                                              : Pro || (MR == 1 && KS > 1)
                                                  ? linear_prologue_min_ctas(Warps)
                                                  : 1)
    linear_gemv_kernel(const linear_args<Act, Weight> a, const linear_input_prologue np) {
  static_assert(MR * R <= 32, "one lane stores each output of a group");
  static_assert(KS == 1 || KS == Warps, "no split, or the whole CTA splits K");
  static_assert(!Pro || (Vec && std::is_same_v<Act, float>), "the prologue reads f32 vectors");
  static_assert(!Stage || (Pro && MR <= 2), "staged: the prologue, one or two rows of x");
  constexpr bool in_loop = Pro && !Stage; // the prologue applied to every item as it is read
  constexpr int slots = MR * R + (in_loop ? MR : 0); // per warp: sums, then the rows' squares
  __shared__ float partial[KS > 1 ? KS : 1][slots];
  __shared__ float stage_sq[Stage ? Warps : 1][MR]; // Stage: each warp's part of the rows' squares
  extern __shared__ float4 linear_gemv_staged[];    // Stage: x through the prologue
  constexpr int VEC = Vec ? 16 / int(sizeof(Weight)) : 1;
  const index_t M = a.x.shape[0], K = a.x.shape[1], N = a.w.shape[0];
  const index_t xs0 = a.x.stride[0], xs1 = a.x.stride[1];
  const index_t ws0 = a.w.stride[0], ws1 = a.w.stride[1];
  const int lane = int(threadIdx.x) % 32;
  const index_t items = Vec ? K / VEC : K; // pieces (or elements) per row
  const index_t kv = items * VEC;          // columns covered by the pieces
  const index_t groups = (N + R - 1) / R;
  constexpr int per_cta = Warps / KS; // row groups a CTA works on at once
  const int warp = int(threadIdx.x) / 32, slice = warp % KS;
  // This warp's items [item_lo, item_hi): all of them, or the slice-th of KS ranges of whole
  // 32 x U steps.
  const index_t span = (items + KS - 1) / KS, per_slice = (span + 32 * U - 1) / (32 * U) * (32 * U);
  const index_t item_lo = KS == 1 ? 0 : (slice * per_slice < items ? slice * per_slice : items);
  const index_t item_hi =
      KS == 1 ? items : (item_lo + per_slice < items ? item_lo + per_slice : items);
  const index_t rounds = (groups + per_cta - 1) / per_cta;
  // Overlapped launch (launch.cuh): with a.w_constant the first weight loads of this thread are
  // issued before the wait; x is read and y written only after it.
  bool waited = false;
  const auto wait_once = [&waited] {
    if (!waited) {
      wait_for_prior_kernels();
      let_next_kernel_start();
      waited = true;
    }
  };
  // The weight rows of the group at row n0 (rows past N are never loaded).
  const auto row_pointers = [&](index_t n0, const Weight*(&wrow)[R]) {
#pragma unroll
    for (int r = 0; r < R; ++r)
      wrow[r] = a.w.data + (n0 + r < N ? n0 + r : n0) * ws0;
  };
  linear_w_raw<Weight, Vec> wr[U][R]; // one step's weight items (U per row and lane)
  const auto load_weights = [&](const Weight* const(&wrow)[R], index_t n0, index_t base) {
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const index_t j = base + u * 32 + lane;
#pragma unroll
      for (int r = 0; r < R; ++r) {
        if (j < item_hi && n0 + r < N) {
          if constexpr (Vec)
            wr[u][r].v = __ldcs(reinterpret_cast<const uint4*>(wrow[r]) + j);
          else
            wr[u][r].v = wrow[r][j * ws1];
        }
      }
    }
  };
  if (!a.w_constant) wait_once();
  bool preloaded = false; // wr holds the first step of this warp's next pass (Stage's early load
                          // before the wait, or the preload after the previous pass)
  if constexpr (Stage) {
    const index_t g = index_t(blockIdx.x) * per_cta + warp / KS;
    if (a.w_constant && g < groups && item_lo < item_hi) { // the loop's first step, early
      const Weight* wrow[R];
      row_pointers(g * R, wrow);
      load_weights(wrow, g * R, item_lo);
      preloaded = true;
    }
    wait_once();
    float ss[MR];
#pragma unroll
    for (int m = 0; m < MR; ++m)
      ss[m] = 0.0f;
    linear_stage_input<MR, VEC, Warps * 32>(a.x, np, linear_gemv_staged, ss);
    if (np.weight) {
#pragma unroll
      for (int m = 0; m < MR; ++m) {
        const float s = linear_warp_sum(ss[m]);
        if (lane == 0) stage_sq[warp][m] = s;
      }
    }
    __syncthreads();
  }

  // Uniform over the CTA (a K split meets at __syncthreads), each warp on group g when g < groups.
  for (index_t round = blockIdx.x; round < rounds; round += gridDim.x) {
    const index_t g = round * per_cta + warp / KS;
    const bool active = g < groups;
    const index_t n0 = (active ? g : 0) * R;
    const Weight* wrow[R];
    row_pointers(n0, wrow);
    for (index_t m0 = 0; m0 < M; m0 += MR) {
      const Act* xrow[MR];
#pragma unroll
      for (int m = 0; m < MR; ++m)
        xrow[m] = a.x.data + (m0 + m < M ? m0 + m : m0) * xs0; // rows past M are never loaded
      float acc[MR][R];
      float ss[MR]; // in_loop: the rows' sums of squares (this lane's columns)
#pragma unroll
      for (int m = 0; m < MR; ++m) {
        ss[m] = 0.0f;
#pragma unroll
        for (int r = 0; r < R; ++r)
          acc[m][r] = 0.0f;
      }
      // in_loop with sum_out: CTA 0's first round covers every column once (warp 0 alone, or the
      // KS slices together).
      const bool write_sum = in_loop && np.sum_out && round == 0 && (KS > 1 || warp == 0) && active;

      for (index_t base = item_lo; active && base < item_hi; base += 32 * U) {
        if (!preloaded) load_weights(wrow, n0, base);
        preloaded = false;
        wait_once();
#pragma unroll
        for (int u = 0; u < U; ++u) {
          const index_t j = base + u * 32 + lane;
          if (j >= item_hi) continue;
          if constexpr (in_loop) {
            // x through the prologue first (its loads in flight together), then one weight row
            // at a time: fewer live registers than all R rows unpacked at once.
            float xs[MR][VEC];
#pragma unroll
            for (int m = 0; m < MR; ++m) {
              if (m0 + m < M) {
                linear_load_vec<Act, VEC, false>(xrow[m] + j * VEC, xs[m]);
                linear_prologue_item<VEC>(np, m0 + m, j * VEC, xs[m], ss[m], write_sum);
              }
            }
#pragma unroll
            for (int r = 0; r < R; ++r) {
              if (n0 + r >= N) continue;
              float wrf[VEC];
              const std::uint32_t words[4] = {wr[u][r].v.x, wr[u][r].v.y, wr[u][r].v.z,
                                              wr[u][r].v.w};
              constexpr int per_word = 4 / int(sizeof(Weight));
#pragma unroll
              for (int q = 0; q < 4; ++q)
                linear_unpack_word<Weight>(words[q], &wrf[q * per_word]);
#pragma unroll
              for (int m = 0; m < MR; ++m)
                if (m0 + m < M)
#pragma unroll
                  for (int e = 0; e < VEC; ++e)
                    acc[m][r] = fmaf(xs[m][e], wrf[e], acc[m][r]);
            }
          } else {
            float wf[R][VEC];
#pragma unroll
            for (int r = 0; r < R; ++r) {
              if (n0 + r < N) {
                if constexpr (Vec) {
                  const std::uint32_t words[4] = {wr[u][r].v.x, wr[u][r].v.y, wr[u][r].v.z,
                                                  wr[u][r].v.w};
                  constexpr int per_word = 4 / int(sizeof(Weight));
#pragma unroll
                  for (int q = 0; q < 4; ++q)
                    linear_unpack_word<Weight>(words[q], &wf[r][q * per_word]);
                } else {
                  wf[r][0] = linear_to_f32(wr[u][r].v);
                }
              } else {
#pragma unroll
                for (int e = 0; e < VEC; ++e)
                  wf[r][e] = 0.0f;
              }
            }
#pragma unroll
            for (int m = 0; m < MR; ++m) {
              if (m0 + m >= M) continue;
              float xf[VEC];
              if constexpr (Stage) // m0 == 0: one pass over M <= MR rows
                linear_staged_piece<VEC>(linear_gemv_staged, m, int(j), int(items), xf);
              else if constexpr (Vec)
                linear_load_vec<Act, VEC, false>(xrow[m] + j * VEC, xf);
              else
                xf[0] = linear_to_f32(xrow[m][j * xs1]);
#pragma unroll
              for (int r = 0; r < R; ++r)
#pragma unroll
                for (int e = 0; e < VEC; ++e)
                  acc[m][r] = fmaf(xf[e], wf[r][e], acc[m][r]);
            }
          } // in_loop
        }
      }
      // The next pass's first step of weights (this warp's next row group, or the same group for
      // the next MR rows of x) issued now, into wr (free again: the loop above has used it), so
      // that its memory round trip overlaps this pass's sums, the K split's barrier and the
      // stores instead of following them (a K-split launch runs about two rounds per CTA).
      {
        const index_t next = m0 + MR < M ? round : round + index_t(gridDim.x);
        const index_t ng = next * per_cta + warp / KS;
        if (next < rounds && ng < groups && item_lo < item_hi) {
          const Weight* nrow[R];
          row_pointers(ng * R, nrow);
          load_weights(nrow, ng * R, item_lo);
          preloaded = true;
        }
      }

      wait_once();                 // a thread without items still reads x below or writes y
      if constexpr (Vec && !Pro) { // columns [kv, K): fewer than VEC, one per lane (unit strides)
        const index_t k = kv + lane;
        if (active && slice == 0 && k < K) {
#pragma unroll
          for (int m = 0; m < MR; ++m) {
            if (m0 + m >= M) continue;
            const float xf = linear_to_f32(xrow[m][k]);
#pragma unroll
            for (int r = 0; r < R; ++r)
              if (n0 + r < N) acc[m][r] = fmaf(xf, linear_to_f32(wrow[r][k]), acc[m][r]);
          }
        }
      }

      float mine = 0.0f; // lane m * R + r keeps the sum of acc[m][r]
#pragma unroll
      for (int m = 0; m < MR; ++m)
#pragma unroll
        for (int r = 0; r < R; ++r) {
          const float s = linear_warp_sum(acc[m][r]);
          if (lane == m * R + r) mine = s;
        }
      float sq[MR]; // in_loop: each row's sum of squares over the warp (every lane)
#pragma unroll
      for (int m = 0; m < MR; ++m)
        sq[m] = in_loop ? linear_warp_sum(ss[m]) : 0.0f;
      if constexpr (KS > 1) {
        if (lane < MR * R) partial[slice][lane] = mine;
        if constexpr (in_loop) {
#pragma unroll
          for (int m = 0; m < MR; ++m)
            if (lane == 0) partial[slice][MR * R + m] = sq[m];
        }
        __syncthreads();
        if (slice == 0) {
          mine = 0.0f;
#pragma unroll
          for (int s = 0; s < KS; ++s)
            mine += lane < MR * R ? partial[s][lane] : 0.0f;
          if constexpr (in_loop) {
#pragma unroll
            for (int m = 0; m < MR; ++m) {
              sq[m] = 0.0f;
#pragma unroll
              for (int s = 0; s < KS; ++s)
                sq[m] += partial[s][MR * R + m];
            }
          }
        }
        __syncthreads(); // partial is free for the next m0 / round
      }
      if (Pro && np.weight) { // y = rsqrt(mean(s^2) + eps) * ((s * weight) . w)
        float row_sq = 0.0f;
        if constexpr (Stage) { // the warps' parts in order w = 0..Warps-1
          const int m = lane / R < MR ? lane / R : MR - 1;
#pragma unroll
          for (int w = 0; w < Warps; ++w)
            row_sq += stage_sq[w][m];
        } else {
#pragma unroll
          for (int m = 0; m < MR; ++m)
            if (lane / R == m) row_sq = sq[m];
        }
        mine *= rsqrtf(row_sq / float(K) + np.eps);
      }
      if (active && slice == 0 && lane < MR * R) {
        const index_t m = m0 + lane / R, n = n0 + lane % R;
        if (m < M && n < N) a.y(m, n) = linear_from_f32<Act>(mine);
      }
    }
  }
  wait_once(); // every thread waits (launch.cuh: a kernel ends only after the ones before it)
}

/// Whether the GEMV kernel may use 16-byte pieces (see linear_gemv_kernel).
template <class Act, class Weight>
bool linear_gemv_vec(const linear_args<Act, Weight>& a) noexcept {
  constexpr index_t vec = 16 / index_t(sizeof(Weight));
  constexpr index_t x_align = vec * index_t(sizeof(Act)) < 16 ? vec * index_t(sizeof(Act)) : 16;
  const auto addr = [](const void* p) { return reinterpret_cast<std::uintptr_t>(p); };
  const index_t M = a.x.shape[0], N = a.w.shape[0];
  return a.x.stride[1] == 1 && a.w.stride[1] == 1 && addr(a.w.data) % 16 == 0 &&
         (N == 1 || (a.w.stride[0] * index_t(sizeof(Weight))) % 16 == 0) &&
         addr(a.x.data) % std::uintptr_t(x_align) == 0 &&
         (M == 1 || (a.x.stride[0] * index_t(sizeof(Act))) % x_align == 0);
}

/// Launches the GEMV kernel at the policy's configuration for N: K split over the CTA's warps below
/// gemv_split_below_groups row groups, else a warp per row group; Stage with its shared bytes.
template <int Sm, int MR, int R, bool Vec, bool Pro, bool Stage = false, class Act, class Weight>
status linear_gemv_launch(const linear_args<Act, Weight>& a, const linear_input_prologue& np,
                          const launch_target& on) noexcept {
  using policy = linear_policy<Sm>;
  constexpr int U = policy::gemv_unroll;
  const index_t groups = (a.w.shape[0] + R - 1) / R;
  const std::size_t smem = Stage ? std::size_t(linear_stage_bytes(MR, a.x.shape[1])) : 0;
  auto grid_for = [](index_t ctas) {
    return unsigned(ctas < cuda_max_grid ? ctas : cuda_max_grid);
  };
  if (groups < policy::gemv_split_below_groups) { // a row group per CTA at a time, K split over
                                                  // its warps
    constexpr int warps = policy::gemv_split_warps;
    RODIMUS_CUDA_TRY(launch(
        on, linear_gemv_kernel<Act, Weight, MR, R, U, warps, warps, Vec, Pro, Stage>,
        grid_for(groups < policy::gemv_split_max_ctas ? groups : policy::gemv_split_max_ctas),
        warps * 32, smem, a, np));
  } else {
    constexpr int warps = Stage ? policy::gemv_stage_warps : policy::gemv_warps;
    RODIMUS_CUDA_TRY(launch(on,
                            linear_gemv_kernel<Act, Weight, MR, R, U, warps, 1, Vec, Pro, Stage>,
                            grid_for((groups + warps - 1) / warps), warps * 32, smem, a, np));
  }
  RODIMUS_CUDA_TRY(cudaGetLastError());
  return status::success();
}

/// Whether the GEMV with an input prologue stages it (linear_gemv_kernel's Stage) for M rows of K
/// columns: the policy asks for it, 1 or 2 rows, and their K f32 within gemv_stage_max_bytes.
template <int Sm> constexpr bool linear_gemv_stages(index_t M, index_t K) noexcept {
  using policy = linear_policy<Sm>;
  return policy::gemv_stage_prologue && M >= 1 && M <= 2 &&
         linear_stage_bytes(int(M), K) <= policy::gemv_stage_max_bytes;
}

template <int Sm, class Act, class Weight>
bool linear_stream_fits(const linear_args<Act, Weight>& a, std::size_t limit) noexcept;
template <int Sm, int MR, bool Pro, class Weight>
status linear_stream_launch(const linear_args<float, Weight>& a, const linear_input_prologue& np,
                            const launch_target& on, std::size_t limit) noexcept;

/// The shared memory the streamed GEMV may take on the current device (linear_policy's bound and
/// the device's opt-in limit, less the kernel's static part and a margin).
template <int Sm> std::size_t linear_stream_smem_limit() noexcept {
  const std::size_t optin = device_smem_optin(), margin = 1024;
  const std::size_t most = linear_policy<Sm>::gemv_stream_smem_bytes;
  return optin > margin ? (optin - margin < most ? optin - margin : most) : 0;
}

/// The runtime-to-compile-time switch: the streamed kernel where the policy and `choice` allow it
/// and it fits (MR <= 2); else x rows per pass (MR) and weight rows per warp (R) from M, 16-byte
/// pieces or single elements from the strides and alignment (the prologue: always pieces,
/// rmsnorm_linear_fusable checked them; staged where the policy asks for it and the rows fit its
/// shared memory, else in the loop).
template <int Sm, int MR, int R, bool Pro, class Act, class Weight>
status linear_gemv_vec_dispatch(const linear_args<Act, Weight>& a, const linear_input_prologue& np,
                                const launch_target& on, cuda_gemv choice) noexcept {
  if constexpr (MR <= 2 && Sm >= 90 && std::is_same_v<Act, float> && sizeof(Weight) == 2) {
    const bool streamed = choice == cuda_gemv::streamed ||
                          (choice == cuda_gemv::policy && linear_policy<Sm>::gemv_stream);
    if (streamed && a.x.shape[0] == MR) {
      const std::size_t limit = linear_stream_smem_limit<Sm>();
      if (linear_stream_fits<Sm>(a, limit))
        return linear_stream_launch<Sm, MR, Pro>(a, np, on, limit);
    }
  } else {
    (void)choice;
  }
  if constexpr (Pro) {
    if constexpr (MR <= 2) {
      if (linear_gemv_stages<Sm>(a.x.shape[0], a.x.shape[1]))
        return linear_gemv_launch<Sm, MR, R, true, true, true>(a, np, on);
    }
    return linear_gemv_launch<Sm, MR, R, true, true>(a, np, on);
  } else {
    if (linear_gemv_vec(a)) return linear_gemv_launch<Sm, MR, R, true, false>(a, np, on);
    return linear_gemv_launch<Sm, MR, R, false, false>(a, np, on);
  }
}

/// The GEMV of M rows of x (cuda_tuning::gemv's choice of kernel at 1 or 2 rows).
template <int Sm, bool Pro = false, class Act, class Weight>
status linear_gemv(const linear_args<Act, Weight>& a, const launch_target& on,
                   const linear_input_prologue& np = {},
                   cuda_gemv choice = cuda_gemv::policy) noexcept {
  using policy = linear_policy<Sm>;
  constexpr int Rs = policy::gemv_rows_small_m, Rl = policy::gemv_rows;
  const index_t M = a.x.shape[0];
  if (M == 1) return linear_gemv_vec_dispatch<Sm, 1, Rs, Pro>(a, np, on, choice);
  if (M == 2) return linear_gemv_vec_dispatch<Sm, 2, Rs, Pro>(a, np, on, choice);
  if (M <= 4) return linear_gemv_vec_dispatch<Sm, 4, Rl, Pro>(a, np, on, choice);
  // M > 8 loops over groups of 8
  return linear_gemv_vec_dispatch<Sm, 8, Rl, Pro>(a, np, on, choice);
}

/// hi, lo (M, K), row stride K, <- x split into two parts of type To (round to nearest even):
/// hi = To(x), lo = To(x - hi), so hi + lo equals x to a relative u^2 (u: To's unit roundoff);
/// lo == nullptr: hi only (cuda_matmul::rounded). Grid: x over column groups of Vec columns (a
/// thread per group), y over rows (looped beyond the grid). Vec = 4: x rows 16-byte aligned with
/// unit inner stride and K % 4 == 0 (one float4 load, one 8-byte store per part); Vec = 1: any
/// strides. No division per element (this pass runs before every GEMM of a prefill).
template <class To, class From, int Vec>
__global__ void linear_split_kernel(const tensor_view<const From, 2> x, To* __restrict__ hi,
                                    To* __restrict__ lo) {
  begin_after_prior_kernels();
  const index_t M = x.shape[0], K = x.shape[1];
  const index_t k = (index_t(blockIdx.x) * blockDim.x + threadIdx.x) * Vec;
  if (k >= K) return;
  for (index_t m = blockIdx.y; m < M; m += gridDim.y) {
    float v[Vec];
    if constexpr (Vec == 4) {
      const float4 q = *reinterpret_cast<const float4*>(&x(m, k));
      v[0] = q.x;
      v[1] = q.y;
      v[2] = q.z;
      v[3] = q.w;
    } else {
      v[0] = linear_to_f32(x(m, k));
    }
    To h[Vec], l[Vec];
#pragma unroll
    for (int j = 0; j < Vec; ++j) {
      h[j] = linear_from_f32<To>(v[j]);
      l[j] = linear_from_f32<To>(v[j] - linear_to_f32(h[j]));
    }
    const index_t i = m * K + k;
    if constexpr (Vec == 4) {
      static_assert(sizeof(To) == 2, "16-bit parts: four of them are one 8-byte store");
      *reinterpret_cast<uint2*>(hi + i) = *reinterpret_cast<const uint2*>(h);
      if (lo) *reinterpret_cast<uint2*>(lo + i) = *reinterpret_cast<const uint2*>(l);
    } else {
      hi[i] = h[0];
      if (lo) lo[i] = l[0];
    }
  }
}

/// linear_split_kernel's launch: 16-byte pieces where x allows them (f32 rows aligned to 16 bytes,
/// K % 4 == 0), else one element per thread.
template <class To, class From>
status linear_split(const launch_target& on, const tensor_view<const From, 2>& x, To* hi, To* lo,
                    int threads) noexcept {
  const index_t M = x.shape[0], K = x.shape[1];
  const bool vec = std::is_same_v<From, float> && x.stride[1] == 1 && K % 4 == 0 &&
                   x.stride[0] % 4 == 0 && reinterpret_cast<std::uintptr_t>(x.data) % 16 == 0;
  const index_t groups = vec ? K / 4 : K;
  const dim3 grid(unsigned((groups + threads - 1) / threads),
                  unsigned(M < cuda_max_grid_y ? M : cuda_max_grid_y));
  if (vec)
    return cuda_status(launch(on, linear_split_kernel<To, From, 4>, grid, threads, 0, x, hi, lo),
                       "linear_split_kernel");
  return cuda_status(launch(on, linear_split_kernel<To, From, 1>, grid, threads, 0, x, hi, lo),
                     "linear_split_kernel");
}

/// ok when be has a cuBLAS context for its stream; every cuBLAS path checks it before it launches
/// anything (a refused call writes nothing).
template <int Sm> status linear_cublas_ready(const cuda<Sm>& be) noexcept {
  RODIMUS_REQUIRE(be.context != nullptr, null_pointer, "context");
  RODIMUS_REQUIRE(be.context->stream() == be.stream, bad_argument, "context");
  return status::success();
}

/// y (M, N) = sums rows [0, M) + sums rows [M, 2M) (dense rows of N f32): the halves of a stacked
/// GEMM (linear_policy::gemm_stacked_max_m). Grid: y over rows, x over columns (grid-stride).
template <class Act>
__global__ void linear_add_halves_kernel(const float* __restrict__ sums,
                                         const tensor_view<Act, 2> y) {
  begin_after_prior_kernels();
  const index_t M = y.shape[0], N = y.shape[1];
  const float* hi = sums + index_t(blockIdx.y) * N;
  const float* lo = hi + M * N;
  for (index_t n = index_t(blockIdx.x) * blockDim.x + threadIdx.x; n < N;
       n += index_t(gridDim.x) * blockDim.x)
    y(index_t(blockIdx.y), n) = linear_from_f32<Act>(hi[n] + lo[n]);
}

/// The parts of a split x in the workspace: hi, and in cuda_matmul::exact lo = hi + M K (the two
/// stacked as one (2M, K) operand) and, where linear_stacks_parts, the GEMM's (2M, N) sums.
template <class Weight> struct linear_split_parts {
  Weight* hi = nullptr;
  Weight* lo = nullptr;
  float* sums = nullptr;
};

/// Workspace bytes of the parts (and sums) of an (M, K) x times N weight rows, whatever the mode.
template <int Sm, class Weight>
std::size_t linear_parts_bytes(index_t M, index_t K, index_t N) noexcept {
  const std::size_t n = workspace::product(std::size_t(M), std::size_t(K));
  const std::size_t sums =
      linear_stacks_parts<Sm>(M, K)
          ? workspace::bytes_for<float>(workspace::product(2 * std::size_t(M), std::size_t(N)))
          : 0;
  return workspace::sum(workspace::alignment,
                        workspace::bytes_for<Weight>(workspace::product(2, n)), sums);
}

/// Takes the parts of an (M, K) x (and the sums for N weight rows) from ws as linear_parts_bytes
/// counts them; hi == nullptr when ws is too small (then nothing may be launched).
template <int Sm, class Weight>
linear_split_parts<Weight> linear_take_parts(const cuda<Sm>& be, index_t M, index_t K, index_t N,
                                             workspace& ws) noexcept {
  const std::size_t n = std::size_t(M) * std::size_t(K);
  const bool stacks = linear_stacks_parts<Sm>(M, K);
  Weight* both = ws.take<Weight>(2 * n);
  float* sums = stacks ? ws.take<float>(2 * std::size_t(M) * std::size_t(N)) : nullptr;
  linear_split_parts<Weight> p;
  if (both == nullptr || (stacks && sums == nullptr)) return p;
  p.hi = both;
  if (be.matmul == cuda_matmul::exact) {
    p.lo = both + n;
    p.sums = sums;
  }
  return p;
}

/// y = w . b on cuBLAS, b (M, K) with row stride ldb being x itself or the hi part; with the lo
/// part (b's dtype) also y += w . lo: stacked (sums given and lo == b + M ldb, as
/// linear_take_parts lays the parts out) one GEMM of the 2M rows [b; lo] into the sums and
/// linear_add_halves_kernel, else a second GEMM with beta 1.
/// y^T = op_T(w) . b^T in column-major terms. The caller checked linear_cublas_ready.
template <int Sm, class Act, class Weight>
status linear_gemm_parts(const cuda<Sm>& be, const linear_args<Act, Weight>& a, const void* b,
                         cudaDataType_t b_type, index_t ldb, const void* lo,
                         float* sums = nullptr) noexcept {
  const index_t M = a.x.shape[0], K = a.x.shape[1], N = a.w.shape[0];
  // cols rows of the operand at x, into c (type c_type, leading dimension ldc); beta = 0: c is
  // never read (poison stays out).
  auto gemm = [&](const void* x, index_t cols, void* c, cudaDataType_t c_type, index_t ldc,
                  float beta) {
    const float alpha = 1.0f;
    return cublasGemmEx(be.context->cublas(), CUBLAS_OP_T, CUBLAS_OP_N, int(N), int(cols), int(K),
                        &alpha, a.w.data, cuda_data_type<Weight>(), int(a.w.stride[0]), x, b_type,
                        int(ldb), &beta, c, c_type, int(ldc), CUBLAS_COMPUTE_32F,
                        CUBLAS_GEMM_DEFAULT);
  };
  if constexpr (std::is_same_v<Act, float>) {
    const auto* hi_bytes = static_cast<const unsigned char*>(b);
    const bool stacked = lo && sums &&
                         static_cast<const unsigned char*>(lo) ==
                             hi_bytes + std::size_t(M) * std::size_t(ldb) * sizeof(Weight);
    if (stacked) { // [b; lo] is one (2M, K) operand of row stride ldb
      RODIMUS_TRY(cublas_status(gemm(b, 2 * M, sums, CUDA_R_32F, N, 0.0f), "cublasGemmEx"));
      constexpr int threads = linear_policy<Sm>::add_halves_threads;
      const dim3 grid(unsigned((N + threads - 1) / threads), unsigned(M));
      return cuda_status(
          launch(launch_on(be), linear_add_halves_kernel<Act>, grid, threads, 0, sums, a.y),
          "linear_add_halves_kernel");
    }
  }
  RODIMUS_TRY(cublas_status(gemm(b, M, a.y.data, cuda_data_type<Act>(), a.y.stride[0], 0.0f),
                            "cublasGemmEx"));
  if (lo)
    RODIMUS_TRY(cublas_status(gemm(lo, M, a.y.data, cuda_data_type<Act>(), a.y.stride[0], 1.0f),
                              "cublasGemmEx"));
  return status::success();
}

/// The cuBLAS path (see the top of the file): y^T = op_T(w) . x^T in column-major terms.
template <int Sm, class Act, class Weight>
status linear_gemm(const cuda<Sm>& be, const linear_args<Act, Weight>& a, bool convert,
                   workspace ws) noexcept {
  if constexpr (!linear_cublas_types<Act, Weight>) {
    (void)be;
    (void)a;
    (void)convert;
    (void)ws;
    return status::fail(status_code::unsupported, "w"); // never selected (linear_select_path)
  } else {
    RODIMUS_TRY(linear_cublas_ready(be));
    if constexpr (!std::is_same_v<Act, Weight>) { // f32 x, 16-bit w: x -> hi + lo in w's dtype
      if (convert) {
        const index_t M = a.x.shape[0], K = a.x.shape[1];
        const auto parts = linear_take_parts<Sm, Weight>(be, M, K, a.w.shape[0], ws);
        RODIMUS_REQUIRE(parts.hi != nullptr, workspace_too_small, "ws");
        constexpr int threads = linear_policy<Sm>::convert_threads;
        RODIMUS_TRY(linear_split(detail::launch_on(be), a.x, parts.hi, parts.lo, threads));
        return linear_gemm_parts(be, a, parts.hi, cuda_data_type<Weight>(), K, parts.lo,
                                 parts.sums);
      }
    }
    return linear_gemm_parts(be, a, a.x.data, cuda_data_type<Act>(), a.x.stride[0], nullptr);
  }
}

} // namespace detail

/// Device workspace that linear(be, a, ws) needs: on the cuBLAS path with f32 x and 16-bit weights
/// twice M x K values of the weight's dtype (x split into hi + lo, plus the alignment slack) and,
/// where the parts are stacked (detail::linear_stacks_parts), 2 M x N f32 sums; otherwise 0. The
/// same in either cuda_matmul mode.
template <int Sm, class Act, class Weight>
std::size_t linear_workspace_bytes(const cuda<Sm>&, const linear_args<Act, Weight>& a) noexcept {
  if (!linear_check(a).ok()) return 0;
  if (detail::linear_select_path<Sm>(a) != detail::linear_cuda_path::gemm_convert) return 0;
  return detail::linear_parts_bytes<Sm, Weight>(a.x.shape[0], a.x.shape[1], a.w.shape[0]);
}

/// True when linear(be, a) takes the cuBLAS path with f32 x and 16-bit weights, which multiplies x
/// as the sum of two 16-bit parts (the error bound under "Numerics" at the top of this file), or
/// as x rounded once to the weight's dtype when be.matmul is cuda_matmul::rounded.
template <int Sm, class Act, class Weight>
bool linear_rounds_x(const cuda<Sm>&, const linear_args<Act, Weight>& a) noexcept {
  return linear_check(a).ok() &&
         detail::linear_select_path<Sm>(a) == detail::linear_cuda_path::gemm_convert;
}

/// True where rmsnorm_linear and swiglu_linear fuse their input prologue: at 1 or 2 rows into the
/// GEMV (staged in shared memory, where the rows allow 16-byte pieces and fit:
/// rmsnorm_linear_fusable, swiglu_linear_fusable), and past gemv_max_m, with 16-bit weights, into
/// cuBLAS's operand (linear_operand.cuh) instead of f32 rows that the split would read again.
/// Rows between the two (none while gemv_max_m is 2; 3..8 before 2026-12-07) would not be fused:
/// the blocks then run the norm and the projection themselves (once for all the projections of an
/// input).
template <int Sm> bool linear_fuses_input(const cuda<Sm>&, index_t M) noexcept {
  return M >= 1 && (M <= 2 || M > linear_policy<Sm>::gemv_max_m);
}

/// y = x w^T on the GPU (see the top of this file). Enqueues on be.stream.
template <int Sm, class Act, class Weight>
[[nodiscard]] status linear(const cuda<Sm>& be, const linear_args<Act, Weight>& a,
                            workspace ws = {}) noexcept {
  RODIMUS_TRY(linear_check(a));
  switch (detail::linear_select_path<Sm>(a)) {
  case detail::linear_cuda_path::nothing: return status::success();
  case detail::linear_cuda_path::gemv:
    return detail::linear_gemv<Sm>(a, detail::launch_on(be), {}, be.tuning.gemv);
  case detail::linear_cuda_path::gemm: return detail::linear_gemm(be, a, false, ws);
  case detail::linear_cuda_path::gemm_convert: return detail::linear_gemm(be, a, true, ws);
  }
  return status::success();
}

} // namespace rodimus

#include "rodimus/backend/cuda/linear_stream.cuh"
