// The streamed GEMV (sm_90 and newer): the batch-1 / batch-2 GEMV of linear.cuh with its weight
// rows copied into shared memory by the Tensor Memory Accelerator's bulk copies
// (cp.async.bulk ... mbarrier::complete_tx) instead of loaded into registers. Included at the end
// of linear.cuh, whose dispatch (linear_gemv_vec_dispatch) takes it where linear_stream_fits.
//
// Why: the register GEMV keeps U x R 16-byte loads per lane in flight, which its registers bound
// (64 a thread so that the K split's 528 CTAs stay resident), and issues them again only after
// each step's sums; session 18's profile had the K-split GEMVs at a third of the copy bandwidth
// alone and the others at half to two thirds (bench/results/2026-12-07-h100-s18/). A bulk copy
// needs no registers: each warp keeps `stages` row groups in flight in shared memory (tens of KiB a
// multiprocessor, where the card needs about 36), and with a.w_constant the first of them are asked
// for before the overlapped wait (launch.cuh), so a GEMV's weights start to arrive while the
// kernel before it still runs.
//
// Kernel (linear_stream_kernel<Weight, MR, Warps, Pro>): one CTA per multiprocessor; CTA b owns the
// row groups (R = linear_stream_rows weight rows each) [groups b / G, groups (b + 1) / G) and its
// warp w the groups w, w + Warps, ... of that range. Each warp has `stages` buffers of R rows in
// shared memory with one mbarrier each; its lane 0 arms a buffer's barrier with the group's bytes
// and issues one bulk copy per row; the warp waits on the barrier's phase, computes, and lane 0
// gives the buffer the warp's group `stages` further on (no barrier between warps at all). x (MR =
// M rows of f32) is staged once per CTA through the input prologue (linear_stage_input: plain
// copy, x + residual, x * silu(gate), RMSNorm), as the staged register kernel does; lane l reads
// the 16-byte pieces l, l + 32, ... of each weight row from shared memory and the matching staged
// x, then the warp's shuffles sum each output. Numerics: those of the GEMV (x and w widened
// exactly, f32 products and sums, a fixed order per output; the order differs from the register
// kernel's).
//
// Requirements (linear_stream_fits): f32 x with unit inner stride and 16-byte aligned rows,
// 16-bit weights (bf16, f16) with unit inner stride, 16-byte aligned data and row strides, K a
// multiple of 8, M of 1 or 2 whose K f32 fit linear_policy::gemv_stage_max_bytes, and the shared
// memory of one stage at 4 warps within linear_policy::gemv_stream_smem_bytes and the device's
// opt-in limit.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "rodimus/backend/cuda/linear.cuh"

namespace rodimus::detail {

/// Weight rows per row group (one stage of a warp holds one group).
constexpr int linear_stream_rows = 2;
/// Most stages (groups in flight) a warp keeps; fewer where the shared memory is short (short rows
/// take up to 8, so that a multiprocessor still has tens of KiB in flight).
constexpr int linear_stream_max_stages = 8;

// ---- PTX of the bulk copies and their barriers (sm_90; trap when compiled for older GPUs) ----

__device__ __forceinline__ std::uint32_t stream_smem_addr(const void* p) noexcept {
  return static_cast<std::uint32_t>(__cvta_generic_to_shared(p));
}

/// A barrier in shared memory expecting `count` arrivals per phase (plus the bytes armed); the
/// thread then makes its initialisations visible with stream_barrier_fence_init.
__device__ __forceinline__ void stream_barrier_init(std::uint64_t* bar, unsigned count) noexcept {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(stream_smem_addr(bar)), "r"(count)
               : "memory");
#else
  (void)bar;
  (void)count;
  __trap();
#endif
}

/// This thread's barrier initialisations visible to the bulk copies (the async proxy) before any of
/// them completes on one.
__device__ __forceinline__ void stream_barrier_fence_init() noexcept {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
#endif
}

/// One arrival on bar that also expects `bytes` of bulk copies in its current phase.
__device__ __forceinline__ void stream_barrier_expect(std::uint64_t* bar, unsigned bytes) noexcept {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile(
      "mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(stream_smem_addr(bar)),
      "r"(bytes)
      : "memory");
#else
  (void)bar;
  (void)bytes;
  __trap();
#endif
}

