// GLA recurrence on CUDA: gla_scan and gla_chunked (this file) and the decode step gla_decode
// (gla_decode.cuh, included here: this header gives all three entry points). Math, shapes and
// validation in rodimus/primitives/gla.hpp:
//
//   S_t = diag(exp(g_t)) S_{t-1} + k_t^T v_t,     o_t = scale * q_t S_t       S: (K, V) f32
//
// Arguments (gla_args), every pointer in DEVICE memory: q, v, o Act (f32, bf16, f16); k, g Gate
// (f32, bf16, f16); initial_state / final_state f32 (any other State: unsupported "state"); any
// strides; cu_seqlens (N+1, int64) and slot (N, int32) device arrays or nullptr. K <= 256
// (else unsupported "q"); gla_chunked takes the chunk sizes of gla_chunk_size_supported (16, 32,
// 64, 128; else unsupported "chunk_size"). Compute and accumulation are f32 (the chunked form's
// cumulative log-decays f64). Only the shape checks run (gla_check_shapes): the host cannot read
// the index arrays, so the kernels stay in bounds whatever they hold: offsets are clamped into
// [0, T] and made non-decreasing, and a sequence whose state slot is -1 (padding) or outside a
// pool given is skipped (its o rows are left as they are, no state is read or written; the host
// backends reject slots other than -1 outside a pool: primitives/slots.hpp). final_state may alias
// initial_state exactly (the pool updated in place). A call only enqueues kernels on the
// backend's stream (gla_scan and the f32 gla_chunked one kernel and no workspace; the tensor-core
// gla_chunked two kernels and gla_chunked_workspace_bytes of workspace in device memory).
//
// Kernel design. Each V column of S evolves independently (docs/MODEL.md §2.4), so both kernels run
// one CTA per (sequence, head, tile of BV value columns) with no communication between CTAs: the
// CTA reads its state tile once, keeps it on chip from the sequence's first token to its last, and
// writes it once (so distinct state slots make the in-place update race-free). Splitting V fills
// the GPU even for one long sequence: narrow tiles (BV = 32) when wide ones (64) give too few CTAs,
// as gla_decode does. 256 threads (8 warps) per CTA.
//
// gla_scan: the state tile in registers, warps down K (MaxK/8 rows each; MaxK the K bucket 32, 64,
//   128 or 256, as in gla_decode), lanes across the tile (W = BV/32 columns each). Tokens go in
//   blocks of 8: the block's scale*q, k and exp(g) rows (f32) and its v tile are staged in shared
//   memory, every thread advances its rows through the 8 tokens (s = exp(g) s + k v; partial
//   o += q s) and leaves its partial outputs in shared memory, then the 8 warps' partials are
//   summed and o written: two barriers per 8 tokens, 3 operations per state element per token.
// gla_chunked: the chunked form of docs/MODEL.md §4.1 per chunk of C tokens (C the requested chunk
//   size), the state tile S (K x BV) in shared memory across chunks. Per chunk the v tile is
//   staged, then K is walked in slices of 32 key channels; per slice: the local cumsum G of g in
//   f64 (a parallel scan over 8 row segments; f64 because a -1e4 gate followed by small ones must
//   leave exact differences, which f32 would lose), A_ij += sum_n scale q_i k_j exp(G_i - G_j) for
//   j <= i only (the entries above the diagonal are never computed or read: no positive exponent,
//   so -1e4 gates give zeros, never inf or NaN), then in place q~ = scale q exp(G) and
//   k~ = k exp(Gamma - G), the slice's inter-chunk output q~ S_in into per-thread accumulators,
//   and the slice's state update S = exp(Gamma) S + k~^T v. Last o = (q~ S_in) + A v is written.
//   Per token and value column that is 2K + C/2 multiply-adds, plus the intra-chunk matrix A (C/2
//   exponentials per token and key channel) which every V tile recomputes: the price of needing
//   no workspace and one launch. Tensor cores, the sub-chunk factorisation of A and an A shared by
//   the tiles belong to the tuning issue.
// gla_chunked with be.matmul == cuda_matmul::rounded and K <= 128 runs instead the bf16 tensor-core
//   kernel of backend/cuda/gla_chunked_mma.cuh (included at the end of this file: q, k, v, the
//   decayed operands and the intra-chunk matrix rounded to bf16 once, f32 accumulation and state,
//   chunks of 64 whatever the chunk size asked for); the default cuda_matmul::exact runs the f32
//   kernel above, as does every K > 128.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "rodimus/backend/cuda/cuda.cuh"
#include "rodimus/backend/cuda/gla_decode.cuh"
#include "rodimus/backend/cuda/launch.cuh"
#include "rodimus/core/dtype.hpp"
#include "rodimus/core/status.hpp"
#include "rodimus/core/tensor_view.hpp"
#include "rodimus/core/workspace.hpp"
#include "rodimus/primitives/gla.hpp"

