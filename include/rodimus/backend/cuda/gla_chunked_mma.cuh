// gla_chunked on the tensor cores (cuda<Sm>, Sm >= 80): the path gla_chunked takes when
// be.matmul == cuda_matmul::rounded and K <= 128 (gla_mma_supports); every other call, and every
// call in the default cuda_matmul::exact mode, runs the f32 kernel of backend/cuda/gla.cuh
// unchanged. Same contract as that kernel (gla_args: any strides, packed cu_seqlens clamped into
// [0, T], slot pools read and written in place, slot -1 and slots outside a pool skipped
// with their o rows untouched, initial_state optional, final_state may alias it; one launch, no
// workspace, no allocation or synchronisation: CUDA-graph capturable). The kernel always works in
// chunks of C = 64 tokens whatever supported chunk size is asked for (the chunk size changes only
// the rounding, not the maths: docs/MODEL.md §4.7).
//
// Numerics (one bf16 rounding per matrix operand, f32 accumulation, f32 state):
//   q, k, v are rounded to bf16 once (exact for bf16 Act); the log-decays g stay f32 and enter only
//   through e = exp(g) in (0, 1] (g = -1e4 gives e = 0: no overflow, no NaN for any g <= 0).
//   A chunk is split into 4 sub-chunks of 16 tokens. Within sub-chunk i (tokens 16i .. 16i + 15)
//   F_t = prod_{u=16i}^{t} e_u and R_s = prod_{u=s+1}^{16i+15} e_u (products of factors <= 1, in
//   f32: no cumulative sums, so no cancellation of large sums; each factor adds at most 2 ulps of
//   expf and one rounding of a multiplication), Tot_i = F_{16i+15}. Every decay factor the
//   chunked form needs is such a product, all <= 1:
//     intra-chunk, sub-chunks j < i:  q~_t = scale q_t F_t,  k^_s = k_s R_s,
//                                     A_ts = q~_t . (k^_s prod_{j<m<i} Tot_m)     (mma)
//     intra-chunk, the 16 x 16 diagonal blocks: A_ts = scale sum_c q_tc k_sc prod_{u=s+1}^{t} e_uc
//                                     for s <= t only, a running product in f32 (never an exponent
//                                     > 0, never a division; the upper triangle is zero)
//     inter-chunk:                    o_t += (q~_t prod_{m<i} Tot_m) . S_in                (mma)
//     state:                          S = diag(prod_m Tot_m) S + sum_s (k^_s prod_{m>j} Tot_m)^T
//     v_s
//   then o = A v (mma) + the inter-chunk part. Rounded to bf16 for the tensor cores: q~ (times
//   its factor), k^ (times its factor), the entries of A, and S for the inter-chunk product (the
//   state itself stays f32 in registers). So a term of o passes through at most three bf16
//   roundings (q~, k^ or S, A or q~), a term of the final state through one (k^); the f32 error
//   of the decay products is at most 5 * 2^-24 relative per token crossed. tests/cases/
//   gla_cases.hpp (gla_rounded_bound) checks every element against that bound, computed from the
//   sums of |terms| (the reference on |q|, |k|, |v|, |S0|).
//
// Kernel: one CTA of 256 threads (8 warps) per (sequence, head, tile of BV = 64 value columns),
// the state tile S (K x BV, f32) in registers as mma accumulators from the sequence's first chunk
// to its last (read once, written once: distinct state slots make the in-place update race-free).
// Warp w: mw = w % 4, nw = w / 4 owns the state rows (key channels) mw K/4 .. + K/4 - 1 and the
// tokens 16 mw .. + 15 of each chunk, both on the columns nw BV/2 .. + BV/2 - 1. Per chunk, three
// barriers:
//   1. every thread owns (sub-chunk pi = tid / 64, key channels tid % 64 + 64 m): it reads its
//      16 tokens of q, k, g (coalesced along K), computes e, F, R, Tot and stores q_r, k_r (bf16),
//      e, q~, k^ (f32); the v tile is staged as bf16 and each warp stores its state fragment as
//      bf16 (sS, the B operand of the inter-chunk product).
//   2. the diagonal blocks: warp w takes sub-chunk w / 2 and the column pairs (s, 15 - s) for
//      s = 4 (w % 2) + lane / 8 (17 entries per pair: the warps stay balanced); its 8 lanes of a
//      pair split K and sum with 3 shuffles. Warps 0..5 then take one pair (i, j) of sub-chunks
//      each (1,0) (2,0) (2,1) (3,0) (3,1) (3,2): A_ij by mma (K / 16 k-steps, 2 n-tiles), the
//      B fragment k^ prod Tot formed in registers from f32.
//   3. o rows of warp mw: the inter-chunk product (K / 16 k-steps) and A v over the sub-chunks
//      j <= mw, written to o; then the state: S *= chunk decay, S += k~^T v (4 k-steps).
// Shared memory (gla_mma_tile): 98 KiB at K = 64 (two CTAs per SM), 172 KiB at K = 128 (one);
// ptxas (CUDA 13, sm_90): 121 registers at K = 64, 198 at K = 128, no spills. Fragment layouts
// are those of swska_prefill_mma.cuh (mma.m16n8k16 A: rows g, g + 8, columns 2 tg, + 1, + 8, + 9;
// B: k 2 tg, + 1, + 8, + 9 at column g; C: rows g, g + 8, columns 2 tg, + 1; g = lane / 4,
// tg = lane % 4), reusing its helpers; the B operands from row-major [k][n] tiles (sV, sS) use its
// ldmatrix.x4.trans addressing unchanged. The index arithmetic was desk-checked against the PTX
// fragment tables for one warp: every A fragment comes from a row-major [m][k] array (sQf, sA:
// rows t, columns c or s; the state update's k~^T reads sKp[s][c] with m = c, k = s), every B
// fragment of the sub-chunk pairs from an [n][k] array (sKp rows s, columns c), every C fragment
// is stored at (row g (+ 8), column 2 tg (+ 1)) of its tile; the pairs (i, j), the diagonal steps
// and the o / state maps cover their tiles exactly once. The factorisation itself (which products
// of e and Tot multiply which operand, the bf16 roundings) was emulated on the host by
// scripts/gla_mma_emulate.py: within the bound of the tests on every gate range, and every dropped
// decay factor breaks it by 20x or more. Not yet run on a GPU when written (first version: no
// cp.async pipelining; the diagonal blocks and the staging are recomputed by every column tile).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "rodimus/backend/cuda/gla.cuh"
#include "rodimus/backend/cuda/swska_prefill_mma.cuh" // swska_mma_bf16, _pack, _ldmatrix_x4_trans

