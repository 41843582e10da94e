// SW-SKA prefill on the tensor cores (cuda<Sm>, Sm >= 80): the path swska_prefill takes when
// be.matmul == cuda_matmul::rounded and the head dim D is 64 or 128 (swska_mma_supports); every
// other call, and every call in the default cuda_matmul::exact mode, runs the f32 kernel of
// backend/cuda/swska.cuh unchanged. The sequences, packed offsets, history rings, windows and
// skipped sequences are those of that kernel (the same work items, the same per-sequence key
// range [lo, hi], the same skip rule: a skipped sequence's output rows are left untouched).
//
// Numerics (flash-attention style, one bf16 rounding of q, k, v and p):
//   q, k, v (and the history rings) are rounded to bf16 once (round to nearest even; exact for
//   bf16 Act); S = scale * Q K^T by mma.sync m16n8k16 (bf16 inputs, f32 accumulation); the
//   online softmax in f32 (row max and sum, ex2.approx of log2e-scaled scores); p rounded to bf16
//   for O += P V (f32 accumulation) while the row sum l adds the unrounded f32 p; o = O / l rounded
//   to Act. Against the exact maths on the ROUNDED q, k, v, the error of an output element is the
//   rounding of p (a relative 2^-8 per term of sum_j p_j v_jd) plus f32 accumulation:
//     |o_d - o_ref_d| <= (2^-8 + f32 terms) * sum_j w_j |v_jd|     (w_j the softmax weights)
//   which tests/cases/swska_cases.hpp (swska_rounded_bound) checks per element. Against f32
//   inputs the rounding of q and k moves each score by up to 2^-7 scale sum_d |q_d k_jd|, the
//   same size as a bf16 model's attention.
//
// Kernel (one CTA per work item, grid-stride): item = (batch row, tile of QT query tokens, key
// head hk, chunk of GW <= 2 query heads of hk's group); the tile (swska_mma_tile<D, MT, BK>,
// chosen by cuda_tuning swska_rows / swska_keys or by swska_mma_dispatch) gives each warp MT
// m-tiles of 16 query rows (QT = 4 x 16 MT) and takes BK keys per shared-memory tile. Items run
// with the token tiles from the last (under a causal window the last tiles see the most keys, so
// the short ones fill the tail of the grid). Warp w serves query head w / 4 of the chunk and the
// query tokens 16 MT (w % 4) .. + 16 MT - 1 of the tile; the CTA has 4 GW warps. The query tile
// of each head is rounded to bf16 into shared memory once per item; each warp reads its A
// fragments from there by ldmatrix.x4 (no registers held across the key loop). For each sequence
// overlapping the tile, over its key range in tiles of BK keys, double buffered (2 stages of
// shared memory): the key tile (BK x D) of the shared key head and each head's value tile are
// copied into stage (tile + 1) % 2 while every warp computes on the tile in the other stage; one
// __syncthreads per tile (after cp.async.wait_all: the tile has landed, and every warp is done
// with the stage the next copy overwrites). Copies: 16-byte cp.async.cg from bf16 sources (a
// bf16 Act view with 16-byte rows, or the pre-pass copies below), one row pointer per head and a
// stride step per row where the whole tile is fresh tokens; any other source (f16 / f32 without
// workspace, odd strides, f32 history rings) is read by plain loads, converted to bf16 and stored
// (those tiles are not overlapped with compute). Per warp and m-tile: S (16 x BK, BK / 8 n-tiles
// of 8 keys, D / 16 k-steps; the key B fragments of two n-tiles per ldmatrix.x4, shared by the
// MT m-tiles), scaled to log2 units and masked (skipped when the whole tile is inside every row's
// window, for the whole warp), the online softmax on the accumulator fragments (row max over the
// 4 lanes of a quad, p = 2^(s - m) by ex2.approx), P packed to bf16 as the A operand (the C
// fragment of n-tiles 2j, 2j + 1 is the A fragment of k-step j), and O += P V with the value
// tile's B fragments from ldmatrix.x4.trans (each shared by the MT m-tiles). Shared rows are
// padded by 8 bf16 (row strides of 272 / 144 bytes: conflict-free ldmatrix and 16-byte aligned
// rows). Dynamic shared memory: (2 x (1 + GW) x BK + GW x QT) x (D + 8) x 2 bytes and the copies'
// state (swska_mma_copy_state, 128 bytes) (at D = 128, GW = 2: 136 KiB for 16 / 64, 119 KiB for
// 32 / 32, 170 KiB for 32 / 64; opted in with cudaFuncSetAttribute on every launch: the attribute
// is per device; by default a device with less shared memory per CTA takes 32 / 32 or the f32
// kernel, swska_mma_dispatch).
// Pre-pass (non-bf16 Act, when the workspace holds swska_prefill_workspace_bytes): k and v are
// rounded to bf16 once into dense (B, T, H, D) copies in the workspace (swska_mma_round_kernel),
// which the tiles are then copied from; without it the same kernel converts by plain loads.
// ptxas (CUDA 13, sm_90, D = 128): 211 registers and no spills at 16 / 64; 255 and 104 bytes of
// spill stores at 32 / 32, 276 bytes at 32 / 64 (the O accumulators alone are 128 registers there;
// D = 64: 251 registers, no spills at 32 / 64). The copies' state (swska_mma_copy_state) is read
// from shared memory, so that it holds no registers across the key loop. History: the first version
// (plain-load tiles, 32-bit key loads) took 2.11 ms on bm_swska_prefill/8/2048/1/2048 (H100), the
// cp.async / ldmatrix one of 2026-12-06 1.51 ms (0.102 of the GEMM rate; ncu: 1850 instructions per
// warp and key tile, issue-bound at 8 warps per SM). The fragment index arithmetic (Q, K by
// ldmatrix.x4, P repacking, ldmatrix.trans addresses, O columns) and the tile copy's coverage were
// checked on the host by emulating the PTX layouts of mma.m16n8k16 and ldmatrix for one warp's
// tile.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <climits>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "rodimus/backend/cuda/swska.cuh"