/// Waits until the phase of bar with parity `parity` has completed (its bytes have landed and are
/// visible to the waiting thread).
__device__ __forceinline__ void stream_barrier_wait(std::uint64_t* bar, unsigned parity) noexcept {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  const std::uint32_t addr = stream_smem_addr(bar);
  std::uint32_t done = 0;
  while (!done) {
    asm volatile("{\n\t.reg .pred p;\n\t"
                 "mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n\t"
                 "selp.u32 %0, 1, 0, p;\n\t}"
                 : "=r"(done)
                 : "r"(addr), "r"(parity)
                 : "memory");
  }
#else
  (void)bar;
  (void)parity;
  __trap();
#endif
}

/// Copies `bytes` (a multiple of 16; both addresses 16-byte aligned) from global src to shared dst,
/// completing on bar (the bytes counted against what stream_barrier_expect armed).
__device__ __forceinline__ void stream_bulk_copy(void* dst, const void* src, unsigned bytes,
                                                 std::uint64_t* bar) noexcept {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, "
               "[%3];" ::"r"(stream_smem_addr(dst)),
               "l"(src), "r"(bytes), "r"(stream_smem_addr(bar))
               : "memory");
#else
  (void)dst;
  (void)src;
  (void)bytes;
  (void)bar;
  __trap();
#endif
}

/// Orders this thread's (and, after a __syncwarp, its warp's) earlier reads of shared memory before
/// the bulk copies it issues next (the generic and the async proxy).
__device__ __forceinline__ void stream_fence_before_copy() noexcept {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
#endif
}

/// The barriers' part of the kernel's dynamic shared memory (warps x stages, 8 bytes each),
/// rounded up to 16 bytes: the staged x after it starts 16-byte aligned.
__host__ __device__ constexpr std::size_t linear_stream_barrier_bytes(int warps,
                                                                      int stages) noexcept {
  return (std::size_t(warps) * std::size_t(stages) * 8 + 15) / 16 * 16;
}

/// Dynamic shared memory of the streamed kernel: the barriers, the staged x (M rows of K f32), the
/// buffers (Warps x stages x R rows of K weights).
constexpr std::size_t linear_stream_smem_bytes(int warps, int stages, index_t M, index_t K,
                                               std::size_t weight_bytes) noexcept {
  return linear_stream_barrier_bytes(warps, stages) +
         std::size_t(M) * std::size_t(K) * sizeof(float) +
         std::size_t(warps) * std::size_t(stages) * std::size_t(linear_stream_rows) *
             std::size_t(K) * weight_bytes;
}