namespace rodimus::detail {

/// Whether the tensor-core chunked GLA serves key dim K (else the f32 kernel runs).
inline bool gla_mma_supports(index_t K) noexcept { return K >= 1 && K <= 128; }

/// Tile shape and shared memory of the tensor-core chunked GLA (MaxK the K bucket 64 or 128).
template <int MaxK, int BV> struct gla_mma_tile {
  static constexpr int C = 64;         // tokens per chunk
  static constexpr int SC = 16;        // tokens per sub-chunk (the M of mma.m16n8k16)
  static constexpr int NSC = C / SC;   // sub-chunks per chunk
  static constexpr int threads = 256;  // 8 warps
  static constexpr int RK = MaxK / 4;  // state rows per warp
  static constexpr int MT = RK / 16;   // state m-tiles per warp
  static constexpr int WN = BV / 2;    // columns per warp
  static constexpr int NT = WN / 8;    // n-tiles per warp
  static constexpr int CH = MaxK / 64; // key channels per thread in step 1
  static constexpr int DCH = MaxK / 8; // key channels per lane in the diagonal step
  static constexpr int LDV = BV + 8;   // bf16 row stride of sV, sS (16-byte rows, no conflicts)
  static constexpr int LDA = C + 8;    // bf16 row stride of sA
  static constexpr int LDR = MaxK + 8; // bf16 row stride of sQr, sKr
  static constexpr int LDQ = MaxK + 8; // f32 row stride of sQf (float2 reads: no conflicts)
  static constexpr int LDK = MaxK + 4; // f32 row stride of sKp, sE (column reads: no conflicts)
  // Shared memory, carved in this order (every piece a multiple of 16 bytes):
  //   sQf (C, LDQ) f32  q~ = scale q_r F      sKp (C, LDK) f32  k^ = k_r R
  //   sE  (C, LDK) f32  e = exp(g)            sTot (NSC, MaxK) f32  Tot
  //   sQr, sKr (C, LDR) bf16  q_r, k_r        sV (C, LDV) bf16  the v tile
  //   sS (MaxK, LDV) bf16  the state at the chunk's start      sA (C, LDA) bf16  the matrix A
  static constexpr std::size_t f32s =
      std::size_t(C) * LDQ + 2 * std::size_t(C) * LDK + std::size_t(NSC) * MaxK;
  static constexpr std::size_t bf16s = 2 * std::size_t(C) * LDR + std::size_t(C) * LDV +
                                       std::size_t(MaxK) * LDV + std::size_t(C) * LDA;
  static constexpr std::size_t bytes = f32s * 4 + bf16s * 2;
  static_assert(MaxK == 64 || MaxK == 128, "K buckets");
  static_assert(BV == 64 || BV == 128, "column tiles");
  static_assert((f32s * 4) % 16 == 0 && (LDV * 2) % 16 == 0, "16-byte aligned pieces");
  static_assert(bytes <= 227 * 1024, "shared memory per CTA on sm_90");
};

__device__ __forceinline__ float gla_mma_round(float x) {
  return __bfloat162float(__float2bfloat16_rn(x));
}

/// prod_{lo <= m < hi} sTot[m][c] (1 for an empty range): a decay factor across whole sub-chunks.
template <int MaxK>
__device__ __forceinline__ float gla_mma_tot(const float* sTot, int c, int lo, int hi) {
  float p = 1.0f;
  for (int m = lo; m < hi; ++m)
    p *= sTot[m * MaxK + c];
  return p;
}

/// One CTA per (sequence, head, tile of BV columns); see the top of the file.
template <int MaxK, int BV, class Act, class Gate>
__global__ void __launch_bounds__(256, MaxK == 64 ? 2 : 1)
    gla_mma_chunked_kernel(const gla_args<Act, Gate, float> a, const index_t tiles) {
  begin_after_prior_kernels();
  using tile = gla_mma_tile<MaxK, BV>;
  constexpr int C = tile::C, SC = tile::SC, NSC = tile::NSC, MT = tile::MT, NT = tile::NT;
  constexpr int RK = tile::RK, WN = tile::WN, LDV = tile::LDV, LDA = tile::LDA;
  constexpr int LDR = tile::LDR, LDQ = tile::LDQ, LDK = tile::LDK, KS = MaxK / 16;
  extern __shared__ __align__(16) unsigned char gla_mma_smem[];
  float* const sQf = reinterpret_cast<float*>(gla_mma_smem);                      // (C, LDQ)
  float* const sKp = sQf + C * LDQ;                                               // (C, LDK)
  float* const sE = sKp + C * LDK;                                                // (C, LDK)
  float* const sTot = sE + C * LDK;                                               // (NSC, MaxK)
  std::uint16_t* const sQr = reinterpret_cast<std::uint16_t*>(sTot + NSC * MaxK); // (C, LDR)
  std::uint16_t* const sKr = sQr + C * LDR;                                       // (C, LDR)
  std::uint16_t* const sV = sKr + C * LDR;                                        // (C, LDV)
  std::uint16_t* const sS = sV + C * LDV;                                         // (MaxK, LDV)
  std::uint16_t* const sA = sS + MaxK * LDV;                                      // (C, LDA)

  const index_t K = a.q.shape[3], V = a.v.shape[3];
  gla_cuda_cta cta;
  if (!gla_cuda_locate_cta(a, tiles, BV, cta)) return; // uniform over the CTA
  const index_t h = cta.h, v0 = cta.v0, b = cta.seq.b;
  const gla_cuda_sequence& seq = cta.seq;
  const int tid = int(threadIdx.x), lane = tid & 31, warp = tid >> 5;
  const int g = lane >> 2, tg = lane & 3;
  const int mw = warp & 3, nw = warp >> 2;
  const int col0 = nw * WN; // the warp's first column within the tile
  const float scale = a.scale;

  // A is lower block-triangular: the blocks above the diagonal are never read and the upper
  // triangles of the diagonal blocks are never written, so zeroing sA once makes them zero.
  for (int e = tid; e < C * LDA; e += tile::threads)
    sA[e] = 0;

  // The state fragment: st[mt][nt] covers rows (key channels) mw RK + 16 mt + g (+ 8: elements
  // 2, 3) and columns v0 + col0 + 8 nt + 2 tg (+ 1: elements 1, 3). Zero past K and V.
  float st[MT][NT][4];
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const index_t row = index_t(mw * RK + mt * 16 + g + 8 * (e >> 1));
        const index_t col = v0 + col0 + nt * 8 + 2 * tg + (e & 1);
        st[mt][nt][e] =
            a.initial_state.data && row < K && col < V ? a.initial_state(seq.p, h, row, col) : 0.0f;
      }