namespace rodimus::detail {

/// Whether the tensor-core prefill serves head dim D (else the f32 kernel runs).
inline bool swska_mma_supports(index_t D) noexcept { return D == 64 || D == 128; }

/// What the copies of a sequence's key and value tiles read (kernel's shared memory, per CTA):
/// entry 0 the key head, 1 + w the value head of the CTA's head w.
struct swska_mma_copy_state {
  const std::uint16_t* fresh[3]; // bf16 source at the sequence's first token (nullptr: none)
  index_t step[3];               // its row stride
  index_t head[3];               // the head read
  index_t lo, hi, hist, hs;      // key range, history length, history slot
  int on[3];                     // the head exists (else its tiles are zero)
};

/// Tile shape of the tensor-core prefill for head dim D, MT m-tiles of 16 query rows per warp and
/// key tiles of BK keys (the listed shapes: swska_tuning_listed).
template <int D, int MT, int BK> struct swska_mma_tile {
  static constexpr int mma_rows = 16; // the M of mma.m16n8k16
  static constexpr int mtiles = MT;   // m-tiles per warp: each K / V fragment feeds MT mma's
  static constexpr int rows_per_warp = mma_rows * MT;
  static constexpr int warps_per_head = 4;
  static constexpr int queries = rows_per_warp * warps_per_head; // query tokens per CTA
  static constexpr int keys = BK;                                // keys per shared-memory tile
  static constexpr int max_heads = 2;                            // query heads per CTA (GW)
  static constexpr int max_threads = max_heads * warps_per_head * 32;
  static constexpr int ld = D + 8; // shared row stride in bf16 (padding: conflict-free fragments)
  static constexpr int stages = 2; // key / value tiles in flight (cp.async double buffering)
  static constexpr int min_blocks = 1; // CTAs per SM asked of ptxas
  /// Two stages of (key tile, value tile per head), the query tile of each head, the copy state.
  static constexpr std::size_t smem_bytes(int heads) {
    return (std::size_t(stages) * std::size_t(1 + heads) * keys + std::size_t(heads) * queries) *
               ld * sizeof(std::uint16_t) +
           (sizeof(swska_mma_copy_state) + 15) / 16 * 16;
  }
  static_assert(MT == 1 || MT == 2, "one or two m-tiles per warp");
  static_assert(BK % 16 == 0 && BK >= 16, "key tiles of 16-key k-steps");
  static_assert(D % 16 == 0 && (ld * 2) % 16 == 0, "16-byte aligned shared rows");
};

/// Whether 8 consecutive elements along D can be read as one 16-byte vector at every row of `x`
/// (unit inner stride, 16-byte aligned base and row strides; D is a multiple of 8 here).
template <class T> bool swska_mma_vector_ok(const tensor_view<const T, 4>& x) noexcept {
  constexpr index_t per = index_t(16 / sizeof(T));
  if (!x.data || x.stride[3] != 1) return false;
  if (reinterpret_cast<std::uintptr_t>(x.data) % 16 != 0) return false;
  return x.stride[0] % per == 0 && x.stride[1] % per == 0 && x.stride[2] % per == 0;
}

/// Which of the query, key and value sources take 16-byte vectors.
struct swska_mma_vectors {
  bool q = false, k = false, v = false, ring_k = false, ring_v = false;
};

/// The key / value sources as bf16 bits (16-byte aligned rows, unit inner stride), copied into
/// shared memory by cp.async: a view whose data is nullptr is read from the problem's Act view
/// instead (plain loads converted to bf16, `vec`: 16-byte vectors where that view allows).
struct swska_mma_sources {
  tensor_view<const std::uint16_t, 4> k, v, ring_k, ring_v;
  swska_mma_vectors vec;
};

/// A bf16 view's bits (same shape and strides).
inline tensor_view<const std::uint16_t, 4> swska_mma_bits(const tensor_view<const bf16, 4>& x) {
  tensor_view<const std::uint16_t, 4> y;
  y.data = reinterpret_cast<const std::uint16_t*>(x.data);
  for (int d = 0; d < 4; ++d) {
    y.shape[d] = x.shape[d];
    y.stride[d] = x.stride[d];
  }
  return y;
}

/// 16 bytes global -> shared, asynchronously (cp.async.cg: through L2 only).
__device__ __forceinline__ void swska_cp_async16(void* dst, const void* src) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  const unsigned a = static_cast<unsigned>(__cvta_generic_to_shared(dst));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(a), "l"(src) : "memory");
#else
  (void)dst;
  (void)src;
  __trap();
#endif
}

__device__ __forceinline__ void swska_cp_async_commit() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.commit_group;\n" ::: "memory");
#endif
}

/// Waits for every cp.async of this thread (the CTA then still needs a barrier).
__device__ __forceinline__ void swska_cp_async_wait_all() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.wait_all;\n" ::: "memory");
#endif
}

__device__ __forceinline__ std::uint32_t swska_mma_pack(float lo, float hi) {
  return std::uint32_t(__bfloat16_as_ushort(__float2bfloat16_rn(lo))) |
         (std::uint32_t(__bfloat16_as_ushort(__float2bfloat16_rn(hi))) << 16);
}

/// Two consecutive elements (d, d + 1; element stride sd) of any Act as packed bf16.
template <class Act>
__device__ __forceinline__ std::uint32_t swska_mma_load2(const Act* p, index_t sd) {
  return swska_mma_pack(load_as<float>(p[0]), load_as<float>(p[sd]));
}