namespace rodimus {

/// Tuning constants of gla_scan and gla_chunked on cuda<Sm> (first versions, not yet measured).
template <int Sm> struct gla_prefill_policy {
  static constexpr int threads = 256;           // 8 warps per CTA (both kernels)
  static constexpr int scan_block = 8;          // tokens staged at once by the scan
  static constexpr int slice = 32;              // key channels per slice of the chunked form
  static constexpr index_t wide_min_ctas = 264; // 64-column tiles once they give >= 2 CTAs per SM
  // (The tensor-core kernel, gla_chunked_mma.cuh, takes 64-column tiles where they give every SM
  // of the device a CTA, else 32-column ones: device_sm_count.)
};

namespace detail {

constexpr int kGlaPrefillThreads = gla_prefill_policy<90>::threads;
constexpr int kGlaScanBlock = gla_prefill_policy<90>::scan_block;
constexpr int kGlaSlice = gla_prefill_policy<90>::slice;
static_assert(kGlaPrefillThreads == 256 && kGlaSlice == 32,
              "the kernels' thread maps assume these");

/// Where sequence n of a gla_args lives and which state row it uses (device side).
struct gla_cuda_sequence {
  index_t b, t0, t1, p;
};

/// Sequence n's batch row and tokens [t0, t1), offsets clamped so that 0 <= t0 <= t1 <= T
/// whatever cu_seqlens holds (s.p is left as it is).
template <class Act, class Gate>
__device__ void gla_cuda_span(const gla_args<Act, Gate, float>& a, index_t n,
                              gla_cuda_sequence& s) {
  const index_t T = a.q.shape[2];
  if (a.cu_seqlens) {
    index_t lo = index_t(a.cu_seqlens[n]), hi = index_t(a.cu_seqlens[n + 1]);
    lo = lo < 0 ? 0 : (lo > T ? T : lo);
    hi = hi < lo ? lo : (hi > T ? T : hi);
    s.b = 0;
    s.t0 = lo;
    s.t1 = hi;
  } else {
    s.b = n;
    s.t0 = 0;
    s.t1 = T;
  }
}

/// Sequence n's batch row, tokens [t0, t1) (gla_cuda_span) and state row p; false when its state
/// slot is -1 or outside a pool given (the sequence is skipped).
template <class Act, class Gate>
__device__ bool gla_cuda_locate(const gla_args<Act, Gate, float>& a, index_t n,
                                gla_cuda_sequence& s) {
  gla_cuda_span(a, n, s);
  s.p = n; // without slot the pools have exactly N rows (gla_check_shapes)
  if (a.slot) {
    const index_t p = a.slot[n];
    if (!slot_in_pool(p, pool_rows(a.initial_state)) || !slot_in_pool(p, pool_rows(a.final_state)))
      return false;
    s.p = p;
  }
  return true;
}

/// The CTA's (sequence n, head, value tile) for the prefill kernels: blockIdx.x = (n * H + h) *
/// tiles + tile. False when the sequence is skipped.
struct gla_cuda_cta {
  index_t n = 0, h = 0, v0 = 0; // the sequence, the head, the tile's first value column
  gla_cuda_sequence seq;
};
template <class Act, class Gate>
__device__ bool gla_cuda_locate_cta(const gla_args<Act, Gate, float>& a, index_t tiles, index_t BV,
                                    gla_cuda_cta& c) {
  const index_t H = a.q.shape[1];
  const index_t nh = index_t(blockIdx.x) / tiles;
  c.v0 = (index_t(blockIdx.x) - nh * tiles) * BV;
  c.n = nh / H;
  c.h = nh - c.n * H;
  return gla_cuda_locate(a, c.n, c.seq);
}

// ---- gla_scan ----

/// One CTA per (sequence, head, tile of 32*W columns); see the top of the file.
template <int MaxK, int W, class Act, class Gate>
__global__ void __launch_bounds__(kGlaPrefillThreads)
    gla_scan_kernel(const gla_args<Act, Gate, float> a, const index_t tiles) {
  begin_after_prior_kernels();
  constexpr int Threads = kGlaPrefillThreads, Warps = Threads / 32, BV = 32 * W;
  constexpr int RK = MaxK / Warps; // state rows per thread
  constexpr int TB = kGlaScanBlock;
  static_assert(RK >= 1 && MaxK % Warps == 0, "K bucket");
  __shared__ float s_q[TB][MaxK]; // scale * q
  __shared__ float s_k[TB][MaxK]; // k
  __shared__ float s_d[TB][MaxK]; // exp(g)
  __shared__ float s_v[TB][BV];
  __shared__ float s_part[TB][Warps][BV]; // per-warp partial outputs

  const index_t K = a.q.shape[3], V = a.v.shape[3];
  gla_cuda_cta cta;
  if (!gla_cuda_locate_cta(a, tiles, BV, cta)) return; // uniform over the CTA
  const index_t h = cta.h, v0 = cta.v0, b = cta.seq.b;
  const gla_cuda_sequence& seq = cta.seq;
  const int tid = int(threadIdx.x), lane = tid % 32, warp = tid / 32;
  const int c0 = lane * W; // this thread's first column within the tile

  float st[RK][W]; // rows warp*RK + i, columns v0 + c0 + j
#pragma unroll
  for (int i = 0; i < RK; ++i) {
    const index_t kk = index_t(warp) * RK + i;
#pragma unroll
    for (int j = 0; j < W; ++j) {
      const index_t col = v0 + c0 + j;
      st[i][j] =
          a.initial_state.data && kk < K && col < V ? a.initial_state(seq.p, h, kk, col) : 0.0f;
    }
  }

  for (index_t tb = seq.t0; tb < seq.t1; tb += TB) {
    const int nt = int(seq.t1 - tb < TB ? seq.t1 - tb : TB);
    // Stage the block (zeros past the sequence, past K and past V: they add nothing).
    for (int e = tid; e < TB * MaxK; e += Threads) {
      const int t = e / MaxK, i = e % MaxK;
      float q = 0.0f, k = 0.0f, d = 0.0f;
      if (t < nt && i < K) {
        q = a.scale * load_as<float>(a.q(b, h, tb + t, i));
        k = load_as<float>(a.k(b, h, tb + t, i));
        d = expf(load_as<float>(a.g(b, h, tb + t, i)));
      }
      s_q[t][i] = q;
      s_k[t][i] = k;
      s_d[t][i] = d;
    }
    for (int e = tid; e < TB * BV; e += Threads) {
      const int t = e / BV, c = e % BV;
      s_v[t][c] = t < nt && v0 + c < V ? load_as<float>(a.v(b, h, tb + t, v0 + c)) : 0.0f;
    }
    // Also orders the previous block's reads of s_part before this block's writes.
    __syncthreads();
    for (int t = 0; t < nt; ++t) {
      float vv[W], acc[W];
#pragma unroll
      for (int j = 0; j < W; ++j) {
        vv[j] = s_v[t][c0 + j];
        acc[j] = 0.0f;
      }
#pragma unroll
      for (int i = 0; i < RK; ++i) {
        const int kk = warp * RK + i;
        const float d = s_d[t][kk], kv = s_k[t][kk], qv = s_q[t][kk];
#pragma unroll
        for (int j = 0; j < W; ++j) {
          st[i][j] = fmaf(d, st[i][j], kv * vv[j]);
          acc[j] = fmaf(qv, st[i][j], acc[j]);
        }
      }
#pragma unroll
      for (int j = 0; j < W; ++j)
        s_part[t][warp][c0 + j] = acc[j];
    }
    __syncthreads();
    for (int e = tid; e < nt * BV; e += Threads) {
      const int t = e / BV, c = e % BV;
      float sum = 0.0f;
#pragma unroll
      for (int w = 0; w < Warps; ++w)
        sum += s_part[t][w][c];
      if (v0 + c < V) a.o(b, h, tb + t, v0 + c) = store_as<Act>(sum);
    }
    // The next block's staging writes s_q, s_k, s_d, s_v only: their last readers (the update
    // loop) finished before the barrier above.
  }

  if (a.final_state.data) {
#pragma unroll
    for (int i = 0; i < RK; ++i) {
      const index_t kk = index_t(warp) * RK + i;
#pragma unroll
      for (int j = 0; j < W; ++j) {
        const index_t col = v0 + c0 + j;
        if (kk < K && col < V) a.final_state(seq.p, h, kk, col) = st[i][j];
      }
    }
  }
}

template <int MaxK, int W, class Act, class Gate>
status gla_scan_launch(const gla_args<Act, Gate, float>& a, const launch_target& on) noexcept {
  constexpr int BV = 32 * W;
  const index_t rows = gla_num_seqs(a) * a.q.shape[1];
  const index_t tiles = (a.v.shape[3] + BV - 1) / BV;
  RODIMUS_REQUIRE(rows <= index_t(0x7fffffff) / tiles, unsupported, "q"); // grid size limit
  RODIMUS_CUDA_TRY(launch(on, gla_scan_kernel<MaxK, W, Act, Gate>, unsigned(rows * tiles),
                          kGlaPrefillThreads, 0, a, tiles));
  return status::success();
}

template <int W, class Act, class Gate>
status gla_scan_dispatch(const gla_args<Act, Gate, float>& a, const launch_target& on) noexcept {
  const index_t K = a.q.shape[3];
  if (K <= 32) return gla_scan_launch<32, W>(a, on);
  if (K <= 64) return gla_scan_launch<64, W>(a, on);
  if (K <= 128) return gla_scan_launch<128, W>(a, on);
  if (K <= 256) return gla_scan_launch<256, W>(a, on);
  return status::fail(status_code::unsupported, "q");
}

// ---- gla_chunked ----

/// Shared memory of the chunked kernel (dynamic, carved in this order; doubles first so that every
/// piece is aligned):
///   G    (KS, C+1) f64   local cumsum of g, channel-major (+1: no bank conflicts when staged)
///   tot  (P, KS)   f64   segment totals of the parallel cumsum (P = threads / KS segments)
///   A    C(C+1)/2        the intra-chunk matrix, lower triangle packed by rows
///   v    (C, BV)         the chunk's v tile
///   q, k (KS, C+1) each  scale*q and k of the slice, then q~ and k~ in place
///   dec  (KS)            exp(Gamma) of the slice
///   S    (K, BV)         the state tile
template <int C, int BV> struct gla_chunk_smem {
  static constexpr int KS = kGlaSlice, P = kGlaPrefillThreads / kGlaSlice, LD = C + 1;
  static constexpr std::size_t doubles = std::size_t(KS) * LD + std::size_t(P) * KS;
  static constexpr std::size_t fixed_floats =
      std::size_t(C) * (C + 1) / 2 + std::size_t(C) * BV + 2 * std::size_t(KS) * LD + KS;
  static constexpr std::size_t bytes(index_t K) noexcept {
    return doubles * sizeof(double) + (fixed_floats + std::size_t(K) * BV) * sizeof(float);
  }
  // Every instance fits the 163 KiB a CTA may have on sm_80 (227 KiB on sm_90) at K = 256.
  static_assert(doubles * sizeof(double) + (fixed_floats + 256 * BV) * sizeof(float) <= 163 * 1024,
                "chunked GLA shared memory");
};

/// One CTA per (sequence, head, tile of BV columns), chunks of C tokens; see the top of the file.
template <int C, int BV, class Act, class Gate>
__global__ void __launch_bounds__(kGlaPrefillThreads)
    gla_chunked_kernel(const gla_args<Act, Gate, float> a, const index_t tiles) {
  begin_after_prior_kernels();
  using layout = gla_chunk_smem<C, BV>;
  constexpr int Threads = kGlaPrefillThreads, KS = layout::KS, P = layout::P, LD = layout::LD;
  constexpr int RS = Threads / BV; // threads per column: row stride of the thread maps
  constexpr int R = C / RS;        // output rows per thread
  constexpr int RU = KS / RS;      // state rows per thread in the slice's update
  constexpr int SEG = (C + P - 1) / P;
  static_assert(Threads % BV == 0 && C % RS == 0 && KS % RS == 0, "thread maps");
  extern __shared__ double gla_smem[];
  double* const sG = gla_smem;                               // (KS, LD)
  double* const sTot = sG + KS * LD;                         // (P, KS)
  float* const sA = reinterpret_cast<float*>(sTot + P * KS); // C(C+1)/2
  float* const sV = sA + C * (C + 1) / 2;                    // (C, BV)
  float* const sQ = sV + C * BV;                             // (KS, LD)
  float* const sK = sQ + KS * LD;                            // (KS, LD)
  float* const sDec = sK + KS * LD;                          // (KS)
  float* const sS = sDec + KS;                               // (K, BV)

  const index_t K = a.q.shape[3], V = a.v.shape[3];
  gla_cuda_cta cta;
  if (!gla_cuda_locate_cta(a, tiles, BV, cta)) return; // uniform over the CTA
  const index_t h = cta.h, v0 = cta.v0, b = cta.seq.b;
  const gla_cuda_sequence& seq = cta.seq;
  const int tid = int(threadIdx.x);
  const int col = tid % BV, row0 = tid / BV; // the output / state-update map
  const bool col_ok = v0 + col < V;

  // The state tile; zero past V (and without an initial state). Read and (at the end) written by
  // the same map, so the thread that loads an element is the one that stores it when no chunk ran.
  for (index_t e = tid; e < K * BV; e += Threads) {
    const index_t kk = e / BV, c = e % BV;
    sS[e] = a.initial_state.data && v0 + c < V ? a.initial_state(seq.p, h, kk, v0 + c) : 0.0f;
  }
  __syncthreads();

  for (index_t c0 = seq.t0; c0 < seq.t1; c0 += C) {
    const int L = int(seq.t1 - c0 < C ? seq.t1 - c0 : C);
    // The v tile, rows past the chunk and columns past V zeroed (they add nothing).
    for (int e = tid; e < C * BV; e += Threads) {
      const int i = e / BV, c = e % BV;
      sV[e] = i < L && v0 + c < V ? load_as<float>(a.v(b, h, c0 + i, v0 + c)) : 0.0f;
    }
    float acc[R]; // o rows row0 + r*RS, column col
#pragma unroll
    for (int r = 0; r < R; ++r)
      acc[r] = 0.0f;

    for (index_t s0 = 0; s0 < K; s0 += KS) {
      const int kw = int(K - s0 < KS ? K - s0 : KS); // channels in this slice
      // 1. Stage g (f64), scale*q and k of the slice, channel-major; zeros past the chunk and
      //    past the slice (g = 0 past the chunk keeps G flat there: G = Gamma).
      for (int e = tid; e < C * KS; e += Threads) {
        const int i = e / KS, m = e % KS;
        double g = 0.0;
        float q = 0.0f, k = 0.0f;
        if (i < L && m < kw) {
          g = double(load_as<float>(a.g(b, h, c0 + i, s0 + m)));
          q = a.scale * load_as<float>(a.q(b, h, c0 + i, s0 + m));
          k = load_as<float>(a.k(b, h, c0 + i, s0 + m));
        }
        sG[m * LD + i] = g;
        sQ[m * LD + i] = q;
        sK[m * LD + i] = k;
      }
      __syncthreads();
      // 2. G = inclusive cumsum of g along the chunk: P segments of SEG rows per channel, summed
      //    locally, then offset by the totals of the segments before. Every partial sum only adds
      //    values <= 0 to a running total, so G is non-increasing: G_i - G_j <= 0 for j <= i.
      {
        const int m = tid % KS, part = tid / KS;
        const int r0 = part * SEG, r1 = r0 + SEG < C ? r0 + SEG : C;
        double run = 0.0;
        for (int i = r0; i < r1; ++i) {
          run += sG[m * LD + i];
          sG[m * LD + i] = run;
        }
        sTot[part * KS + m] = run;
        __syncthreads();
        double off = 0.0;
        for (int p = 0; p < part; ++p)
          off += sTot[p * KS + m];
        if (part > 0)
          for (int i = r0; i < r1; ++i)
            sG[m * LD + i] += off;
      }
      __syncthreads();
      // 3. A_ij += sum_m scale q_i[m] k_j[m] exp(G_i[m] - G_j[m]) for j <= i < L only.
      for (int e = tid; e < L * C; e += Threads) {
        const int i = e / C, j = e % C;
        if (j > i) continue;
        float sum = 0.0f;
        for (int m = 0; m < kw; ++m)
          sum = fmaf(sQ[m * LD + i] * sK[m * LD + j], expf(float(sG[m * LD + i] - sG[m * LD + j])),
                     sum);
        float& aij = sA[i * (i + 1) / 2 + j];
        aij = s0 == 0 ? sum : aij + sum;
      }
      __syncthreads();
      // 4. In place: q~ = scale q exp(G), k~ = k exp(Gamma - G); exp(Gamma). Exponents <= 0.
      for (int e = tid; e < KS * C; e += Threads) {
        const int m = e / C, i = e % C;
        const double G = sG[m * LD + i], gamma = sG[m * LD + L - 1];
        sQ[m * LD + i] *= expf(float(G));
        sK[m * LD + i] *= expf(float(gamma - G));
      }
      if (tid < KS) sDec[tid] = expf(float(sG[tid * LD + L - 1]));
      __syncthreads();
      // 5. The inter-chunk output of the slice: acc += q~ S_in[slice rows].
      for (int m = 0; m < kw; ++m) {
        const float s = sS[(s0 + m) * BV + col];
#pragma unroll
        for (int r = 0; r < R; ++r)
          acc[r] = fmaf(sQ[m * LD + row0 + r * RS], s, acc[r]);
      }
      __syncthreads();
      // 6. The slice's state update: S = exp(Gamma) S + k~^T v (rows row0 + u*RS of the slice).
      {
        float su[RU];
#pragma unroll
        for (int u = 0; u < RU; ++u) {
          const int m = row0 + u * RS;
          su[u] = m < kw ? sDec[m] * sS[(s0 + m) * BV + col] : 0.0f;
        }
        for (int j = 0; j < L; ++j) {
          const float vj = sV[j * BV + col];
#pragma unroll
          for (int u = 0; u < RU; ++u)
            su[u] = fmaf(sK[(row0 + u * RS) * LD + j], vj, su[u]);
        }
#pragma unroll
        for (int u = 0; u < RU; ++u) {
          const int m = row0 + u * RS;
          if (m < kw) sS[(s0 + m) * BV + col] = su[u];
        }
      }
      __syncthreads(); // the next slice restages G, q, k
    }

    // 7. o_i = acc_i + sum_{j<=i} A_ij v_j (A is complete: every slice ended with a barrier).
    for (int j = 0; j < L; ++j) {
      const float vj = sV[j * BV + col];
#pragma unroll
      for (int r = 0; r < R; ++r) {
        const int i = row0 + r * RS;
        if (j <= i && i < L) acc[r] = fmaf(sA[i * (i + 1) / 2 + j], vj, acc[r]);
      }
    }
    if (col_ok) {
#pragma unroll
      for (int r = 0; r < R; ++r) {
        const int i = row0 + r * RS;
        if (i < L) a.o(b, h, c0 + i, v0 + col) = store_as<Act>(acc[r]);
      }
    }
    __syncthreads(); // the next chunk restages v
  }

  if (a.final_state.data)
    for (index_t e = tid; e < K * BV; e += Threads) {
      const index_t kk = e / BV, c = e % BV;
      if (v0 + c < V) a.final_state(seq.p, h, kk, v0 + c) = sS[e];
    }
}

template <int C, int BV, class Act, class Gate>
status gla_chunked_launch(const gla_args<Act, Gate, float>& a, const launch_target& on) noexcept {
  using layout = gla_chunk_smem<C, BV>;
  const index_t rows = gla_num_seqs(a) * a.q.shape[1];
  const index_t tiles = (a.v.shape[3] + BV - 1) / BV;
  RODIMUS_REQUIRE(rows <= index_t(0x7fffffff) / tiles, unsupported, "q"); // grid size limit
  const auto kernel = gla_chunked_kernel<C, BV, Act, Gate>;
  // The attribute is set to this instance's maximum (K = 256) every time: idempotent, so calls
  // from several threads cannot lower it under each other.
  RODIMUS_CUDA_TRY(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        int(layout::bytes(256))));
  RODIMUS_CUDA_TRY(launch(on, kernel, unsigned(rows * tiles), kGlaPrefillThreads,
                          layout::bytes(a.q.shape[3]), a, tiles));
  return status::success();
}

/// The tensor-core chunked form of cuda_matmul::rounded (backend/cuda/gla_chunked_mma.cuh,
/// included at the end of this file): the key dims it serves, and its entry point.
inline bool gla_mma_supports(index_t K) noexcept;
template <int Sm, class Act, class Gate>
status gla_chunked_mma(const gla_args<Act, Gate, float>& a, int chunk, workspace ws,
                       const cuda_tuning& tuning, const launch_target& on) noexcept;
template <class Act, class Gate, class State>
std::size_t gla_mma_workspace_bytes(const gla_args<Act, Gate, State>& a) noexcept;

/// Whether cuda_tuning names a column tile of the tensor-core chunked GLA (or none: 0, 0).
inline bool gla_tuning_listed(const cuda_tuning& t) noexcept {
  const int c = t.gla_columns, w = t.gla_warps;
  return (c == 0 && w == 0) || (w == 8 && (c == 32 || c == 64 || c == 128)) ||
         (c == 128 && w == 16);
}

/// Chunk size to its kernel; narrow (32-column) tiles when wide ones give too few CTAs, and always
/// for C = 128 (a 64-column tile of it would not fit in shared memory).
template <class Policy, class Act, class Gate>
status gla_chunked_dispatch(const gla_args<Act, Gate, float>& a, int chunk,
                            const launch_target& on) noexcept {
  const index_t rows = gla_num_seqs(a) * a.q.shape[1];
  const bool wide = rows * ((a.v.shape[3] + 63) / 64) >= Policy::wide_min_ctas;
  switch (chunk) {
  case 16: return wide ? gla_chunked_launch<16, 64>(a, on) : gla_chunked_launch<16, 32>(a, on);
  case 32: return wide ? gla_chunked_launch<32, 64>(a, on) : gla_chunked_launch<32, 32>(a, on);
  case 64: return wide ? gla_chunked_launch<64, 64>(a, on) : gla_chunked_launch<64, 32>(a, on);
  case 128: return gla_chunked_launch<128, 32>(a, on);
  default: return status::fail(status_code::unsupported, "chunk_size");
  }
}

} // namespace detail

