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
//   online softmax in f32 (row max and sum, exp2f of log2e-scaled scores); p rounded to bf16 for
//   O += P V (f32 accumulation) while the row sum l adds the unrounded f32 p; o = O / l rounded
//   to Act. Against the exact maths on the ROUNDED q, k, v, the error of an output element is the
//   rounding of p (a relative 2^-8 per term of sum_j p_j v_jd) plus f32 accumulation:
//     |o_d - o_ref_d| <= (2^-8 + f32 terms) * sum_j w_j |v_jd|     (w_j the softmax weights)
//   which tests/cases/swska_cases.hpp (swska_rounded_bound) checks per element. Against f32
//   inputs the rounding of q and k moves each score by up to 2^-7 scale sum_d |q_d k_jd|, the
//   same size as a bf16 model's attention.
//
// Kernel (one CTA per work item, grid-stride): item = (batch row, tile of 64 query tokens, key
// head hk, chunk of GW <= 2 query heads of hk's group). Warp w serves query head w / 4 of the
// chunk and the 16 query tokens 16 (w % 4) .. + 15 of the tile (the M = 16 rows of its mma's);
// the CTA has 4 GW warps. For each sequence overlapping the tile, over its key range in tiles of
// 64 keys, double buffered (2 stages of shared memory): the key tile (64 x D) of the shared key
// head and each head's value tile are copied into stage (tile + 1) % 2 while every warp computes
// on the tile in the other stage; one __syncthreads per tile (after cp.async.wait_all: the tile
// has landed, and every warp is done with the stage the next copy overwrites). Copies: 16-byte
// cp.async.cg from bf16 sources (a bf16 Act view with 16-byte rows, or the pre-pass copies
// below); any other source (f16 / f32 without workspace, odd strides, f32 history rings) is read
// by plain loads, converted to bf16 and stored (those tiles are not overlapped with compute).
// Per warp: S (16 x 64, 8 n-tiles of 8 keys, D / 16 k-steps; the key B fragments of two n-tiles
// per ldmatrix.x4), the mask (skipped when the whole tile is inside the lane's two rows' windows)
// and online softmax on the accumulator fragments (row max / sum over the 4 lanes of a quad), P
// repacked in registers as the A operand (the C fragment of n-tiles 2j, 2j + 1 is the A fragment
// of k-step j), and O += P V with the value tile's B fragments from ldmatrix.x4.trans. Shared rows
// are padded by 8 bf16 (row strides of 272 / 144 bytes: conflict-free ldmatrix and 16-byte
// aligned rows). Dynamic shared memory: 2 x (1 + GW) x 64 x (D + 8) x 2 bytes (104 KiB at D = 128,
// GW = 2: opted in with cudaFuncSetAttribute, on every launch: the attribute is per device).
// Pre-pass (non-bf16 Act, when the workspace holds swska_prefill_workspace_bytes): k and v are
// rounded to bf16 once into dense (B, T, H, D) copies in the workspace (swska_mma_round_kernel),
// which the tiles are then copied from; without it the same kernel converts by plain loads.
// ptxas (CUDA 13, sm_90, bf16 and f32 Act alike): 255 registers at D = 128, 210 at D = 64, no
// spills (one CTA of 8 warps per SM; asking ptxas for 2 CTAs at D = 64 spills 348 bytes); the
// pre-pass 32. Measured (H100, 2026-12-06, bench/results/2026-12-06-h100-s12/): 1.51 ms on
// bm_swska_prefill/8/2048/1/2048 (0.102 of the GEMM rate), where the first version's plain-load
// tiles and 32-bit key loads took 2.11 ms. The fragment index arithmetic (Q, K by ldmatrix.x4, P
// repacking, ldmatrix.trans addresses, O columns) and the tile copy's coverage were checked on
// the host by emulating the PTX layouts of mma.m16n8k16 and ldmatrix for one warp's tile.
// Next steps: Q fragments from shared memory and 32-key tiles at D = 128 (2 CTAs per SM), and
// more query rows per CTA (the value tiles, one per head, dominate the copied bytes).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "rodimus/backend/cuda/swska.cuh"