/// Eight consecutive elements along D as packed bf16 (out[i] = elements 2i, 2i + 1).
template <class Act>
__device__ __forceinline__ void swska_mma_load8(const Act* p, index_t sd, bool vec,
                                                std::uint32_t (&out)[4]) {
  if (vec) {
    if constexpr (std::is_same_v<Act, bf16>) {
      const uint4 u = __ldg(reinterpret_cast<const uint4*>(p));
      out[0] = u.x;
      out[1] = u.y;
      out[2] = u.z;
      out[3] = u.w;
      return;
    } else if constexpr (std::is_same_v<Act, float>) {
      const float4 a = __ldg(reinterpret_cast<const float4*>(p));
      const float4 b = __ldg(reinterpret_cast<const float4*>(p) + 1);
      out[0] = swska_mma_pack(a.x, a.y);
      out[1] = swska_mma_pack(a.z, a.w);
      out[2] = swska_mma_pack(b.x, b.y);
      out[3] = swska_mma_pack(b.z, b.w);
      return;
    } else {
      const uint4 u = __ldg(reinterpret_cast<const uint4*>(p));
      const std::uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
      for (int i = 0; i < 4; ++i)
        out[i] = swska_mma_pack(__half2float(__ushort_as_half((unsigned short)(w[i] & 0xffffu))),
                                __half2float(__ushort_as_half((unsigned short)(w[i] >> 16))));
      return;
    }
  }
#pragma unroll
  for (int i = 0; i < 4; ++i)
    out[i] = swska_mma_load2(p + index_t(2 * i) * sd, sd);
}

/// c += a b: mma.sync m16n8k16, A 16 x 16 bf16 row-major (4 registers), B 16 x 8 bf16
/// col-major (2 registers), C 16 x 8 f32 (lane t: rows t / 4 and t / 4 + 8, columns 2 (t % 4)
/// and + 1).
__device__ __forceinline__ void swska_mma_bf16(float (&c)[4], const std::uint32_t (&a)[4],
                                               std::uint32_t b0, std::uint32_t b1) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, "
               "{%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
               : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#else
  (void)c;
  (void)a;
  (void)b0;
  (void)b1;
  __trap();
#endif
}

/// Four 8 x 8 bf16 matrices from shared memory, transposed: lanes 8i .. 8i + 7 give the row
/// addresses of matrix i; lane t receives elements (2 (t % 4), t / 4) and (2 (t % 4) + 1, t / 4)
/// of each matrix (the B fragment of a row-major [k][n] tile).
__device__ __forceinline__ void swska_ldmatrix_x4_trans(std::uint32_t (&r)[4], const void* p) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  const unsigned a = static_cast<unsigned>(__cvta_generic_to_shared(p));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(a));
#else
  (void)p;
  r[0] = r[1] = r[2] = r[3] = 0u;
  __trap();
#endif
}

/// Four 8 x 8 bf16 matrices from shared memory: lanes 8i .. 8i + 7 give the row addresses of
/// matrix i; lane t receives elements (t / 4, 2 (t % 4)) and (t / 4, 2 (t % 4) + 1) of each
/// matrix (the B fragment of a row-major [n][k] tile: the key tile of S = Q K^T).
__device__ __forceinline__ void swska_ldmatrix_x4(std::uint32_t (&r)[4], const void* p) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  const unsigned a = static_cast<unsigned>(__cvta_generic_to_shared(p));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(a));
#else
  (void)p;
  r[0] = r[1] = r[2] = r[3] = 0u;
  __trap();
#endif
}

/// The pre-pass of a non-bf16 Act: x (B, T, H, D; any strides) rounded to bf16 once into the
/// dense array out (B, T, H, D), 8 elements (16 bytes) per thread and step.
template <class Act>
__global__ void swska_mma_round_kernel(const tensor_view<const Act, 4> x, std::uint16_t* out,
                                       bool vec) {
  begin_after_prior_kernels();
  const index_t T = x.shape[1], H = x.shape[2], C8 = x.shape[3] / 8;
  const index_t n = x.shape[0] * T * H * C8;
  for (index_t e = index_t(blockIdx.x) * blockDim.x + threadIdx.x; e < n;
       e += index_t(gridDim.x) * blockDim.x) {
    index_t r = e;
    const index_t c8 = r % C8;
    r /= C8;
    const index_t h = r % H;
    r /= H;
    const index_t t = r % T, b = r / T;
    std::uint32_t w[4];
    swska_mma_load8(&x(b, t, h, c8 * 8), x.stride[3], vec, w);
    reinterpret_cast<uint4*>(out)[e] = make_uint4(w[0], w[1], w[2], w[3]);
  }
}

/// ex2.approx.ftz: 2^x in a few ulp (the softmax's p, whose bf16 rounding dominates the bound);
/// 2^-inf = +0.
__device__ __forceinline__ float swska_ex2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

