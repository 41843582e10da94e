// gla_chunked on the tensor cores (cuda<Sm>, Sm >= 80): the path gla_chunked takes when
// be.matmul == cuda_matmul::rounded and K <= 128 (gla_mma_supports); every other call, and every
// call in the default cuda_matmul::exact mode, runs the f32 kernel of backend/cuda/gla.cuh
// unchanged. Same contract as that kernel (gla_args: any strides, packed cu_seqlens clamped into
// [0, T], slot pools read and written in place, slot -1 and slots outside a pool skipped
// with their o rows untouched, initial_state optional, final_state may alias it; no allocation or
// synchronisation: CUDA-graph capturable) except that it takes a workspace in device memory
// (gla_chunked_workspace_bytes: the chunk records, below) and launches two kernels. It always
// works in chunks of C = 64 tokens whatever supported chunk size is asked for (the chunk size
// changes only the rounding, not the maths: docs/MODEL.md §4.7).
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
// Two kernels. The decay factors and the intra-chunk matrix depend on q, k, g only, not on the
// value columns, so they are computed once per chunk (not once per column tile) into a workspace
// record, and the per-tile kernel only multiplies bf16 operands on the tensor cores:
//
//   1. gla_mma_prepare_kernel: one CTA of 256 threads (8 warps) per (head, chunk record). It stages
//      the chunk (every thread owns sub-chunk pi = tid / 64 and key channels tid % 64 + 64 m: it
//      reads its 16 tokens of q, k, g, coalesced along K, and forms e, F, R, Tot, q_r, k_r, q~, k^
//      in shared memory), builds A in shared memory (the diagonal blocks: warp w takes sub-chunk
//      w / 2 and the column pairs (s, 15 - s) for s = 4 (w % 2) + lane / 8, 8 lanes splitting K;
//      the sub-chunk pairs (1,0) (2,0) (2,1) (3,0) (3,1) (3,2) one per warp 0..5 by mma), then
//      writes the record (gla_mma_record): qd = q~ prod_{m < i} Tot and kd = k^ prod_{m > j} Tot
//      as bf16 (C x MaxK each, row-major), A as bf16 (C x C, zero above the diagonal) and the
//      chunk decay prod_m Tot (MaxK f32). Records are indexed by a slot computed from the
//      sequence's offsets (gla_mma_first_slot: n + floor((b T + t0) / C) + chunk), unique per
//      chunk when the offsets are non-decreasing (what every host check asks) and below
//      N + ceil(B T / C) for any clamped offsets, so a packed batch needs no host-side count of
//      its chunks; the CTA of a slot finds its sequence by binary search (slots of no chunk exit
//      at once). Offsets that decrease (which no host backend takes) keep every access in bounds
//      but may give such sequences another chunk's record: their outputs are unspecified.
//   2. gla_mma_chunked_kernel: one CTA of 32 W threads per (sequence, head, tile of BV value
//      columns), the state tile S (K x BV, f32) in registers as mma accumulators from the
//      sequence's first chunk to its last (read once, written once: distinct state slots make the
//      in-place update race-free). Warp w: mw = w % 4, nw = w / 4 owns the state rows (key
//      channels) mw K/4 .. + K/4 - 1 and the tokens 16 mw .. + 15 of each chunk, both on the
//      columns nw WN .. + WN - 1 (WN = BV / (W / 4)). Tiles (BV / W): 64 / 8 at K in 65 .. 128;
//      at K <= 64 the one cuda_tuning names, else 64 / 8 where that gives every SM a CTA
//      (device_sm_count: 132 on an H100 SXM / H200) and 32 / 8 below (1 x 32768 tokens at V =
//      4096: 1.6x faster on an H200). 128 columns (on 8 or 16 warps, each CTA reading the chunk
//      records for twice the columns) were measured no faster at 8 x 2048
//      (bench/results/2026-12-06-h200-s13). The chunk records go through two shared-memory stages
//      by cp.async (record i + 1 copied while chunk i is computed) and the v tile through registers
//      (loaded before chunk i's products, converted to bf16 and stored after them). Per chunk: the
//      state as bf16 into sS, one barrier, o = qd S (K / 16 k-steps) + A v (the sub-chunks j <=
//      mw), written to o; then S = diag(decay) S + kd^T v (4 k-steps of 16 tokens; the A fragments
//      of kd^T by ldmatrix.x4.trans from the row-major kd), one barrier.
// The workspace (gla_chunked_workspace_bytes) holds H (N + ceil(B T / 64)) records: 24.3 KiB
// each at K <= 64, 40.5 KiB at K <= 128 (6.4 MiB for 8 x 2048 tokens of one head at K = 64).
// Shared memory: the prepare kernel 80 KiB at K = 64 (145 KiB at 128); the chunked kernel at
// K = 64 69.5 KiB (32 / 8), 81.5 KiB (64 / 8; two CTAs per SM each), 105.5 KiB (128 / 8,
// 128 / 16; one), 123 KiB at K = 128 (one). Fragment layouts are those of
// swska_prefill_mma.cuh (mma.m16n8k16 A: rows g, g + 8, columns 2 tg, + 1, + 8, + 9; B: k 2 tg,
// + 1, + 8, + 9 at column g; C: rows g, g + 8, columns 2 tg, + 1; g = lane / 4, tg = lane % 4),
// reusing its helpers; the B operands from row-major [k][n] tiles (sV, sS) use its
// ldmatrix.x4.trans addressing; the A operand kd^T from the row-major [token][channel] kd uses
// ldmatrix.x4.trans with the four 8 x 8 matrices (channels 0-7 / 8-15) x (tokens 0-7 / 8-15) in
// the order a0 a1 a2 a3. The factorisation itself (which products of e and Tot multiply which
// operand, the bf16 roundings) was emulated on the host by scripts/gla_mma_emulate.py: within the
// bound of the tests on every gate range, and every dropped decay factor breaks it by 20x or more.
// The one-kernel version before (every column tile recomputing the record) ran 8 x 2048 tokens at
// K = 64, V = 4096 in 2.18 ms on an H100 (0.088 of the copy bandwidth); the two kernels take
// 0.406 ms (f32 Act, 0.463 of the copy bandwidth) and 0.390 ms (bf16 Act) there
// (bench/results/2026-12-06-h100-s12/). On an H200 (bench/results/2026-12-06-h200-s13/): 0.359 ms
// f32 (0.374 of its 4.22 TB/s copy), 0.346 ms bf16; 1 x 32768 bf16 1.54 ms in 32-column tiles
// (2.47 ms in 64-column ones; fla's chunk_gla 1.195 ms).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "rodimus/backend/cuda/gla.cuh"
#include "rodimus/backend/cuda/swska_prefill_mma.cuh" // swska_mma_bf16, _pack, _ldmatrix_x4_trans