namespace rodimus::detail {

/// Whether the tensor-core prefill serves head dim D (else the f32 kernel runs).
inline bool swska_mma_supports(index_t D) noexcept { return D == 64 || D == 128; }

/// Tile shape of the tensor-core prefill for head dim D.
template <int D> struct swska_mma_tile {
  static constexpr int queries = 64;       // query tokens per CTA
  static constexpr int keys = 64;          // keys per shared-memory tile
  static constexpr int rows_per_warp = 16; // the M of mma.m16n8k16
  static constexpr int warps_per_head = queries / rows_per_warp;
  static constexpr int max_heads = 2; // query heads per CTA (GW)
  static constexpr int max_threads = max_heads * warps_per_head * 32;
  static constexpr int ld = D + 8; // shared row stride in bf16 (padding: conflict-free fragments)
  static constexpr int stages = 2; // key / value tiles in flight (cp.async double buffering)
  static constexpr int min_blocks = 1; // CTAs per SM asked of ptxas (2 at D = 64 spills 348 B)
  static constexpr std::size_t smem_bytes(int heads) {
    return std::size_t(stages) * std::size_t(1 + heads) * keys * ld * sizeof(std::uint16_t);
  }
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

/// Which of the key / value sources take 16-byte vectors.
struct swska_mma_vectors {
  bool k = false, v = false, ring_k = false, ring_v = false;
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

template <int D, class Act>
__global__ void __launch_bounds__(swska_mma_tile<D>::max_threads, swska_mma_tile<D>::min_blocks)
    swska_mma_prefill_kernel(const swska_cuda_problem<Act> pr, const swska_mma_sources src) {
  begin_after_prior_kernels();
  using tile = swska_mma_tile<D>;
  constexpr int BK = tile::keys, LD = tile::ld, RW = tile::rows_per_warp, MH = tile::max_heads;
  constexpr int KS = D / 16; // k-steps of Q K^T
  constexpr int ND = D / 8;  // n-tiles of O
  constexpr int NS = BK / 8; // n-tiles of S
  constexpr int C8 = D / 8;  // 8-element (16-byte) chunks of a row
  static_assert(NS % 2 == 0 && BK % 16 == 0, "key tiles of 16-key k-steps");
  const float ninf = -INFINITY;
  extern __shared__ __align__(16) unsigned char swska_mma_smem[];
  // Stage s: the key tile [BK][LD], then the value tile of each of the GW heads [GW][BK][LD].
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
  const float scale2 = pr.scale * 1.4426950408889634f; // scores in log2 units: exp2f
  const int wg = warp / tile::warps_per_head, wq = warp % tile::warps_per_head;
  const int GW = pr.GW;
  const int stage_elems = (1 + GW) * BK * LD;
  // The copy of a tile: thread tid fills column chunk cc of rows r0, r0 + rstep, ... of the key
  // tile and of each value tile.
  const int cc = (tid % C8) * 8, r0 = tid / C8, rstep = nthreads / C8;

  for (index_t item = blockIdx.x; item < items; item += gridDim.x) {
    index_t rest = item;
    const index_t chunk = rest % pr.HC;
    rest /= pr.HC;
    const index_t hk = rest % Hk;
    rest /= Hk;
    const index_t tile_i = rest % pr.tiles, bq = rest / pr.tiles;
    const index_t t0 = tile_i * tile::queries;
    const index_t t_end = t0 + tile::queries < T ? t0 + tile::queries : T;
    const index_t gi = chunk * GW + wg;
    const bool head_on = wg < GW && gi < pr.G; // warp-uniform
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

    // The warp's Q rows (tq0 + g, tq0 + g + 8) as A fragments, rounded to bf16 once; rows past
    // the tile are zero (masked below anyway).
    std::uint32_t qf[KS][4];
    {
      const index_t ta = tq0 + g, tb = tq0 + g + 8, sd = pr.q.stride[3];
      const bool oka = head_on && ta < t_end, okb = head_on && tb < t_end;
#pragma unroll
      for (int kk = 0; kk < KS; ++kk) {
        const index_t c = index_t(kk) * 16 + 2 * tg;
        qf[kk][0] = oka ? swska_mma_load2(&pr.q(bq, ta, h, c), sd) : 0u;
        qf[kk][1] = okb ? swska_mma_load2(&pr.q(bq, tb, h, c), sd) : 0u;
        qf[kk][2] = oka ? swska_mma_load2(&pr.q(bq, ta, h, c + 8), sd) : 0u;
        qf[kk][3] = okb ? swska_mma_load2(&pr.q(bq, tb, h, c + 8), sd) : 0u;
      }
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

      // This warp's rows ia <= i < ib hold tokens of the sequence (token tq0 + i at position
      // pos0 + i); its keys lie in [wlo, whi] (empty when the warp has no row here).
      const int ia = head_on ? int(swska_clamp(s0 - tq0, 0, RW)) : 0;
      const int ib = head_on ? int(swska_clamp(s1 - tq0, 0, RW)) : 0;
      const index_t pos0 = hist + (tq0 - begin);
      const index_t wlo = ia < ib ? first_key(pos0 + ia) : 1;
      const index_t whi = ia < ib ? pos0 + ib - 1 : 0;
      // Per fragment row r (0: row g, 1: row g + 8): its keys [kmin, kmax] (empty if not a row
      // of the sequence).
      index_t kmin[2], kmax[2];
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        const int i = g + 8 * r;
        const index_t p = pos0 + i;
        kmin[r] = 1;
        kmax[r] = 0;
        if (i >= ia && i < ib) {
          kmin[r] = first_key(p);
          kmax[r] = p < hi ? p : hi;
        }
      }

      // Copies the keys jb .. jb + BK - 1 (and the values of the CTA's heads) into stage `st`:
      // cp.async from the bf16 sources, else plain loads converted and stored; keys past hi (and
      // the value tiles of absent heads) are zero (their p is 0, and 0 * a finite value stays 0).
      auto issue = [&](index_t jb, std::uint16_t* st) {
#pragma unroll
        for (int w = 0; w <= MH; ++w) {
          if (w > GW) break;
          const bool on = w == 0 || vh_on[w - 1];
          const index_t head = w == 0 ? hk : vh[w - 1];
          const auto& fast = w == 0 ? src.k : src.v;
          const auto& slow = w == 0 ? pr.k : pr.v;
          const auto& rfast = w == 0 ? src.ring_k : src.ring_v;
          const auto& rslow = w == 0 ? pr.ring_k : pr.ring_v;
          const bool svec = w == 0 ? src.vec.k : src.vec.v;
          const bool rvec = w == 0 ? src.vec.ring_k : src.vec.ring_v;
          for (int j = r0; j < BK; j += rstep) {
            std::uint16_t* dst = st + (w * BK + j) * LD + cc;
            const index_t ja = jb + j;
            if (!on || ja > hi) {
              *reinterpret_cast<uint4*>(dst) = make_uint4(0u, 0u, 0u, 0u);
            } else if (ja < hist) {
              const index_t row = ja % W;
              if (rfast.data)
                swska_cp_async16(dst, &rfast(hs, row, head, cc));
              else {
                std::uint32_t w8[4];
                swska_mma_load8(&rslow(hs, row, head, cc), rslow.stride[3], rvec, w8);
                *reinterpret_cast<uint4*>(dst) = make_uint4(w8[0], w8[1], w8[2], w8[3]);
              }
            } else {
              const index_t t = begin + (ja - hist);
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

      float m[2] = {ninf, ninf}, l[2] = {0.0f, 0.0f}, acc[ND][4];
#pragma unroll
      for (int nd = 0; nd < ND; ++nd)
#pragma unroll
        for (int e = 0; e < 4; ++e)
          acc[nd][e] = 0.0f;

      // Double buffering: tile it + 1 is copied (cp.async) while tile it is computed. One barrier
      // per tile: after it, tile it has landed for every thread, and every warp is done with
      // tile it - 1, whose stage tile it + 1 then takes.
      const index_t ntiles = (hi - lo) / BK + 1;
      __syncthreads(); // the previous sequence's (or item's) readers of the stages are done
      issue(lo, smem);
      for (index_t it = 0; it < ntiles; ++it) {
        const index_t jb = lo + it * BK;
        swska_cp_async_wait_all();
        __syncthreads();
        if (it + 1 < ntiles) issue(jb + BK, smem + int((it + 1) & 1) * stage_elems);
        if (whi < jb || wlo > jb + BK - 1 || wlo > whi) continue; // warp-uniform: no key here
        const std::uint16_t* s_k = smem + int(it & 1) * stage_elems;

        // S = Q K^T (16 x BK): n-tile nt holds keys jb + 8 nt .. + 7. One ldmatrix.x4 gives the
        // B fragments of n-tiles 2 np and 2 np + 1 (matrix i: keys + 8 (i / 2), columns
        // + 8 (i % 2)).
        float s[NS][4];
#pragma unroll
        for (int nt = 0; nt < NS; ++nt)
#pragma unroll
          for (int e = 0; e < 4; ++e)
            s[nt][e] = 0.0f;
#pragma unroll
        for (int kk = 0; kk < KS; ++kk)
#pragma unroll
          for (int np = 0; np < NS / 2; ++np) {
            std::uint32_t b[4];
            swska_ldmatrix_x4(b, s_k + (np * 16 + (lane >> 4) * 8 + (lane & 7)) * LD + kk * 16 +
                                     ((lane >> 3) & 1) * 8);
            swska_mma_bf16(s[2 * np], qf[kk], b[0], b[1]);
            swska_mma_bf16(s[2 * np + 1], qf[kk], b[2], b[3]);
          }

        // Mask (tile-relative key bounds per row, 32-bit; skipped when every key of the tile is
        // in the window of each of the lane's rows) and online softmax in log2 units.
        int ca[2], cb[2];
#pragma unroll
        for (int r = 0; r < 2; ++r) {
          ca[r] = int(swska_clamp(kmin[r] - jb, -1, BK));
          cb[r] = int(swska_clamp(kmax[r] - jb, -1, BK));
        }
        const bool full = ca[0] <= 0 && cb[0] >= BK - 1 && ca[1] <= 0 && cb[1] >= BK - 1;
        float tmax[2] = {ninf, ninf};
#pragma unroll
        for (int nt = 0; nt < NS; ++nt)
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            const int r = e >> 1, col = nt * 8 + 2 * tg + (e & 1);
            s[nt][e] = full || (col >= ca[r] && col <= cb[r]) ? s[nt][e] * scale2 : ninf;
            tmax[r] = fmaxf(tmax[r], s[nt][e]);
          }
        float alpha[2], mrow[2];
#pragma unroll
        for (int r = 0; r < 2; ++r) {
          tmax[r] = fmaxf(tmax[r], __shfl_xor_sync(0xffffffffu, tmax[r], 1));
          tmax[r] = fmaxf(tmax[r], __shfl_xor_sync(0xffffffffu, tmax[r], 2));
          alpha[r] = 1.0f;
          if (tmax[r] != ninf) { // the row has keys in this tile (uniform over the quad)
            const float mnew = fmaxf(m[r], tmax[r]);
            alpha[r] = exp2f(m[r] - mnew); // 0 on the row's first keys (m = -inf)
            m[r] = mnew;
          }
          mrow[r] = m[r];
        }
        float psum[2] = {0.0f, 0.0f};
#pragma unroll
        for (int nt = 0; nt < NS; ++nt)
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            const int r = e >> 1;
            const float p = s[nt][e] != ninf ? exp2f(s[nt][e] - mrow[r]) : 0.0f;
            s[nt][e] = p;
            psum[r] += p;
          }
#pragma unroll
        for (int r = 0; r < 2; ++r)
          l[r] = l[r] * alpha[r] + psum[r]; // this lane's columns; the quad is summed at the end
#pragma unroll
        for (int nd = 0; nd < ND; ++nd) {
          acc[nd][0] *= alpha[0];
          acc[nd][1] *= alpha[0];
          acc[nd][2] *= alpha[1];
          acc[nd][3] *= alpha[1];
        }

        // O += P V: the C fragments of n-tiles 2 j and 2 j + 1 are the A fragment of k-step j.
        const std::uint16_t* vt = s_k + (1 + wg) * BK * LD;
#pragma unroll
        for (int kj = 0; kj < BK / 16; ++kj) {
          const std::uint32_t pa[4] = {swska_mma_pack(s[2 * kj][0], s[2 * kj][1]),
                                       swska_mma_pack(s[2 * kj][2], s[2 * kj][3]),
                                       swska_mma_pack(s[2 * kj + 1][0], s[2 * kj + 1][1]),
                                       swska_mma_pack(s[2 * kj + 1][2], s[2 * kj + 1][3])};
#pragma unroll
          for (int np = 0; np < D / 16; ++np) {
            std::uint32_t b[4];
            swska_ldmatrix_x4_trans(b,
                                    vt + (kj * 16 + (lane & 15)) * LD + np * 16 + (lane >> 4) * 8);
            swska_mma_bf16(acc[2 * np], pa, b[0], b[1]);
            swska_mma_bf16(acc[2 * np + 1], pa, b[2], b[3]);
          }
        }
      }

      // Results: o = O / l for the warp's rows of this sequence (l >= 1: the row's own key).
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        float lsum = l[r] + __shfl_xor_sync(0xffffffffu, l[r], 1);
        lsum += __shfl_xor_sync(0xffffffffu, lsum, 2);
        const int i = g + 8 * r;
        if (i < ia || i >= ib) continue;
        const float inv = 1.0f / lsum;
        const index_t t = tq0 + i;
#pragma unroll
        for (int nd = 0; nd < ND; ++nd) {
          const index_t d = index_t(nd) * 8 + 2 * tg;
          pr.o(bq, t, h, d) = store_as<Act>(acc[nd][2 * r] * inv);
          pr.o(bq, t, h, d + 1) = store_as<Act>(acc[nd][2 * r + 1] * inv);
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

template <int D, class Act>
status swska_mma_launch(swska_cuda_problem<Act> pr, const launch_target& on,
                        workspace ws) noexcept {
  using tile = swska_mma_tile<D>;
  const index_t B = pr.q.shape[0], T = pr.q.shape[1], Hk = pr.k.shape[2];
  pr.G = pr.q.shape[2] / Hk;
  pr.GW = int(pr.G < tile::max_heads ? pr.G : tile::max_heads);
  pr.QW = tile::warps_per_head;
  pr.HC = (pr.G + pr.GW - 1) / pr.GW;
  pr.tiles = (T + tile::queries - 1) / tile::queries;
  pr.splits = 1;
  const index_t items = B * pr.tiles * Hk * pr.HC;
  if (items == 0) return status::success();
  swska_mma_sources src;
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
  const std::size_t smem = tile::smem_bytes(pr.GW);
  auto kernel = swska_mma_prefill_kernel<D, Act>;
  RODIMUS_CUDA_TRY(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        int(tile::smem_bytes(tile::max_heads))));
  RODIMUS_CUDA_TRY(cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout,
                                        int(cudaSharedmemCarveoutMaxShared)));
  RODIMUS_CUDA_TRY(
      launch(on, kernel, rows_grid(items), pr.GW * tile::warps_per_head * 32, smem, pr, src));
  return status::success();
}

/// The tensor-core prefill (D = 64 or 128: swska_mma_supports; Sm >= 80, else the f32 kernel).
template <int Sm, class Act>
status swska_prefill_mma(const swska_cuda_problem<Act>& pr, const launch_target& on,
                         workspace ws) noexcept {
  if constexpr (Sm < 80) {
    (void)ws;
    return swska_prefill_dispatch<Sm>(pr, on);
  } else {
    if (pr.q.shape[3] == 64) return swska_mma_launch<64>(pr, on, ws);
    return swska_mma_launch<128>(pr, on, ws);
  }
}

} // namespace rodimus::detail