template <int D, int MT_, int BK_, class Act>
__global__ void __launch_bounds__(swska_mma_tile<D, MT_, BK_>::max_threads,
                                  swska_mma_tile<D, MT_, BK_>::min_blocks)
    swska_mma_prefill_kernel(const swska_cuda_problem<Act> pr, const swska_mma_sources src) {
  begin_after_prior_kernels();
  using tile = swska_mma_tile<D, MT_, BK_>;
  constexpr int BK = tile::keys, LD = tile::ld, RW = tile::rows_per_warp, QT = tile::queries;
  constexpr int MT = tile::mtiles, MH = tile::max_heads;
  constexpr int RQ = 2 * MT;         // fragment rows per lane: g + 8 (q % 2) + 16 (q / 2), q < RQ
  constexpr int KS = D / 16;         // k-steps of Q K^T
  constexpr int ND = D / 8;          // n-tiles of O
  constexpr int NS = BK / 8;         // n-tiles of S
  constexpr int C8 = D / 8;          // 8-element (16-byte) chunks of a row
  constexpr int kEmpty = 0x3fffffff; // kmin of a row without keys (above every tile offset)
  const float ninf = -INFINITY;
  extern __shared__ __align__(16) unsigned char swska_mma_smem[];
  // Stage s: the key tile [BK][LD], then the value tile of each of the GW heads [GW][BK][LD];
  // after the stages, the query tile of each head [GW][QT][LD].
  std::uint16_t* const smem = reinterpret_cast<std::uint16_t*>(swska_mma_smem);

  const int tid = int(threadIdx.x), nthreads = int(blockDim.x);
  const int lane = tid & 31, warp = tid >> 5, g = lane >> 2, tg = lane & 3;
  const index_t B = pr.q.shape[0], T = pr.q.shape[1];
  const index_t Hk = pr.k.shape[2], Hv = pr.v.shape[2];
  const index_t P = pr.ring_k.shape[0], W = pr.ring_k.data ? pr.ring_k.shape[1] : 1;
  const bool has_ring = pr.ring_k.data != nullptr;
  const index_t N = pr.mode == swska_seq_mode::batched ? B : pr.num_seqs;
  const index_t items = B * pr.tiles * Hk * pr.HC;
  const index_t wl = pr.window_left;
  const float scale2 = pr.scale * 1.4426950408889634f; // scores in log2 units: 2^x
  const int wg = warp / tile::warps_per_head, wq = warp % tile::warps_per_head;
  const int GW = pr.GW;
  const int stage_elems = (1 + GW) * BK * LD;
  std::uint16_t* const q_all = smem + tile::stages * stage_elems;
  swska_mma_copy_state* const cs =
      reinterpret_cast<swska_mma_copy_state*>(q_all + GW * QT * LD); // 16-byte aligned
  // This warp's A fragments come from rows wq RW .. + RW - 1 of its head's query tile: lane l
  // gives the address of row l % 16 of an m-tile, columns + 8 (l / 16) (ldmatrix.x4 matrices 0..3
  // = rows 0-7 / 8-15 x columns 0-7 / 8-15 of the 16 x 16 A tile, mma's a0..a3).
  const std::uint16_t* const q_frag =
      q_all + (wg * QT + wq * RW + (lane & 15)) * LD + (lane >> 4) * 8;
  // The copy of a tile: thread tid fills column chunk cc of rows r0, r0 + rstep, ... of the key
  // tile and of each value tile.
  const int cc = (tid % C8) * 8, r0 = tid / C8, rstep = nthreads / C8;

  for (index_t item = blockIdx.x; item < items; item += gridDim.x) {
    // Item order: head chunk, key head and batch row fastest, token tiles last and from the end:
    // under a causal window the last tiles see the most keys, and the CTAs take items in order,
    // so the short ones fill the tail of the grid.
    index_t rest = item;
    const index_t chunk = rest % pr.HC;
    rest /= pr.HC;
    const index_t hk = rest % Hk;
    rest /= Hk;
    const index_t bq = rest % B, tile_i = pr.tiles - 1 - rest / B;
    const index_t t0 = tile_i * QT;
    const index_t t_end = t0 + QT < T ? t0 + QT : T;
    const index_t gi = chunk * GW + wg;
    const bool head_on = gi < pr.G;            // warp-uniform
    const index_t h = hk + gi * Hk;            // this warp's query head (when head_on)
    const index_t tq0 = t0 + index_t(wq) * RW; // this warp's first query token
    // The value head of each of the CTA's heads (vh_on: the head exists).
    index_t vh[MH];
    bool vh_on[MH];
#pragma unroll
    for (int w = 0; w < MH; ++w) {
      const index_t gv = chunk * GW + w;
      vh_on[w] = w < GW && gv < pr.G;
      vh[w] = (hk + gv * Hk) % Hv;
    }

    // The query tile of each head, rounded to bf16 once; rows past the tile and absent heads are
    // zero (their rows are never written).
    __syncthreads(); // every warp is done with the previous item's query tiles
    for (int e = tid; e < GW * QT * C8; e += nthreads) {
      const int c = e % C8, j = (e / C8) % QT, w = e / (C8 * QT);
      const index_t gq = chunk * GW + w, t = t0 + j;
      std::uint32_t w8[4] = {0u, 0u, 0u, 0u};
      if (gq < pr.G && t < t_end)
        swska_mma_load8(&pr.q(bq, t, hk + gq * Hk, index_t(c) * 8), pr.q.stride[3], src.vec.q, w8);
      *reinterpret_cast<uint4*>(q_all + (w * QT + j) * LD + c * 8) =
          make_uint4(w8[0], w8[1], w8[2], w8[3]);
    }

    for (index_t n = swska_first_sequence(pr, bq, t0);
         n < (pr.mode == swska_seq_mode::batched ? bq + 1 : N); ++n) {
      index_t begin = 0, end = T;
      if (pr.mode == swska_seq_mode::packed) {
        begin = swska_clamp(index_t(pr.cu_seqlens[n]), 0, T);
        end = swska_clamp(index_t(pr.cu_seqlens[n + 1]), begin, T);
      }
      if (begin >= t_end) break;
      const index_t s0 = begin > t0 ? begin : t0, s1 = end < t_end ? end : t_end;
      if (s0 >= s1) continue;

      // The sequence's history and skip rule: exactly those of swska_attend_kernel (prefill).
      const index_t hist_raw = has_ring && pr.hist_len ? index_t(pr.hist_len[n]) : 0;
      bool skip = hist_raw < 0 || hist_raw > kSwskaCudaMaxPosition;
      const index_t hs = pr.slot ? index_t(pr.slot[n]) : n;
      if (hist_raw > 0 && (hs < 0 || hs >= P)) skip = true;
      if (is_padding_slot(hs)) skip = true; // a padding sequence, with or without history
      if (skip) continue;                   // CTA-uniform: nothing written for this sequence
      const index_t hist = hist_raw;
      const index_t keep = has_ring ? W : 0; // history keys: the last W positions only
      auto first_key = [&](index_t p) {
        index_t f = wl < 0 ? 0 : p - wl;
        if (f < 0) f = 0;
        return f < hist - keep ? hist - keep : f;
      };
      const index_t lo = first_key(hist + (s0 - begin));
      const index_t hi = hist + (s1 - 1 - begin); // >= lo
      // Tokens begin .. end - 1 of this sequence are keys hist .. : key ja is row ja + shift.
      const index_t shift = begin - hist;

      // This warp's rows ia <= i < ib hold tokens of the sequence (token tq0 + i at position
      // pos0 + i).
      const int ia = head_on ? int(swska_clamp(s0 - tq0, 0, RW)) : 0;
      const int ib = head_on ? int(swska_clamp(s1 - tq0, 0, RW)) : 0;
      const index_t pos0 = hist + (tq0 - begin);
      // Key offsets from lo (32-bit: a sequence's keys span at most W history positions and T
      // tokens, and swska_mma_dispatch sends W or T above INT_MAX / 4 to the f32 kernel). The
      // warp's keys lie in [wlo, whi] (wlo > whi when it has no row here); row i's in [max(first, i
      // - wl), min(p0 + i, last)] (wl < 0: no left bound).
      const int p0 = int(pos0 - lo), last = int(hi - lo);
      const int first = int((hist - keep > 0 ? hist - keep : 0) - lo); // <= 0
      const int wlo = ia < ib ? int(first_key(pos0 + ia) - lo) : kEmpty;
      const int whi = ia < ib ? p0 + ib - 1 : -1;
      // Per fragment row q (row g + 8 (q % 2) + 16 (q / 2)): its keys [kmin[q], kmax[q]] as
      // offsets from lo; kmin > kmax when the row is not one of the sequence's.
      int kmin[RQ], kmax[RQ];
#pragma unroll
      for (int q = 0; q < RQ; ++q) {
        const int i = g + 8 * (q & 1) + 16 * (q >> 1);
        kmin[q] = kEmpty;
        kmax[q] = -1;
        if (i >= ia && i < ib) { // then 0 <= p0 + i <= last
          const int left = wl < 0 ? first : p0 + i - int(wl);
          kmin[q] = left > first ? left : first;
          kmax[q] = p0 + i;
        }
      }

      // What the copies of this sequence's tiles read, in shared memory (written once per
      // sequence by thread 0): the registers stay with the products.
      __syncthreads(); // every warp is done with the previous sequence's stages and copy state
      if (tid == 0) {
#pragma unroll
        for (int w = 0; w <= MH; ++w) {
          const bool on = w == 0 || vh_on[w - 1];
          const index_t head = w == 0 ? hk : vh[w - 1];
          const auto& fast = w == 0 ? src.k : src.v;
          cs->on[w] = on;
          cs->head[w] = head;
          cs->fresh[w] = on && fast.data && end > begin ? &fast(bq, begin, head, 0) : nullptr;
          cs->step[w] = fast.stride[1];
        }
        cs->lo = lo;
        cs->hi = hi;
        cs->hist = hist;
        cs->hs = hs;
      }
      __syncthreads();

      // Copies the keys lo + jr .. + BK - 1 (and the values of the CTA's heads) into stage `st`:
      // cp.async from the bf16 sources, else plain loads converted and stored; keys past hi (and
      // the value tiles of absent heads) are zero (their p is 0, and 0 * a finite value stays 0).
      // A tile of fresh tokens only from a bf16 source (the common case) takes one row pointer
      // per head and a stride step per row.
      auto issue = [&](int jr, std::uint16_t* st) {
        const index_t jb = cs->lo + jr, c_hist = cs->hist, c_hi = cs->hi;
        const bool fresh = jb >= c_hist && jb + BK - 1 <= c_hi;
#pragma unroll
        for (int w = 0; w <= MH; ++w) {
          if (w > GW) break;
          std::uint16_t* const dst0 = st + (w * BK) * LD + cc;
          const std::uint16_t* const f = cs->fresh[w];
          if (fresh && f) {
            const index_t step = cs->step[w];
            const std::uint16_t* row = f + (jb - c_hist) * step + cc;
            for (int j = r0; j < BK; j += rstep)
              swska_cp_async16(dst0 + j * LD, row + index_t(j) * step);
            continue;
          }
          const bool on = cs->on[w] != 0;
          const index_t head = cs->head[w], c_hs = cs->hs;
          const auto& fast = w == 0 ? src.k : src.v;
          const auto& slow = w == 0 ? pr.k : pr.v;
          const auto& rfast = w == 0 ? src.ring_k : src.ring_v;
          const auto& rslow = w == 0 ? pr.ring_k : pr.ring_v;
          const bool svec = w == 0 ? src.vec.k : src.vec.v;
          const bool rvec = w == 0 ? src.vec.ring_k : src.vec.ring_v;
          for (int j = r0; j < BK; j += rstep) {
            std::uint16_t* dst = dst0 + j * LD;
            const index_t ja = jb + j;
            if (!on || ja > c_hi) {
              *reinterpret_cast<uint4*>(dst) = make_uint4(0u, 0u, 0u, 0u);
            } else if (ja < c_hist) {
              const index_t row = ja % W;
              if (rfast.data)
                swska_cp_async16(dst, &rfast(c_hs, row, head, cc));
              else {
                std::uint32_t w8[4];
                swska_mma_load8(&rslow(c_hs, row, head, cc), rslow.stride[3], rvec, w8);
                *reinterpret_cast<uint4*>(dst) = make_uint4(w8[0], w8[1], w8[2], w8[3]);
              }
            } else {
              const index_t t = shift + ja;
              if (fast.data)
                swska_cp_async16(dst, &fast(bq, t, head, cc));
              else {
                std::uint32_t w8[4];
                swska_mma_load8(&slow(bq, t, head, cc), slow.stride[3], svec, w8);
                *reinterpret_cast<uint4*>(dst) = make_uint4(w8[0], w8[1], w8[2], w8[3]);
              }
            }
          }
        }
        swska_cp_async_commit();
      };

      // Running max m (log2 units) and this lane's part of the sum l per fragment row; O.
      float m[RQ], l[RQ], acc[MT][ND][4];
#pragma unroll
      for (int q = 0; q < RQ; ++q) {
        m[q] = ninf;
        l[q] = 0.0f;
      }
#pragma unroll
      for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int nd = 0; nd < ND; ++nd)
#pragma unroll
          for (int e = 0; e < 4; ++e)
            acc[mt][nd][e] = 0.0f;

      // Double buffering: tile it + 1 is copied (cp.async) while tile it is computed. One barrier
      // per tile: after it, tile it has landed for every thread (and the query tiles are stored),
      // and every warp is done with tile it - 1, whose stage tile it + 1 then takes.
      const int ntiles = last / BK + 1;
      issue(0, smem);
      for (int it = 0; it < ntiles; ++it) {
        const int jr = it * BK; // the tile's first key, as an offset from lo
        swska_cp_async_wait_all();
        __syncthreads();
        if (it + 1 < ntiles) issue(jr + BK, smem + ((it + 1) & 1) * stage_elems);
        if (whi < jr || wlo > jr + BK - 1) continue; // warp-uniform: no key of the warp here
        const std::uint16_t* s_k = smem + (it & 1) * stage_elems;

        // S = Q K^T (per m-tile 16 x BK): n-tile nt holds keys jb + 8 nt .. + 7. One ldmatrix.x4
        // gives the B fragments of n-tiles 2 np and 2 np + 1 (matrix i: keys + 8 (i / 2), columns
        // + 8 (i % 2)), used by both m-tiles.
        float s[MT][NS][4];
#pragma unroll
        for (int mt = 0; mt < MT; ++mt)
#pragma unroll
          for (int nt = 0; nt < NS; ++nt)
#pragma unroll
            for (int e = 0; e < 4; ++e)
              s[mt][nt][e] = 0.0f;
#pragma unroll
        for (int kk = 0; kk < KS; ++kk) {
          std::uint32_t qa[MT][4];
#pragma unroll
          for (int mt = 0; mt < MT; ++mt)
            swska_ldmatrix_x4(qa[mt], q_frag + mt * 16 * LD + kk * 16);
#pragma unroll
          for (int np = 0; np < NS / 2; ++np) {
            std::uint32_t b[4];
            swska_ldmatrix_x4(b, s_k + (np * 16 + (lane >> 4) * 8 + (lane & 7)) * LD + kk * 16 +
                                     ((lane >> 3) & 1) * 8);
#pragma unroll
            for (int mt = 0; mt < MT; ++mt) {
              swska_mma_bf16(s[mt][2 * np], qa[mt], b[0], b[1]);
              swska_mma_bf16(s[mt][2 * np + 1], qa[mt], b[2], b[3]);
            }
          }
        }

        // Scale to log2 units and mask (tile-relative key bounds per row; the mask is skipped
        // when every key of the tile is in the window of each of the warp's rows).
        int ca[RQ], cb[RQ];
        bool lane_full = true;
#pragma unroll
        for (int q = 0; q < RQ; ++q) {
          ca[q] = kmin[q] - jr;
          cb[q] = kmax[q] - jr;
          lane_full = lane_full && ca[q] <= 0 && cb[q] >= BK - 1;
        }
        if (__all_sync(0xffffffffu, lane_full)) {
#pragma unroll
          for (int mt = 0; mt < MT; ++mt)
#pragma unroll
            for (int nt = 0; nt < NS; ++nt)
#pragma unroll
              for (int e = 0; e < 4; ++e)
                s[mt][nt][e] *= scale2;
        } else {
#pragma unroll
          for (int mt = 0; mt < MT; ++mt)
#pragma unroll
            for (int nt = 0; nt < NS; ++nt)
#pragma unroll
              for (int e = 0; e < 4; ++e) {
                const int q = 2 * mt + (e >> 1), col = nt * 8 + 2 * tg + (e & 1);
                s[mt][nt][e] = col >= ca[q] && col <= cb[q] ? s[mt][nt][e] * scale2 : ninf;
              }
        }

        // Online softmax: the row max over the quad, the rescale alpha of what was summed, p.
        float mu[RQ], alpha[RQ];
#pragma unroll
        for (int q = 0; q < RQ; ++q) {
          float tmax = ninf;
#pragma unroll
          for (int nt = 0; nt < NS; ++nt)
            tmax = fmaxf(tmax, fmaxf(s[q >> 1][nt][2 * (q & 1)], s[q >> 1][nt][2 * (q & 1) + 1]));
          tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, 1));
          tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, 2));
          const float mnew = fmaxf(m[q], tmax);
          alpha[q] = mnew == ninf ? 1.0f : swska_ex2(m[q] - mnew); // 0 on the row's first keys
          m[q] = mnew;
          mu[q] = mnew == ninf ? 0.0f : mnew; // a row without keys yet: its p are 2^-inf = 0
        }
        float psum[RQ];