  for (index_t c0 = seq.t0; c0 < seq.t1; c0 += C) {
    const int L = int(seq.t1 - c0 < C ? seq.t1 - c0 : C);

    // ---- 1. Stage the chunk. ----
    // The v tile as bf16, rows past the chunk and columns past V zero (they add nothing).
    for (int e = tid; e < C * (BV / 2); e += tile::threads) {
      const int t = e / (BV / 2), c = 2 * (e % (BV / 2));
      const index_t col = v0 + c;
      const bool ok = t < L;
      const float x0 = ok && col < V ? load_as<float>(a.v(b, h, c0 + t, col)) : 0.0f;
      const float x1 = ok && col + 1 < V ? load_as<float>(a.v(b, h, c0 + t, col + 1)) : 0.0f;
      *reinterpret_cast<std::uint32_t*>(sV + t * LDV + c) = swska_mma_pack(x0, x1);
    }
    // The state at the chunk's start as bf16 (the B operand of the inter-chunk product).
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) {
        const int row = mw * RK + mt * 16 + g, col = col0 + nt * 8 + 2 * tg;
        *reinterpret_cast<std::uint32_t*>(sS + row * LDV + col) =
            swska_mma_pack(st[mt][nt][0], st[mt][nt][1]);
        *reinterpret_cast<std::uint32_t*>(sS + (row + 8) * LDV + col) =
            swska_mma_pack(st[mt][nt][2], st[mt][nt][3]);
      }
    // q, k, g of sub-chunk pi for key channel c: q_r, k_r, e, q~ = scale q_r F, k^ = k_r R, Tot.
    {
      const int pi = tid >> 6;
#pragma unroll
      for (int m = 0; m < tile::CH; ++m) {
        const int c = (tid & 63) + 64 * m;
        float qr[SC], kr[SC], e[SC];
#pragma unroll
        for (int u = 0; u < SC; ++u) {
          const int t = pi * SC + u;
          const bool ok = t < L && c < K; // past the chunk or K: q = k = 0, g = 0 (e = 1)
          qr[u] = ok ? gla_mma_round(load_as<float>(a.q(b, h, c0 + t, c))) : 0.0f;
          kr[u] = ok ? gla_mma_round(load_as<float>(a.k(b, h, c0 + t, c))) : 0.0f;
          e[u] = ok ? expf(load_as<float>(a.g(b, h, c0 + t, c))) : 1.0f;
        }
        float F = 1.0f;
#pragma unroll
        for (int u = 0; u < SC; ++u) {
          const int t = pi * SC + u;
          F *= e[u]; // F_t = prod_{16 pi <= u' <= t} e
          sQf[t * LDQ + c] = scale * qr[u] * F;
          sE[t * LDK + c] = e[u];
          sQr[t * LDR + c] = __bfloat16_as_ushort(__float2bfloat16_rn(qr[u])); // exact
          sKr[t * LDR + c] = __bfloat16_as_ushort(__float2bfloat16_rn(kr[u])); // exact
        }
        sTot[pi * MaxK + c] = F;
        float R = 1.0f;
#pragma unroll
        for (int u = SC - 1; u >= 0; --u) {
          sKp[(pi * SC + u) * LDK + c] = kr[u] * R; // R_s = prod_{s < u' < 16 pi + 16} e
          R *= e[u];
        }
      }
    }
    __syncthreads();