/// gla_scan on CUDA needs no workspace.
template <int Sm, class Act, class Gate, class State>
constexpr std::size_t gla_scan_workspace_bytes(const cuda<Sm>&,
                                               const gla_args<Act, Gate, State>&) noexcept {
  return 0;
}

/// gla_chunked on CUDA: the tensor-core kernel's chunk records (cuda_matmul::rounded, K <= 128,
/// Sm >= 80; gla_chunked_mma.cuh), else no workspace.
template <int Sm, class Act, class Gate, class State>
std::size_t gla_chunked_workspace_bytes(const cuda<Sm>& backend,
                                        const gla_args<Act, Gate, State>& a, int) noexcept {
  if (Sm < 80 || backend.matmul != cuda_matmul::rounded || !detail::gla_mma_supports(a.q.shape[3]))
    return 0;
  return detail::gla_mma_workspace_bytes(a);
}

/// The sequential recurrence on the GPU (see the top of this file). Enqueues on `backend.stream`.
template <int Sm, class Act, class Gate, class State>
[[nodiscard]] status gla_scan(const cuda<Sm>& backend, const gla_args<Act, Gate, State>& a,
                              workspace = {}) noexcept {
  RODIMUS_TRY(gla_check_shapes(a));
  if constexpr (!std::is_same_v<State, float>) {
    (void)backend;
    return status::fail(status_code::unsupported, "state");
  } else {
    RODIMUS_REQUIRE(a.q.shape[3] <= 256, unsupported, "q");
    const index_t rows = gla_num_seqs(a) * a.q.shape[1];
    if (rows == 0) return status::success();
    const bool wide = rows * ((a.v.shape[3] + 63) / 64) >= gla_prefill_policy<Sm>::wide_min_ctas;
    return wide ? detail::gla_scan_dispatch<2>(a, detail::launch_on(backend))
                : detail::gla_scan_dispatch<1>(a, detail::launch_on(backend));
  }
}