/// The streamed GEMV kernel (see the top of the file). MR = M (1 or 2) rows of x; Pro: x goes
/// through the prologue np while it is staged (np's fields unset: a copy).
template <class Weight, int MR, int Warps, bool Pro>
__global__ void __launch_bounds__(Warps * 32, 1)
    linear_stream_kernel(const linear_args<float, Weight> a, const linear_input_prologue np,
                         const int stages) {
  constexpr int R = linear_stream_rows;
  constexpr int VEC = 16 / int(sizeof(Weight)); // weights per 16-byte piece
  extern __shared__ __align__(16) unsigned char linear_stream_smem[];
  __shared__ float stage_sq[Warps][MR]; // each warp's part of the rows' sums of squares
  const index_t K = a.x.shape[1], N = a.w.shape[0];
  const int items = int(K / VEC); // 16-byte pieces of a row (K * 4 bytes of x fit shared memory)
  const int lane = int(threadIdx.x) % 32, warp = int(threadIdx.x) / 32;
  const std::size_t row_bytes = std::size_t(K) * sizeof(Weight);
  std::uint64_t* const bars = reinterpret_cast<std::uint64_t*>(linear_stream_smem) + warp * stages;
  float4* const staged =
      reinterpret_cast<float4*>(linear_stream_smem + linear_stream_barrier_bytes(Warps, stages));
  unsigned char* const buffers =
      reinterpret_cast<unsigned char*>(staged) + std::size_t(MR) * std::size_t(K) * sizeof(float);
  unsigned char* const mine = buffers + std::size_t(warp) * std::size_t(stages) * R * row_bytes;

  // This CTA's row groups [g0, g1); this warp's are g0 + warp + Warps i, i < count.
  const index_t groups = (N + R - 1) / R, G = index_t(gridDim.x), b = index_t(blockIdx.x);
  const index_t g0 = groups * b / G, g1 = groups * (b + 1) / G;
  const index_t count = g1 - g0 > warp ? (g1 - g0 - warp + Warps - 1) / Warps : 0;
  const auto group_of = [&](index_t i) { return g0 + warp + index_t(Warps) * i; };
  // Lane 0: the rows of the warp's i-th group into its buffer i % stages.
  const auto issue = [&](index_t i) {
    const index_t n0 = group_of(i) * R;
    const int rows = N - n0 < R ? int(N - n0) : R;
    const int s = int(i % stages);
    unsigned char* dst = mine + std::size_t(s) * R * row_bytes;
    stream_barrier_expect(&bars[s], unsigned(rows * row_bytes));
    for (int r = 0; r < rows; ++r)
      stream_bulk_copy(dst + std::size_t(r) * row_bytes, a.w.data + (n0 + r) * a.w.stride[0],
                       unsigned(row_bytes), &bars[s]);
  };

  if (lane == 0) {
    for (int s = 0; s < stages; ++s)
      stream_barrier_init(&bars[s], 1u);
    stream_barrier_fence_init();
  }
  __syncwarp();
  const index_t first = count < stages ? count : index_t(stages);
  // Overlapped launch (launch.cuh): weights promised constant are asked for before the wait.
  if (!a.w_constant) wait_for_prior_kernels();
  if (lane == 0)
    for (index_t i = 0; i < first; ++i)
      issue(i);
  wait_for_prior_kernels(); // x (and the prologue's inputs) are read only after it
  let_next_kernel_start();

  float ss[MR];
#pragma unroll
  for (int m = 0; m < MR; ++m)
    ss[m] = 0.0f;
  linear_stage_input<MR, VEC, Warps * 32, 4>(a.x, np, staged, ss);
  if (Pro && np.weight) {
#pragma unroll
    for (int m = 0; m < MR; ++m) {
      const float s = linear_warp_sum(ss[m]);
      if (lane == 0) stage_sq[warp][m] = s;
    }
  }
  __syncthreads();
  float scale[MR]; // the rows' RMSNorm factors (1 without a norm)
#pragma unroll
  for (int m = 0; m < MR; ++m) {
    scale[m] = 1.0f;
    if (Pro && np.weight) {
      float row_sq = 0.0f;
#pragma unroll
      for (int w = 0; w < Warps; ++w) // in order w = 0..Warps-1, as the register kernel
        row_sq += stage_sq[w][m];
      scale[m] = rsqrtf(row_sq / float(K) + np.eps);
    }
  }

  for (index_t i = 0; i < count; ++i) {
    const int s = int(i % stages);
    stream_barrier_wait(&bars[s], unsigned((i / stages) & 1));
    const index_t n0 = group_of(i) * R;
    const uint4* rows = reinterpret_cast<const uint4*>(mine + std::size_t(s) * R * row_bytes);
    float acc[MR][R];
#pragma unroll
    for (int m = 0; m < MR; ++m)
#pragma unroll
      for (int r = 0; r < R; ++r)
        acc[m][r] = 0.0f;
#pragma unroll 2
    for (int j = lane; j < items; j += 32) {
      float wf[R][VEC];
#pragma unroll
      for (int r = 0; r < R; ++r) {
        // A row past N (the last group of an odd N; warp-uniform) was not copied: zeros.
        const uint4 u = n0 + r < N ? rows[r * items + j] : make_uint4(0u, 0u, 0u, 0u);
        constexpr int per_word = 4 / int(sizeof(Weight));
        linear_unpack_word<Weight>(u.x, &wf[r][0 * per_word]);
        linear_unpack_word<Weight>(u.y, &wf[r][1 * per_word]);
        linear_unpack_word<Weight>(u.z, &wf[r][2 * per_word]);
        linear_unpack_word<Weight>(u.w, &wf[r][3 * per_word]);
      }
#pragma unroll
      for (int m = 0; m < MR; ++m) {
        float xf[VEC];
        linear_staged_piece<VEC>(staged, m, j, items, xf);
#pragma unroll
        for (int r = 0; r < R; ++r)
#pragma unroll
          for (int e = 0; e < VEC; ++e)
            acc[m][r] = fmaf(xf[e], wf[r][e], acc[m][r]);
      }
    }
    __syncwarp(); // every lane is done with buffer s
    if (lane == 0 && i + stages < count) {
      stream_fence_before_copy();
      issue(i + stages);
    }
    float out = 0.0f; // lane m R + r keeps output (m, n0 + r)
#pragma unroll
    for (int m = 0; m < MR; ++m)
#pragma unroll
      for (int r = 0; r < R; ++r) {
        const float v = linear_warp_sum(acc[m][r]);
        if (lane == m * R + r) out = v * scale[m];
      }
    if (lane < MR * R) {
      const index_t m = lane / R, n = n0 + lane % R;
      if (m < a.x.shape[0] && n < N) a.y(m, n) = linear_from_f32<float>(out);
    }
  }
}