#pragma unroll
        for (int q = 0; q < RQ; ++q)
          psum[q] = 0.0f;
#pragma unroll
        for (int mt = 0; mt < MT; ++mt)
#pragma unroll
          for (int nt = 0; nt < NS; ++nt)
#pragma unroll
            for (int e = 0; e < 4; ++e) {
              const int q = 2 * mt + (e >> 1);
              const float p = swska_ex2(s[mt][nt][e] - mu[q]);
              s[mt][nt][e] = p;
              psum[q] += p;
            }
#pragma unroll
        for (int q = 0; q < RQ; ++q)
          l[q] = l[q] * alpha[q] + psum[q]; // this lane's columns; the quad is summed at the end
#pragma unroll
        for (int mt = 0; mt < MT; ++mt)
#pragma unroll
          for (int nd = 0; nd < ND; ++nd) {
            acc[mt][nd][0] *= alpha[2 * mt];
            acc[mt][nd][1] *= alpha[2 * mt];
            acc[mt][nd][2] *= alpha[2 * mt + 1];
            acc[mt][nd][3] *= alpha[2 * mt + 1];
          }

        // O += P V: the C fragments of n-tiles 2 j and 2 j + 1 are the A fragment of k-step j
        // (packed to bf16 first: half the registers of S); each value fragment serves both
        // m-tiles.
        std::uint32_t pa[MT][BK / 16][4];