    // ---- 2. The intra-chunk matrix A (C x C, lower block-triangular) into sA as bf16. ----
    // Diagonal blocks: warp w, sub-chunk di = w / 2, column pair p = 4 (w % 2) + lane / 8, i.e.
    // columns s = p (rows t = p .. 15) then s = 15 - p (rows t = 15 - p .. 15): 17 entries in 17
    // uniform steps. Lane quarter cq = lane % 8 sums the key channels 32 m + 4 cq + 0..3; the 8
    // lanes of a pair add up with xor-shuffles 1, 2, 4 (lanes 8 p' .. 8 p' + 7 share a pair).
    // Over the 8 warps: 4 sub-chunks x 8 pairs x 17 = the 4 x 136 entries with s <= t, once each.
    {
      const int di = warp >> 1, p = 4 * (warp & 1) + (lane >> 3), cq = lane & 7;
      const int base = di * SC;
      float wk[tile::DCH]; // k_s prod_{s < u <= t} e_u for the lane's channels
      for (int j = 0; j < 17; ++j) {
        const bool first = j < SC - p;
        const int s = first ? p : SC - 1 - p;
        const int t = first ? p + j : j - 1;
        if (j == 0 || j == SC - p) {
#pragma unroll
          for (int m = 0; m < tile::DCH / 4; ++m)
#pragma unroll
            for (int x = 0; x < 4; ++x)
              wk[4 * m + x] = __bfloat162float(
                  __ushort_as_bfloat16(sKr[(base + s) * LDR + 32 * m + 4 * cq + x]));
        }
        float acc = 0.0f;
#pragma unroll
        for (int m = 0; m < tile::DCH / 4; ++m)
#pragma unroll
          for (int x = 0; x < 4; ++x)
            acc = fmaf(
                __bfloat162float(__ushort_as_bfloat16(sQr[(base + t) * LDR + 32 * m + 4 * cq + x])),
                wk[4 * m + x], acc);
        acc += __shfl_xor_sync(0xffffffffu, acc, 1);
        acc += __shfl_xor_sync(0xffffffffu, acc, 2);
        acc += __shfl_xor_sync(0xffffffffu, acc, 4);
        if (cq == 0)
          sA[(base + t) * LDA + base + s] = __bfloat16_as_ushort(__float2bfloat16_rn(scale * acc));
        if (t + 1 < SC) {
#pragma unroll
          for (int m = 0; m < tile::DCH / 4; ++m)
#pragma unroll
            for (int x = 0; x < 4; ++x)
              wk[4 * m + x] *= sE[(base + t + 1) * LDK + 32 * m + 4 * cq + x];
        }
      }
    }
    // Sub-chunk pairs (pi > pj), one per warp 0..5: A[16 pi + r][16 pj + n] for r, n < 16 =
    // q~ (rows of pi: A fragments from sQf) times (k^ prod_{pj<m<pi} Tot) (B fragments: rows s of
    // sKp as the n index, channels as k), K / 16 k-steps, n-tiles nt = 0, 1 (columns 8 nt ..).
    if (warp < 6) {
      const int pi = warp < 1 ? 1 : warp < 3 ? 2 : 3;
      const int pj = warp < 1 ? 0 : warp < 3 ? warp - 1 : warp - 3;
      float acc[2][4];
#pragma unroll
      for (int nt = 0; nt < 2; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e)
          acc[nt][e] = 0.0f;
      const float* qa = sQf + (pi * SC + g) * LDQ;
#pragma unroll
      for (int kk = 0; kk < KS; ++kk) {
        const int c = kk * 16 + 2 * tg;
        const float2 q00 = *reinterpret_cast<const float2*>(qa + c);
        const float2 q10 = *reinterpret_cast<const float2*>(qa + 8 * LDQ + c);
        const float2 q01 = *reinterpret_cast<const float2*>(qa + c + 8);
        const float2 q11 = *reinterpret_cast<const float2*>(qa + 8 * LDQ + c + 8);
        const std::uint32_t af[4] = {swska_mma_pack(q00.x, q00.y), swska_mma_pack(q10.x, q10.y),
                                     swska_mma_pack(q01.x, q01.y), swska_mma_pack(q11.x, q11.y)};
        const float d0 = gla_mma_tot<MaxK>(sTot, c, pj + 1, pi);
        const float d1 = gla_mma_tot<MaxK>(sTot, c + 1, pj + 1, pi);
        const float d8 = gla_mma_tot<MaxK>(sTot, c + 8, pj + 1, pi);
        const float d9 = gla_mma_tot<MaxK>(sTot, c + 9, pj + 1, pi);
#pragma unroll
        for (int nt = 0; nt < 2; ++nt) {
          const float* kb = sKp + (pj * SC + nt * 8 + g) * LDK + c;
          swska_mma_bf16(acc[nt], af, swska_mma_pack(kb[0] * d0, kb[1] * d1),
                         swska_mma_pack(kb[8] * d8, kb[9] * d9));
        }
      }
#pragma unroll
      for (int nt = 0; nt < 2; ++nt) {
        std::uint16_t* dst = sA + (pi * SC + g) * LDA + pj * SC + nt * 8 + 2 * tg;
        *reinterpret_cast<std::uint32_t*>(dst) = swska_mma_pack(acc[nt][0], acc[nt][1]);
        *reinterpret_cast<std::uint32_t*>(dst + 8 * LDA) = swska_mma_pack(acc[nt][2], acc[nt][3]);
      }
    }
    __syncthreads();