/// Warps and stages of the streamed kernel for these shapes within `limit` bytes of shared memory:
/// of 8 or 4 warps and 1 .. linear_stream_max_stages stages (no more than the groups a warp owns
/// with `ctas` CTAs), the one with the most buffer bytes (the bytes a multiprocessor can have in
/// flight), 8 warps on a tie; warps == 0 where not even 4 warps of one stage fit.
struct linear_stream_shape {
  int warps = 0;
  int stages = 0;
};

inline linear_stream_shape linear_stream_choose(index_t M, index_t K, index_t N,
                                                std::size_t weight_bytes, index_t ctas,
                                                std::size_t limit) noexcept {
  const index_t groups = (N + linear_stream_rows - 1) / linear_stream_rows;
  linear_stream_shape best;
  std::size_t best_bytes = 0;
  for (int warps : {8, 4}) {
    const index_t per_warp = (groups + ctas * warps - 1) / (ctas * warps);
    const int most = per_warp < linear_stream_max_stages ? int(per_warp) : linear_stream_max_stages;
    for (int s = most; s >= 1; --s) {
      if (linear_stream_smem_bytes(warps, s, M, K, weight_bytes) > limit) continue;
      const std::size_t bytes = std::size_t(warps) * std::size_t(s);
      if (bytes > best_bytes) {
        best = {warps, s};
        best_bytes = bytes;
      }
      break; // fewer stages of the same warps only hold less
    }
  }
  return best;
}

/// Whether linear_stream_kernel serves a (the layouts at the top of the file), on a device whose
/// CTAs may opt in to `limit` bytes of shared memory.
template <int Sm, class Act, class Weight>
bool linear_stream_fits(const linear_args<Act, Weight>& a, std::size_t limit) noexcept {
  if constexpr (Sm < 90 || !std::is_same_v<Act, float> || sizeof(Weight) != 2) {
    (void)a;
    (void)limit;
    return false;
  } else {
    const index_t M = a.x.shape[0], K = a.x.shape[1], N = a.w.shape[0];
    if (M < 1 || M > 2 || K < 8 || K % 8 != 0 || N < 1) return false;
    if (!linear_gemv_stages<Sm>(M, K)) return false; // x's K f32 fit the staging's bound
    // The register kernel's 16-byte pieces (unit inner strides, 16-byte aligned data and rows of
    // x and w) are the bulk copies' and the staging's alignment too.
    if (!linear_gemv_vec(a)) return false;
    // The smallest shape linear_stream_choose takes: 4 warps of one stage.
    return linear_stream_smem_bytes(4, 1, M, K, sizeof(Weight)) <= limit;
  }
}

/// Launches linear_stream_kernel for a (linear_stream_fits(a) was true): one CTA per
/// multiprocessor (fewer when there are fewer row groups).
template <int Sm, int MR, bool Pro, class Weight>
status linear_stream_launch(const linear_args<float, Weight>& a, const linear_input_prologue& np,
                            const launch_target& on, std::size_t limit) noexcept {
  const index_t N = a.w.shape[0], groups = (N + linear_stream_rows - 1) / linear_stream_rows;
  const index_t sms = device_sm_count();
  const index_t ctas = groups < sms ? groups : sms;
  const auto shape = linear_stream_choose(MR, a.x.shape[1], N, sizeof(Weight), ctas, limit);
  RODIMUS_REQUIRE(shape.warps > 0, unsupported, "w"); // linear_stream_fits said otherwise
  const std::size_t smem =
      linear_stream_smem_bytes(shape.warps, shape.stages, MR, a.x.shape[1], sizeof(Weight));
  const auto go = [&](auto kernel, int warps) {
    RODIMUS_CUDA_TRY(
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
    RODIMUS_CUDA_TRY(
        launch(on, kernel, unsigned(ctas), unsigned(warps * 32), smem, a, np, shape.stages));
    return status::success();
  };
  if (shape.warps == 8) return go(linear_stream_kernel<Weight, MR, 8, Pro>, 8);
  return go(linear_stream_kernel<Weight, MR, 4, Pro>, 4);
}

} // namespace rodimus::detail