namespace rodimus::detail {

/// Whether the tensor-core chunked GLA serves key dim K (else the f32 kernel runs).
inline bool gla_mma_supports(index_t K) noexcept { return K >= 1 && K <= 128; }

/// Tokens per chunk of the tensor-core chunked GLA (whatever chunk size is asked for).
constexpr int kGlaMmaChunk = 64;

/// One chunk's record in the workspace (K bucket MaxK; channels past K hold zeros, decay 1):
///   - qd (C, MaxK) bf16: scale q_t prod_{chunk start <= u <= t} e_u (inter-chunk A operand);
///   - kd (C, MaxK) bf16: k_s prod_{s < u <= chunk end} e_u (the state update's A operand);
///   - a (C, C) bf16: the intra-chunk matrix, zero above the diagonal;
///   - decay (MaxK) f32: the product over the chunk of e.
/// (each product formed as the sub-chunk factorisation at the top of the file says).
template <int MaxK> struct gla_mma_record {
  static constexpr int C = kGlaMmaChunk;
  static constexpr std::size_t qd = 0;
  static constexpr std::size_t kd = qd + std::size_t(C) * MaxK * 2;
  static constexpr std::size_t a = kd + std::size_t(C) * MaxK * 2;
  static constexpr std::size_t decay = a + std::size_t(C) * C * 2;
  static constexpr std::size_t bytes = decay + std::size_t(MaxK) * 4;
  static_assert(bytes % 16 == 0, "16-byte pieces");
};

/// Records per head: N + ceil(B T / C) covers the slots of every chunk (gla_mma_first_slot).
/// N is taken as max(B, num_seqs) so that a size asked before cu_seqlens exists (only the
/// shapes and num_seqs set, as the mixer's workspace query does) is enough for the call.
template <class Act, class Gate, class State>
std::size_t gla_mma_records_per_head(const gla_args<Act, Gate, State>& a) noexcept {
  const std::size_t B = std::size_t(a.q.shape[0] < 0 ? 0 : a.q.shape[0]);
  const std::size_t T = std::size_t(a.q.shape[2] < 0 ? 0 : a.q.shape[2]);
  const index_t n = a.q.shape[0] > a.num_seqs ? a.q.shape[0] : index_t(a.num_seqs);
  const std::size_t bt = workspace::product(B, T);
  if (bt == std::numeric_limits<std::size_t>::max()) return bt;
  return workspace::sum(std::size_t(n < 0 ? 0 : n), (bt + kGlaMmaChunk - 1) / kGlaMmaChunk);
}

/// The slot of sequence n's first chunk: n + floor((b T + t0) / C). Chunk j of the sequence has
/// slot first + j; distinct chunks of distinct sequences never share a slot when the offsets
/// are non-decreasing (a sequence's last slot is below the next one's first), and every slot of
/// a chunk is below gla_mma_records_per_head for any clamped offsets.
__device__ __forceinline__ index_t gla_mma_first_slot(index_t n, const gla_cuda_sequence& s,
                                                      index_t T) {
  return n + (s.b * T + s.t0) / kGlaMmaChunk;
}

/// Tile shape and shared memory of the prepare kernel (MaxK the K bucket 64 or 128).
template <int MaxK> struct gla_mma_prep_tile {
  static constexpr int C = kGlaMmaChunk; // tokens per chunk
  static constexpr int SC = 16;          // tokens per sub-chunk (the M of mma.m16n8k16)
  static constexpr int NSC = C / SC;     // sub-chunks per chunk
  static constexpr int threads = 256;    // 8 warps
  static constexpr int CH = MaxK / 64;   // key channels per thread in the staging
  static constexpr int DCH = MaxK / 8;   // key channels per lane in the diagonal step
  static constexpr int LDA = C + 8;      // bf16 row stride of sA
  static constexpr int LDR = MaxK + 8;   // bf16 row stride of sQr, sKr
  static constexpr int LDQ = MaxK + 8;   // f32 row stride of sQf (float2 reads: no conflicts)
  static constexpr int LDK = MaxK + 4;   // f32 row stride of sKp, sE (column reads: no conflicts)
  // Shared memory, carved in this order (every piece a multiple of 16 bytes):
  //   sQf (C, LDQ) f32  q~ = scale q_r F      sKp (C, LDK) f32  k^ = k_r R
  //   sE  (C, LDK) f32  e = exp(g)            sTot (NSC, MaxK) f32  Tot
  //   sQr, sKr (C, LDR) bf16  q_r, k_r        sA (C, LDA) bf16  the matrix A
  static constexpr std::size_t f32s =
      std::size_t(C) * LDQ + 2 * std::size_t(C) * LDK + std::size_t(NSC) * MaxK;
  static constexpr std::size_t bf16s = 2 * std::size_t(C) * LDR + std::size_t(C) * LDA;
  static constexpr std::size_t bytes = f32s * 4 + bf16s * 2;
  static_assert(MaxK == 64 || MaxK == 128, "K buckets");
  static_assert((f32s * 4) % 16 == 0 && (LDR * 2) % 16 == 0, "16-byte aligned pieces");
  static_assert(bytes <= 227 * 1024, "shared memory per CTA on sm_90");
};

/// Tile shape and shared memory of the chunked kernel (two record stages, the state as bf16):
/// BV value columns on Warps warps, 4 row groups of warps by Warps / 4 column groups.
template <int MaxK, int BV, int Warps> struct gla_mma_tile {
  static constexpr int C = kGlaMmaChunk;
  static constexpr int SC = 16, NSC = C / SC;
  static constexpr int threads = 32 * Warps;
  static constexpr int RK = MaxK / 4;         // state rows per warp
  static constexpr int MT = RK / 16;          // state m-tiles per warp
  static constexpr int WN = BV / (Warps / 4); // columns per warp
  static constexpr int NT = WN / 8;           // n-tiles per warp
  static constexpr int LDV = BV + 8;   // bf16 row stride of sV, sS (16-byte rows, no conflicts)
  static constexpr int LDA = C + 8;    // bf16 row stride of sA
  static constexpr int LDR = MaxK + 8; // bf16 row stride of sQd, sKd
  static constexpr int VP = BV / 8;    // 8-column pieces of a v row
  static constexpr int VPT = C * VP / threads; // v pieces per thread
  // One stage: sQd, sKd (C, LDR) bf16, sA (C, LDA) bf16, sV (C, LDV) bf16, sDec (MaxK) f32.
  static constexpr std::size_t stage_bytes =
      (2 * std::size_t(C) * LDR + std::size_t(C) * LDA + std::size_t(C) * LDV) * 2 +
      std::size_t(MaxK) * 4;
  // Two stages, then sS (MaxK, LDV) bf16.
  static constexpr std::size_t bytes = 2 * stage_bytes + std::size_t(MaxK) * LDV * 2;
  // CTAs per SM the registers are budgeted for (__launch_bounds__): two (128 registers a thread)
  // for 8 warps of at most 32 columns each whose shared memory fits twice in an SM's 228 KiB;
  // 64 columns a warp need more registers than that (ptxas spills).
  static constexpr int min_ctas =
      Warps == 8 && WN <= 32 && 2 * (bytes + 1024) <= 228 * 1024 ? 2 : 1;
  static_assert(MaxK == 64 || MaxK == 128, "K buckets");
  static_assert(Warps == 8 || Warps == 16, "4 row groups by 2 or 4 column groups");
  static_assert(WN % 16 == 0 && NT % 2 == 0, "whole ldmatrix.x4 column pairs per warp");
  static_assert(VPT >= 1 && VPT * threads == C * VP, "v pieces split evenly");
  static_assert(stage_bytes % 16 == 0 && (LDV * 2) % 16 == 0 && (LDR * 2) % 16 == 0,
                "16-byte aligned pieces");
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

/// 16 bytes global -> shared without registers (cp.async.cg: L2 only, the record is read once
/// per column tile from L2).
__device__ __forceinline__ void gla_mma_cp_async16(void* smem, const void* gmem) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  const unsigned d = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(d), "l"(gmem) : "memory");
#else
  (void)smem;
  (void)gmem;
  __trap();
#endif
}
__device__ __forceinline__ void gla_mma_cp_async_commit() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.commit_group;\n" ::: "memory");
#endif
}
/// Waits until at most `Pending` of this thread's committed groups are still in flight.
template <int Pending> __device__ __forceinline__ void gla_mma_cp_async_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.wait_group %0;\n" ::"n"(Pending) : "memory");
#endif
}