/// The chunked form on the GPU (see the top of this file). Enqueues on `backend.stream`. With
/// backend.matmul == cuda_matmul::rounded and K <= 128: the bf16 tensor-core kernel
/// (gla_chunked_mma.cuh); else the f32 kernel.
template <int Sm, class Act, class Gate, class State>
[[nodiscard]] status gla_chunked(const cuda<Sm>& backend, const gla_args<Act, Gate, State>& a,
                                 int chunk_size, workspace ws = {}) noexcept {
  RODIMUS_TRY(gla_chunked_check_shapes(a, chunk_size));
  RODIMUS_REQUIRE(gla_chunk_size_supported(chunk_size), unsupported, "chunk_size");
  RODIMUS_REQUIRE(detail::gla_tuning_listed(backend.tuning), unsupported, "tuning");
  if constexpr (!std::is_same_v<State, float>) {
    (void)backend;
    (void)ws;
    return status::fail(status_code::unsupported, "state");
  } else {
    RODIMUS_REQUIRE(a.q.shape[3] <= 256, unsupported, "q");
    const index_t rows = gla_num_seqs(a) * a.q.shape[1];
    if (rows == 0) return status::success();
    if (backend.matmul == cuda_matmul::rounded && detail::gla_mma_supports(a.q.shape[3]))
      return detail::gla_chunked_mma<Sm>(a, chunk_size, ws, backend.tuning,
                                         detail::launch_on(backend));
    return detail::gla_chunked_dispatch<gla_prefill_policy<Sm>>(a, chunk_size,
                                                                detail::launch_on(backend));
  }
}

} // namespace rodimus

#include "rodimus/backend/cuda/gla_chunked_mma.cuh"