    // ---- 3. Outputs of the warp's tokens 16 mw + (g, g + 8), then the state. ----
    {
      float acc[NT][4];
#pragma unroll
      for (int nt = 0; nt < NT; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e)
          acc[nt][e] = 0.0f;
      // Inter-chunk: (q~ prod_{m < mw} Tot) S_in, K / 16 k-steps; S_in rows are the k index.
      const float* qa = sQf + (mw * SC + g) * LDQ;
#pragma unroll
      for (int kk = 0; kk < KS; ++kk) {
        const int c = kk * 16 + 2 * tg;
        const float p0 = gla_mma_tot<MaxK>(sTot, c, 0, mw);
        const float p1 = gla_mma_tot<MaxK>(sTot, c + 1, 0, mw);
        const float p8 = gla_mma_tot<MaxK>(sTot, c + 8, 0, mw);
        const float p9 = gla_mma_tot<MaxK>(sTot, c + 9, 0, mw);
        const float2 q00 = *reinterpret_cast<const float2*>(qa + c);
        const float2 q10 = *reinterpret_cast<const float2*>(qa + 8 * LDQ + c);
        const float2 q01 = *reinterpret_cast<const float2*>(qa + c + 8);
        const float2 q11 = *reinterpret_cast<const float2*>(qa + 8 * LDQ + c + 8);
        const std::uint32_t af[4] = {
            swska_mma_pack(q00.x * p0, q00.y * p1), swska_mma_pack(q10.x * p0, q10.y * p1),
            swska_mma_pack(q01.x * p8, q01.y * p9), swska_mma_pack(q11.x * p8, q11.y * p9)};
#pragma unroll
        for (int np = 0; np < NT / 2; ++np) {
          std::uint32_t bf[4];
          swska_ldmatrix_x4_trans(bf, sS + (kk * 16 + (lane & 15)) * LDV + col0 + np * 16 +
                                          (lane >> 4) * 8);
          swska_mma_bf16(acc[2 * np], af, bf[0], bf[1]);
          swska_mma_bf16(acc[2 * np + 1], af, bf[2], bf[3]);
        }
      }
      // Intra-chunk: A v over the sub-chunks j <= mw (A is zero above the diagonal).
      const std::uint16_t* ar = sA + (mw * SC + g) * LDA;
      for (int j = 0; j <= mw; ++j) {
        const int s = j * SC + 2 * tg;
        const std::uint32_t af[4] = {*reinterpret_cast<const std::uint32_t*>(ar + s),
                                     *reinterpret_cast<const std::uint32_t*>(ar + 8 * LDA + s),
                                     *reinterpret_cast<const std::uint32_t*>(ar + s + 8),
                                     *reinterpret_cast<const std::uint32_t*>(ar + 8 * LDA + s + 8)};
#pragma unroll
        for (int np = 0; np < NT / 2; ++np) {
          std::uint32_t bf[4];
          swska_ldmatrix_x4_trans(bf, sV + (j * SC + (lane & 15)) * LDV + col0 + np * 16 +
                                          (lane >> 4) * 8);
          swska_mma_bf16(acc[2 * np], af, bf[0], bf[1]);
          swska_mma_bf16(acc[2 * np + 1], af, bf[2], bf[3]);
        }
      }
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        const int t = mw * SC + g + 8 * r;
        if (t >= L) continue;
#pragma unroll
        for (int nt = 0; nt < NT; ++nt) {
          const index_t col = v0 + col0 + nt * 8 + 2 * tg;
          if (col < V) a.o(b, h, c0 + t, col) = store_as<Act>(acc[nt][2 * r]);
          if (col + 1 < V) a.o(b, h, c0 + t, col + 1) = store_as<Act>(acc[nt][2 * r + 1]);
        }
      }