#pragma unroll
        for (int mt = 0; mt < MT; ++mt)
#pragma unroll
          for (int kj = 0; kj < BK / 16; ++kj) {
            pa[mt][kj][0] = swska_mma_pack(s[mt][2 * kj][0], s[mt][2 * kj][1]);
            pa[mt][kj][1] = swska_mma_pack(s[mt][2 * kj][2], s[mt][2 * kj][3]);
            pa[mt][kj][2] = swska_mma_pack(s[mt][2 * kj + 1][0], s[mt][2 * kj + 1][1]);
            pa[mt][kj][3] = swska_mma_pack(s[mt][2 * kj + 1][2], s[mt][2 * kj + 1][3]);
          }
        const std::uint16_t* vt = s_k + (1 + wg) * BK * LD;
#pragma unroll
        for (int kj = 0; kj < BK / 16; ++kj)
#pragma unroll
          for (int np = 0; np < D / 16; ++np) {
            std::uint32_t b[4];
            swska_ldmatrix_x4_trans(b,
                                    vt + (kj * 16 + (lane & 15)) * LD + np * 16 + (lane >> 4) * 8);
#pragma unroll
            for (int mt = 0; mt < MT; ++mt) {
              swska_mma_bf16(acc[mt][2 * np], pa[mt][kj], b[0], b[1]);
              swska_mma_bf16(acc[mt][2 * np + 1], pa[mt][kj], b[2], b[3]);
            }
          }
      }

      // Results: o = O / l for the warp's rows of this sequence (l >= 1: the row's largest p is
      // 2^0).