/// The A operand of mma.m16n8k16 (16 x 16) from a [k][m] row-major bf16 array: the transpose of
/// the stored tile (ldmatrix.x4.trans; lane l addresses row k0 + l % 8 at column m0 of matrix
/// l / 8, matrices (m 0-7, k 0-7) (m 8-15, k 0-7) (m 0-7, k 8-15) (m 8-15, k 8-15) = a0..a3).
__device__ __forceinline__ void
gla_mma_ldmatrix_a_trans(std::uint32_t (&r)[4], const std::uint16_t* tile, int ld, int lane) {
  const int q = lane >> 3;
  swska_ldmatrix_x4_trans(r, tile + ((q >> 1) * 8 + (lane & 7)) * ld + (q & 1) * 8);
}

// ---- 1. The chunk records ----

/// One CTA per (chunk slot, head), blockIdx.x = slot H + h; see the top of the file.
template <int MaxK, class Act, class Gate>
__global__ void __launch_bounds__(256, MaxK == 64 ? 2 : 1)
    gla_mma_prepare_kernel(const gla_args<Act, Gate, float> a, unsigned char* const records,
                           const index_t N) {
  begin_after_prior_kernels();
  using tile = gla_mma_prep_tile<MaxK>;
  using rec = gla_mma_record<MaxK>;
  constexpr int C = tile::C, SC = tile::SC, NSC = tile::NSC;
  constexpr int LDA = tile::LDA, LDR = tile::LDR, LDQ = tile::LDQ, LDK = tile::LDK;
  constexpr int KS = MaxK / 16;
  extern __shared__ __align__(16) unsigned char gla_mma_smem[];
  float* const sQf = reinterpret_cast<float*>(gla_mma_smem);                      // (C, LDQ)
  float* const sKp = sQf + C * LDQ;                                               // (C, LDK)
  float* const sE = sKp + C * LDK;                                                // (C, LDK)
  float* const sTot = sE + C * LDK;                                               // (NSC, MaxK)
  std::uint16_t* const sQr = reinterpret_cast<std::uint16_t*>(sTot + NSC * MaxK); // (C, LDR)
  std::uint16_t* const sKr = sQr + C * LDR;                                       // (C, LDR)
  std::uint16_t* const sA = sKr + C * LDR;                                        // (C, LDA)

  const index_t H = a.q.shape[1], T = a.q.shape[2], K = a.q.shape[3];
  const index_t slot = index_t(blockIdx.x) / H, h = index_t(blockIdx.x) - slot * H;
  // The sequence n whose first slot is the largest <= slot (first slots increase with n).
  index_t lo = 0, hi = N - 1;
  gla_cuda_sequence seq{};
  while (lo < hi) {
    const index_t mid = lo + (hi - lo + 1) / 2;
    gla_cuda_span(a, mid, seq);
    if (gla_mma_first_slot(mid, seq, T) <= slot)
      lo = mid;
    else
      hi = mid - 1;
  }
  const index_t n = lo;
  if (N < 1 || !gla_cuda_locate(a, n, seq)) return; // uniform over the CTA
  const index_t first = gla_mma_first_slot(n, seq, T);
  if (slot < first) return;
  const index_t c0 = seq.t0 + (slot - first) * C;
  if (c0 >= seq.t1) return; // a slot between two sequences' chunks
  const int L = int(seq.t1 - c0 < C ? seq.t1 - c0 : C);
  const index_t b = seq.b;
  const int tid = int(threadIdx.x), lane = tid & 31, warp = tid >> 5;
  const int g = lane >> 2, tg = lane & 3;
  const float scale = a.scale;

  // A is lower block-triangular: the blocks above the diagonal and the upper triangles of the
  // diagonal blocks are never written, so zeroing sA makes them zero.
  for (int e = tid; e < C * LDA; e += tile::threads)
    sA[e] = 0;

  // ---- Stage: q, k, g of sub-chunk pi for key channel c: q_r, k_r, e, q~ = scale q_r F,
  // k^ = k_r R, Tot. ----
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

  // ---- The intra-chunk matrix A (C x C, lower block-triangular) into sA as bf16. ----
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
      const bool first_col = j < SC - p;
      const int s = first_col ? p : SC - 1 - p;
      const int t = first_col ? p + j : j - 1;
      if (j == 0 || j == SC - p) {
#pragma unroll
        for (int m = 0; m < tile::DCH / 4; ++m)
#pragma unroll
          for (int x = 0; x < 4; ++x)
            wk[4 * m + x] =
                __bfloat162float(__ushort_as_bfloat16(sKr[(base + s) * LDR + 32 * m + 4 * cq + x]));
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

  // ---- The record: 16-byte pieces of 8 values (8 channels of qd / kd, 8 columns of A). ----
  unsigned char* const r =
      records + (std::size_t(slot) * std::size_t(H) + std::size_t(h)) * rec::bytes;
  constexpr int KP = MaxK / 8; // pieces of a qd / kd row
  for (int e = tid; e < 2 * C * KP + C * (C / 8); e += tile::threads) {
    std::uint32_t w[4];
    std::size_t off;
    if (e < 2 * C * KP) {
      const bool is_q = e < C * KP;
      const int t = (is_q ? e : e - C * KP) / KP, c = 8 * ((is_q ? e : e - C * KP) % KP);
      const int sub = t / SC;
#pragma unroll
      for (int x = 0; x < 4; ++x) {
        float v2[2];
#pragma unroll
        for (int y = 0; y < 2; ++y) {
          const int ch = c + 2 * x + y;
          v2[y] = is_q ? sQf[t * LDQ + ch] * gla_mma_tot<MaxK>(sTot, ch, 0, sub)
                       : sKp[t * LDK + ch] * gla_mma_tot<MaxK>(sTot, ch, sub + 1, NSC);
        }
        w[x] = swska_mma_pack(v2[0], v2[1]);
      }
      off = (is_q ? rec::qd : rec::kd) + (std::size_t(t) * MaxK + c) * 2;
    } else {
      const int f = e - 2 * C * KP, t = f / (C / 8), s = 8 * (f % (C / 8));
      const uint4 u = *reinterpret_cast<const uint4*>(sA + t * LDA + s);
      w[0] = u.x, w[1] = u.y, w[2] = u.z, w[3] = u.w;
      off = rec::a + (std::size_t(t) * C + s) * 2;
    }
    *reinterpret_cast<uint4*>(r + off) = make_uint4(w[0], w[1], w[2], w[3]);
  }
  float* const dec = reinterpret_cast<float*>(r + rec::decay);
  for (int c = tid; c < MaxK; c += tile::threads)
    dec[c] = gla_mma_tot<MaxK>(sTot, c, 0, NSC);
}

// ---- 2. The column tiles ----

/// 8 consecutive value columns of one v row, held between their load and their store to shared
/// memory: raw 16-byte vectors (f32: two; bf16 / f16: one) when the view allows, else already
/// packed bf16 from scalar loads (zeros past the chunk and past V).
struct gla_mma_v_piece {
  uint4 raw[2];
  bool packed;
};

template <class Act>
__device__ __forceinline__ void
gla_mma_v_load(gla_mma_v_piece& p, const tensor_view<const Act, 4>& v, index_t b, index_t h,
               index_t t, bool row_ok, index_t col, index_t V, bool vec) {
  if (row_ok && vec && col + 8 <= V) {
    const uint4* src = reinterpret_cast<const uint4*>(&v(b, h, t, col));
    p.raw[0] = __ldg(src);
    if constexpr (sizeof(Act) == 4) p.raw[1] = __ldg(src + 1);
    p.packed = false;
    return;
  }
  std::uint32_t w[4];
#pragma unroll
  for (int x = 0; x < 4; ++x) {
    const index_t c = col + 2 * x;
    const float lo = row_ok && c < V ? load_as<float>(v(b, h, t, c)) : 0.0f;
    const float hi = row_ok && c + 1 < V ? load_as<float>(v(b, h, t, c + 1)) : 0.0f;
    w[x] = swska_mma_pack(lo, hi);
  }
  p.raw[0] = make_uint4(w[0], w[1], w[2], w[3]);
  p.packed = true;
}

template <class Act>
__device__ __forceinline__ void gla_mma_v_store(const gla_mma_v_piece& p, std::uint16_t* dst) {
  uint4 out = p.raw[0];
  if (!p.packed) {
    if constexpr (std::is_same_v<Act, float>) {
      const float4 x = *reinterpret_cast<const float4*>(&p.raw[0]);
      const float4 y = *reinterpret_cast<const float4*>(&p.raw[1]);
      out = make_uint4(swska_mma_pack(x.x, x.y), swska_mma_pack(x.z, x.w), swska_mma_pack(y.x, y.y),
                       swska_mma_pack(y.z, y.w));
    } else if constexpr (std::is_same_v<Act, f16>) {
      const std::uint32_t w[4] = {p.raw[0].x, p.raw[0].y, p.raw[0].z, p.raw[0].w};
      std::uint32_t o[4];
#pragma unroll
      for (int i = 0; i < 4; ++i)
        o[i] = swska_mma_pack(__half2float(__ushort_as_half((unsigned short)(w[i] & 0xffffu))),
                              __half2float(__ushort_as_half((unsigned short)(w[i] >> 16))));
      out = make_uint4(o[0], o[1], o[2], o[3]);
    } // bf16: the raw vector is already the operand
  }
  *reinterpret_cast<uint4*>(dst) = out;
}

/// Whether v rows can be read as 16-byte vectors of 8 columns (unit column stride, 16-byte
/// aligned base and strides).
template <class Act> bool gla_mma_v_vector_ok(const tensor_view<const Act, 4>& v) noexcept {
  constexpr index_t per = index_t(16 / sizeof(Act));
  if (!v.data || v.stride[3] != 1) return false;
  if (reinterpret_cast<std::uintptr_t>(v.data) % 16 != 0) return false;
  return v.stride[0] % per == 0 && v.stride[1] % per == 0 && v.stride[2] % per == 0;
}

/// One CTA per (sequence, head, tile of BV columns); see the top of the file.
template <int MaxK, int BV, int Warps, class Act, class Gate>
__global__ void __launch_bounds__(gla_mma_tile<MaxK, BV, Warps>::threads,
                                  gla_mma_tile<MaxK, BV, Warps>::min_ctas)
    gla_mma_chunked_kernel(const gla_args<Act, Gate, float> a, const unsigned char* const records,
                           const index_t tiles, const bool v_vec) {
  begin_after_prior_kernels();
  using tile = gla_mma_tile<MaxK, BV, Warps>;
  using rec = gla_mma_record<MaxK>;
  constexpr int C = tile::C, SC = tile::SC, NSC = tile::NSC, MT = tile::MT, NT = tile::NT;
  constexpr int RK = tile::RK, WN = tile::WN, LDV = tile::LDV, LDA = tile::LDA, LDR = tile::LDR;
  constexpr int KS = MaxK / 16, VP = tile::VP, VPT = tile::VPT;
  extern __shared__ __align__(16) unsigned char gla_mma_smem[];
  // Stage s at gla_mma_smem + s * stage_bytes: sQd, sKd (C, LDR), sA (C, LDA), sV (C, LDV) bf16,
  // then sDec (MaxK) f32; after both stages sS (MaxK, LDV) bf16.
  constexpr std::size_t oQd = 0, oKd = oQd + std::size_t(C) * LDR * 2;
  constexpr std::size_t oA = oKd + std::size_t(C) * LDR * 2, oV = oA + std::size_t(C) * LDA * 2;
  constexpr std::size_t oDec = oV + std::size_t(C) * LDV * 2;
  static_assert(oDec + MaxK * 4 == tile::stage_bytes, "stage layout");
  std::uint16_t* const sS =
      reinterpret_cast<std::uint16_t*>(gla_mma_smem + 2 * tile::stage_bytes); // (MaxK, LDV)

  const index_t H = a.q.shape[1], T = a.q.shape[2], K = a.q.shape[3], V = a.v.shape[3];
  gla_cuda_cta cta;
  if (!gla_cuda_locate_cta(a, tiles, BV, cta)) return; // uniform over the CTA
  const index_t h = cta.h, v0 = cta.v0, b = cta.seq.b;
  const gla_cuda_sequence& seq = cta.seq;
  const index_t first = gla_mma_first_slot(cta.n, seq, T);
  const int tid = int(threadIdx.x), lane = tid & 31, warp = tid >> 5;
  const int g = lane >> 2, tg = lane & 3;
  const int mw = warp & 3, nw = warp >> 2;
  const int col0 = nw * WN; // the warp's first column within the tile

  // Chunk i's record into stage i % 2 (cp.async, one commit group per chunk).
  auto copy_record = [&](index_t i) {
    const unsigned char* src =
        records + (std::size_t(first + i) * std::size_t(H) + std::size_t(h)) * rec::bytes;
    unsigned char* st = gla_mma_smem + std::size_t(i & 1) * tile::stage_bytes;
    constexpr int KP = MaxK / 8, AP = C / 8;
    for (int e = tid; e < 2 * C * KP + C * AP + MaxK / 4; e += tile::threads) {
      if (e < 2 * C * KP) {                     // qd then kd rows (C rows of KP pieces each)
        const int row = e / KP, piece = e % KP; // row < 2 C: qd rows, then kd rows
        gla_mma_cp_async16(st + oQd + (std::size_t(row) * LDR + 8 * piece) * 2,
                           src + rec::qd + (std::size_t(row) * MaxK + 8 * piece) * 2);
      } else if (e < 2 * C * KP + C * AP) {
        const int f = e - 2 * C * KP, row = f / AP, piece = f % AP;
        gla_mma_cp_async16(st + oA + (std::size_t(row) * LDA + 8 * piece) * 2,
                           src + rec::a + (std::size_t(row) * C + 8 * piece) * 2);
      } else {
        const int f = e - 2 * C * KP - C * AP;
        gla_mma_cp_async16(st + oDec + std::size_t(f) * 16, src + rec::decay + std::size_t(f) * 16);
      }
    }
    gla_mma_cp_async_commit();
  };
  static_assert(oKd == oQd + std::size_t(C) * LDR * 2, "kd rows follow the qd rows in a stage");
  // The thread's v pieces of the chunk at c0: piece e = tid + threads x is row e / VP, columns
  // 8 (e % VP) .. + 7 of the tile.
  gla_mma_v_piece vp[VPT];
  auto load_v = [&](index_t c0) {
    const int L = int(seq.t1 - c0 < C ? seq.t1 - c0 : C);
#pragma unroll
    for (int x = 0; x < VPT; ++x) {
      const int e = tid + tile::threads * x, t = e / VP;
      gla_mma_v_load<Act>(vp[x], a.v, b, h, c0 + t, t < L, v0 + 8 * (e % VP), V, v_vec);
    }
  };
  auto store_v = [&](index_t i) {
    std::uint16_t* sV = reinterpret_cast<std::uint16_t*>(
        gla_mma_smem + std::size_t(i & 1) * tile::stage_bytes + oV);
#pragma unroll
    for (int x = 0; x < VPT; ++x) {
      const int e = tid + tile::threads * x;
      gla_mma_v_store<Act>(vp[x], sV + (e / VP) * LDV + 8 * (e % VP));
    }
  };

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

  const index_t chunks = (seq.t1 - seq.t0 + C - 1) / C;
  if (chunks > 0) {
    copy_record(0);
    load_v(seq.t0);
    store_v(0);
  }
  for (index_t i = 0; i < chunks; ++i) {
    const index_t c0 = seq.t0 + i * C;
    const int L = int(seq.t1 - c0 < C ? seq.t1 - c0 : C);
    const unsigned char* stage = gla_mma_smem + std::size_t(i & 1) * tile::stage_bytes;
    const std::uint16_t* sQd = reinterpret_cast<const std::uint16_t*>(stage + oQd);
    const std::uint16_t* sKd = reinterpret_cast<const std::uint16_t*>(stage + oKd);
    const std::uint16_t* sA = reinterpret_cast<const std::uint16_t*>(stage + oA);
    const std::uint16_t* sV = reinterpret_cast<const std::uint16_t*>(stage + oV);
    const float* sDec = reinterpret_cast<const float*>(stage + oDec);

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
    // The next chunk's record and v tile start on their way; this chunk's must have arrived.
    const bool next = i + 1 < chunks;
    if (next) {
      copy_record(i + 1);
      load_v(c0 + C);
    } else {
      gla_mma_cp_async_commit(); // an empty group: the wait below then means "chunk i's"
    }
    gla_mma_cp_async_wait<1>();
    __syncthreads();

    // Outputs of the warp's tokens 16 mw + (g, g + 8): qd S_in + A v over the sub-chunks j <= mw.
    {
      float acc[NT][4];
#pragma unroll
      for (int nt = 0; nt < NT; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e)
          acc[nt][e] = 0.0f;
      const std::uint16_t* qr = sQd + (mw * SC + g) * LDR;
#pragma unroll
      for (int kk = 0; kk < KS; ++kk) {
        const int c = kk * 16 + 2 * tg;
        const std::uint32_t af[4] = {*reinterpret_cast<const std::uint32_t*>(qr + c),
                                     *reinterpret_cast<const std::uint32_t*>(qr + 8 * LDR + c),
                                     *reinterpret_cast<const std::uint32_t*>(qr + c + 8),
                                     *reinterpret_cast<const std::uint32_t*>(qr + 8 * LDR + c + 8)};
#pragma unroll
        for (int np = 0; np < NT / 2; ++np) {
          std::uint32_t bf[4];
          swska_ldmatrix_x4_trans(bf, sS + (kk * 16 + (lane & 15)) * LDV + col0 + np * 16 +
                                          (lane >> 4) * 8);
          swska_mma_bf16(acc[2 * np], af, bf[0], bf[1]);
          swska_mma_bf16(acc[2 * np + 1], af, bf[2], bf[3]);
        }
      }
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
    }

    // State: S = diag(decay) S + kd^T v over the 4 sub-chunks j (k-steps of 16 tokens).
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) {
      const int cr = mw * RK + mt * 16 + g; // channels cr (elements 0, 1), cr + 8 (2, 3)
      const float dec0 = sDec[cr], dec8 = sDec[cr + 8];
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) {
        st[mt][nt][0] *= dec0;
        st[mt][nt][1] *= dec0;
        st[mt][nt][2] *= dec8;
        st[mt][nt][3] *= dec8;
      }
#pragma unroll
      for (int j = 0; j < NSC; ++j) {
        std::uint32_t af[4];
        gla_mma_ldmatrix_a_trans(af, sKd + (j * SC) * LDR + mw * RK + mt * 16, LDR, lane);
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
    // The next chunk's v tile into the other stage (its last readers finished before the
    // barrier above), then a barrier before sS and this stage are written again.
    if (next) store_v(i + 1);
    __syncthreads();
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

template <int MaxK, int BV, int Warps, class Act, class Gate>
status gla_mma_launch(const gla_args<Act, Gate, float>& a, unsigned char* records,
                      const launch_target& on) noexcept {
  using prep = gla_mma_prep_tile<MaxK>;
  using tile = gla_mma_tile<MaxK, BV, Warps>;
  const index_t H = a.q.shape[1];
  const index_t rows = gla_num_seqs(a) * H;
  const index_t tiles = (a.v.shape[3] + BV - 1) / BV;
  const std::size_t slots = gla_mma_records_per_head(a);
  RODIMUS_REQUIRE(rows <= index_t(0x7fffffff) / tiles, unsupported, "q"); // grid size limits
  RODIMUS_REQUIRE(H >= 1 && slots <= std::size_t(0x7fffffff / H), unsupported, "q");
  const auto prepare = gla_mma_prepare_kernel<MaxK, Act, Gate>;
  const auto chunked = gla_mma_chunked_kernel<MaxK, BV, Warps, Act, Gate>;
  // Set on every launch (the attribute is per device); idempotent.
  RODIMUS_CUDA_TRY(
      cudaFuncSetAttribute(prepare, cudaFuncAttributeMaxDynamicSharedMemorySize, int(prep::bytes)));
  RODIMUS_CUDA_TRY(
      cudaFuncSetAttribute(chunked, cudaFuncAttributeMaxDynamicSharedMemorySize, int(tile::bytes)));
  RODIMUS_CUDA_TRY(launch(on, prepare, unsigned(slots * std::size_t(H)), prep::threads, prep::bytes,
                          a, records, gla_num_seqs(a)));
  RODIMUS_CUDA_TRY(launch(on, chunked, unsigned(rows * tiles), tile::threads, tile::bytes, a,
                          static_cast<const unsigned char*>(records), tiles,
                          gla_mma_v_vector_ok(a.v)));
  return status::success();
}

/// Workspace bytes of the tensor-core chunked GLA: H x gla_mma_records_per_head records of the
/// call's K bucket (SIZE_MAX when that does not fit).
template <class Act, class Gate, class State>
std::size_t gla_mma_workspace_bytes(const gla_args<Act, Gate, State>& a) noexcept {
  const std::size_t H = std::size_t(a.q.shape[1] < 0 ? 0 : a.q.shape[1]);
  const std::size_t rec =
      a.q.shape[3] <= 64 ? gla_mma_record<64>::bytes : gla_mma_record<128>::bytes;
  const std::size_t n = workspace::product(H, gla_mma_records_per_head(a));
  return workspace::sum(workspace::round_up(workspace::product(n, rec)), workspace::alignment);
}

/// The tensor-core chunked GLA (K <= 128: gla_mma_supports; Sm >= 80, else the f32 kernel with
/// the requested chunk size). The records go into the workspace.
template <int Sm, class Act, class Gate>
status gla_chunked_mma(const gla_args<Act, Gate, float>& a, int chunk, workspace ws,
                       const cuda_tuning& tuning, const launch_target& on) noexcept {
  if constexpr (Sm < 80) {
    (void)ws;
    (void)tuning;
    return gla_chunked_dispatch<gla_prefill_policy<Sm>>(a, chunk, on);
  } else {
    (void)chunk; // always chunks of 64 (see the top of the file)
    int columns = tuning.gla_columns, warps = tuning.gla_warps;
    if (columns == 0 && warps == 0) { // 64 columns where they give every SM a CTA, else 32
      const index_t rows = gla_num_seqs(a) * a.q.shape[1], V = a.v.shape[3];
      const bool fills = rows * ((V + 63) / 64) >= device_sm_count();
      columns = fills ? 64 : 32;
      warps = 8;
    }
    const std::size_t bytes = gla_mma_workspace_bytes(a) - workspace::alignment;
    unsigned char* records = ws.take<unsigned char>(bytes);
    RODIMUS_REQUIRE(records != nullptr, workspace_too_small, "workspace");
    // K in 65 .. 128: only 64 columns on 8 warps fit, whatever the tuning.
    if (a.q.shape[3] > 64) return gla_mma_launch<128, 64, 8>(a, records, on);
    if (columns == 32) return gla_mma_launch<64, 32, 8>(a, records, on);
    if (columns == 64) return gla_mma_launch<64, 64, 8>(a, records, on);
    if (warps == 8) return gla_mma_launch<64, 128, 8>(a, records, on);
    // 128 columns on 16 warps: gla_chunked refused every pair gla_tuning_listed does not name.
    return gla_mma_launch<64, 128, 16>(a, records, on);
  }
}

} // namespace rodimus::detail