      // State: S = diag(prod_m Tot) S + sum_j (k^ prod_{m > j} Tot)^T v over the 4 sub-chunks
      // j (k-steps of 16 tokens); A fragment (row = channel c, column = token s) = sKp[s][c].
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) {
        const int cr = mw * RK + mt * 16 + g; // channels cr (elements 0, 1), cr + 8 (2, 3)
        const float dec0 = gla_mma_tot<MaxK>(sTot, cr, 0, NSC);
        const float dec8 = gla_mma_tot<MaxK>(sTot, cr + 8, 0, NSC);
#pragma unroll
        for (int nt = 0; nt < NT; ++nt) {
          st[mt][nt][0] *= dec0;
          st[mt][nt][1] *= dec0;
          st[mt][nt][2] *= dec8;
          st[mt][nt][3] *= dec8;
        }
#pragma unroll
        for (int j = 0; j < NSC; ++j) {
          const float f0 = gla_mma_tot<MaxK>(sTot, cr, j + 1, NSC);
          const float f8 = gla_mma_tot<MaxK>(sTot, cr + 8, j + 1, NSC);
          const float* kc = sKp + (j * SC + 2 * tg) * LDK + cr;
          const std::uint32_t af[4] = {swska_mma_pack(kc[0] * f0, kc[LDK] * f0),
                                       swska_mma_pack(kc[8] * f8, kc[LDK + 8] * f8),
                                       swska_mma_pack(kc[8 * LDK] * f0, kc[9 * LDK] * f0),
                                       swska_mma_pack(kc[8 * LDK + 8] * f8, kc[9 * LDK + 8] * f8)};
#pragma unroll
          for (int np = 0; np < NT / 2; ++np) {
            std::uint32_t bf[4];
            swska_ldmatrix_x4_trans(bf, sV + (j * SC + (lane & 15)) * LDV + col0 + np * 16 +
                                            (lane >> 4) * 8);
            swska_mma_bf16(st[mt][2 * np], af, bf[0], bf[1]);
            swska_mma_bf16(st[mt][2 * np + 1], af, bf[2], bf[3]);
          }
        }
      }
    }
    __syncthreads(); // the next chunk restages every shared array
  }

  if (a.final_state.data) {
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
      for (int nt = 0; nt < NT; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const index_t row = index_t(mw * RK + mt * 16 + g + 8 * (e >> 1));
          const index_t col = v0 + col0 + nt * 8 + 2 * tg + (e & 1);
          if (row < K && col < V) a.final_state(seq.p, h, row, col) = st[mt][nt][e];
        }
  }
}