#pragma unroll
      for (int q = 0; q < RQ; ++q) {
        float lsum = l[q] + __shfl_xor_sync(0xffffffffu, l[q], 1);
        lsum += __shfl_xor_sync(0xffffffffu, lsum, 2);
        const int i = g + 8 * (q & 1) + 16 * (q >> 1);
        if (i < ia || i >= ib) continue;
        const float inv = 1.0f / lsum;
        const index_t t = tq0 + i;
#pragma unroll
        for (int nd = 0; nd < ND; ++nd) {
          const index_t d = index_t(nd) * 8 + 2 * tg;
          pr.o(bq, t, h, d) = store_as<Act>(acc[q >> 1][nd][2 * (q & 1)] * inv);
          pr.o(bq, t, h, d + 1) = store_as<Act>(acc[q >> 1][nd][2 * (q & 1) + 1] * inv);
        }
      }
    }
  }
  swska_cp_async_wait_all(); // (every group was waited for; nothing is left in flight)
}

/// Elements of the bf16 copies of k and v (the pre-pass of a non-bf16 Act), from the shapes of
/// q, k and v; a k or v whose head count is unset (0) counts Hq heads (Hk, Hv divide Hq), so a
/// size from q's shape alone covers every call of that q.
template <class Act>
void swska_mma_copy_elements(const swska_args<Act>& a, std::size_t& k_elems,
                             std::size_t& v_elems) noexcept {
  const std::size_t rows = workspace::product(std::size_t(a.q.shape[0] > 0 ? a.q.shape[0] : 0),
                                              std::size_t(a.q.shape[1] > 0 ? a.q.shape[1] : 0));
  const index_t Hq = a.q.shape[2] > 0 ? a.q.shape[2] : 0, D = a.q.shape[3] > 0 ? a.q.shape[3] : 0;
  const index_t Hk = a.k.shape[2] > 0 ? a.k.shape[2] : Hq,
                Hv = a.v.shape[2] > 0 ? a.v.shape[2] : Hq;
  k_elems = workspace::product(rows, std::size_t(Hk) * std::size_t(D));
  v_elems = workspace::product(rows, std::size_t(Hv) * std::size_t(D));
}

/// Sets pr's work layout for query tiles of `queries` tokens and CTAs of up to `max_heads` query
/// heads (G, GW, HC, tiles) and returns the number of work items: batch rows x token tiles x key
/// heads x head chunks.
template <class Act>
index_t swska_mma_layout(swska_cuda_problem<Act>& pr, index_t queries, int max_heads) noexcept {
  const index_t B = pr.q.shape[0], T = pr.q.shape[1], Hk = pr.k.shape[2];
  pr.G = pr.q.shape[2] / Hk;
  pr.GW = int(pr.G < max_heads ? pr.G : max_heads);
  pr.HC = (pr.G + pr.GW - 1) / pr.GW;
  pr.tiles = (T + queries - 1) / queries;
  return B * pr.tiles * Hk * pr.HC;
}