template <int MaxK, int BV, class Act, class Gate>
status gla_mma_launch(const gla_args<Act, Gate, float>& a, const launch_target& on) noexcept {
  using tile = gla_mma_tile<MaxK, BV>;
  const index_t rows = gla_num_seqs(a) * a.q.shape[1];
  const index_t tiles = (a.v.shape[3] + BV - 1) / BV;
  RODIMUS_REQUIRE(rows <= index_t(0x7fffffff) / tiles, unsupported, "q"); // grid size limit
  const auto kernel = gla_mma_chunked_kernel<MaxK, BV, Act, Gate>;
  // Set on every launch (the attribute is per device); idempotent.
  RODIMUS_CUDA_TRY(
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(tile::bytes)));
  RODIMUS_CUDA_TRY(
      launch(on, kernel, unsigned(rows * tiles), tile::threads, tile::bytes, a, tiles));
  return status::success();
}

/// The tensor-core chunked GLA (K <= 128: gla_mma_supports; Sm >= 80, else the f32 kernel with
/// the requested chunk size).
template <int Sm, class Act, class Gate>
status gla_chunked_mma(const gla_args<Act, Gate, float>& a, int chunk,
                       const launch_target& on) noexcept {
  if constexpr (Sm < 80) {
    return gla_chunked_dispatch<gla_prefill_policy<Sm>>(a, chunk, on);
  } else {
    (void)chunk; // always chunks of 64 (see the top of the file)
    if (a.q.shape[3] <= 64) return gla_mma_launch<64, 64>(a, on);
    return gla_mma_launch<128, 64>(a, on);
  }
}

} // namespace rodimus::detail