template <int D, int MT, int BK, class Act>
status swska_mma_launch(swska_cuda_problem<Act> pr, const launch_target& on,
                        workspace ws) noexcept {
  using tile = swska_mma_tile<D, MT, BK>;
  const index_t items = swska_mma_layout(pr, tile::queries, tile::max_heads);
  const index_t B = pr.q.shape[0], T = pr.q.shape[1], Hk = pr.k.shape[2];
  pr.QW = tile::warps_per_head;
  pr.splits = 1;
  if (items == 0) return status::success();
  const std::size_t smem = tile::smem_bytes(pr.GW);
  swska_mma_sources src;
  src.vec.q = swska_mma_vector_ok(pr.q);
  src.vec.k = swska_mma_vector_ok(pr.k);
  src.vec.v = swska_mma_vector_ok(pr.v);
  src.vec.ring_k = swska_mma_vector_ok(pr.ring_k);
  src.vec.ring_v = swska_mma_vector_ok(pr.ring_v);
  if constexpr (std::is_same_v<Act, bf16>) {
    // bf16 views with 16-byte rows are copied as they are; others take plain loads.
    if (src.vec.k) src.k = swska_mma_bits(pr.k);
    if (src.vec.v) src.v = swska_mma_bits(pr.v);
    if (src.vec.ring_k) src.ring_k = swska_mma_bits(pr.ring_k);
    if (src.vec.ring_v) src.ring_v = swska_mma_bits(pr.ring_v);
  } else {
    // The pre-pass: k and v rounded to bf16 into the workspace (when it holds them; else the
    // tiles are converted by plain loads). The rings (history) are converted by plain loads.
    swska_args<Act> shapes;
    shapes.q = pr.q;
    shapes.k = pr.k;
    shapes.v = pr.v;
    std::size_t ke = 0, ve = 0;
    swska_mma_copy_elements(shapes, ke, ve);
    std::uint16_t* kb = ws.take<std::uint16_t>(ke);
    std::uint16_t* vb = ws.take<std::uint16_t>(ve);
    if (kb && vb) {
      constexpr int threads = 256;
      const index_t ks[4] = {B, T, Hk, D}, vs[4] = {B, T, pr.v.shape[2], D};
      RODIMUS_CUDA_TRY(launch(on, swska_mma_round_kernel<Act>,
                              elements_grid(B * T * Hk * (D / 8), threads), threads, 0, pr.k, kb,
                              src.vec.k));
      RODIMUS_CUDA_TRY(launch(on, swska_mma_round_kernel<Act>,
                              elements_grid(B * T * vs[2] * (D / 8), threads), threads, 0, pr.v, vb,
                              src.vec.v));
      src.k = tensor_view<const std::uint16_t, 4>::contiguous(kb, ks);
      src.v = tensor_view<const std::uint16_t, 4>::contiguous(vb, vs);
    }
  }
  auto kernel = swska_mma_prefill_kernel<D, MT, BK, Act>;
  RODIMUS_CUDA_TRY(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        int(tile::smem_bytes(tile::max_heads))));
  RODIMUS_CUDA_TRY(cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout,
                                        int(cudaSharedmemCarveoutMaxShared)));
  RODIMUS_CUDA_TRY(
      launch(on, kernel, rows_grid(items), pr.GW * tile::warps_per_head * 32, smem, pr, src));
  return status::success();
}

/// Whether the device gives a CTA the shared memory of tile (D, MT, BK) at two heads.
template <int D, int MT, int BK> bool swska_mma_fits(std::size_t limit) noexcept {
  using tile = swska_mma_tile<D, MT, BK>;
  return limit >= tile::smem_bytes(tile::max_heads);
}

/// The tensor-core prefill at head dim D: the tile cuda_tuning names (swska_rows, swska_keys;
/// unsupported "tuning" where the device lacks its shared memory), else the default (below).
template <int Sm, int D, class Act>
status swska_mma_dispatch(const swska_cuda_problem<Act>& pr, const launch_target& on, workspace ws,
                          const cuda_tuning& tuning) noexcept {
  // The kernel's key offsets are 32-bit: a key range near 2^31 (a ring of W slots plus T tokens,
  // more than any memory holds) runs the f32 kernel.
  const index_t T = pr.q.shape[1], W = pr.ring_k.data ? pr.ring_k.shape[1] : 0;
  if (W > index_t(INT_MAX) / 4 || T > index_t(INT_MAX) / 4)
    return swska_prefill_dispatch<Sm>(pr, on);
  const std::size_t limit = device_smem_optin();
  const bool fits_2_64 = swska_mma_fits<D, 2, 64>(limit),
             fits_2_32 = swska_mma_fits<D, 2, 32>(limit),
             fits_1_64 = swska_mma_fits<D, 1, 64>(limit);
  const int rows = tuning.swska_rows, keys = tuning.swska_keys;
  if (rows == 0) {
    // The default: 32 / 64 (the fastest measured on an H100, bench/results/2026-12-07-h100-s14:
    // bf16 751 us at 8 x 2048 against 779 for 32 / 32 and 840 for 16 / 64) where the device has its
    // shared memory, else 32 / 32 (the least shared memory of the three), else the f32 kernel;
    // 16 / 64 where the 128-token query tiles give fewer CTAs than the device has SMs (its
    // 64-token tiles give twice as many).
    using tile_2_64 = swska_mma_tile<D, 2, 64>;
    swska_cuda_problem<Act> layout = pr;
    const index_t items = swska_mma_layout(layout, tile_2_64::queries, tile_2_64::max_heads);
    if (items < device_sm_count() && fits_1_64) return swska_mma_launch<D, 1, 64>(pr, on, ws);
    if (fits_2_64) return swska_mma_launch<D, 2, 64>(pr, on, ws);
    if (fits_2_32) return swska_mma_launch<D, 2, 32>(pr, on, ws);
    return swska_prefill_dispatch<Sm>(pr, on);
  }
  if (rows == 32 && keys == 64) {
    RODIMUS_REQUIRE(fits_2_64, unsupported, "tuning");
    return swska_mma_launch<D, 2, 64>(pr, on, ws);
  }
  if (rows == 32) {
    RODIMUS_REQUIRE(fits_2_32, unsupported, "tuning");
    return swska_mma_launch<D, 2, 32>(pr, on, ws);
  }
  RODIMUS_REQUIRE(fits_1_64, unsupported, "tuning");
  return swska_mma_launch<D, 1, 64>(pr, on, ws);
}

/// The tensor-core prefill (D = 64 or 128: swska_mma_supports; Sm >= 80, else the f32 kernel).
template <int Sm, class Act>
status swska_prefill_mma(const swska_cuda_problem<Act>& pr, const launch_target& on, workspace ws,
                         const cuda_tuning& tuning) noexcept {
  if constexpr (Sm < 80) {
    (void)ws;
    (void)tuning;
    return swska_prefill_dispatch<Sm>(pr, on);
  } else {
    if (pr.q.shape[3] == 64) return swska_mma_dispatch<Sm, 64>(pr, on, ws, tuning);
    return swska_mma_dispatch<Sm, 128>(pr, on, ws, tuning);
  }
}

} // namespace rodimus::detail
