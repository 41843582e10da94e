// GLA decode step on CUDA: one token per batch row, recurrent states in a slot-indexed pool
// (docs/MODEL.md §2.4, §4.4, §6.3).
//
//   for each batch row b with s = slot[b] (s = b when slot == nullptr) and each head h:
//     S = state[s, h]                                  (K, V) fp32, read once
//     S <- diag(exp(g[b,h])) S + k[b,h]^T v[b,h]       decay first, then add the outer product
//     o[b,h] = scale * (q[b,h] S)                      (V), from the updated state
//     state[s, h] = S                                  written once
//   rows whose slot is -1 (padding) or outside [0, P): skipped, o[b,h] and the pool untouched.
//
// Arguments (gla_decode_args, primitives/gla.hpp), every pointer in DEVICE memory:
//   q (B, H, K) Act; k (B, H, K) Gate; v (B, H, V) Act; g (B, H, K) Gate, log-decay <= 0;
//   o (B, H, V) Act, written; state (P, H, K, V) float, updated in place; slot (B) int32 or
//   nullptr. Act: f32, bf16, f16; Gate: f32, bf16, f16; State: f32 only (others return
//   unsupported). K <= 256 (else unsupported "q"); any strides. Compute and accumulation are fp32.
// The slot array lives on the device, so the host cannot check it: out-of-range slots are skipped
// like padding (never an out-of-bounds access; primitives/slots.hpp); two rows sharing a slot is a
// caller error (a race).
// The call only enqueues one kernel on the backend's stream; the workspace is unused (0 bytes).
//
// Kernel design. Each V column of S evolves independently (docs/MODEL.md §2.4), so one CTA owns one
// (row, head, tile of BV columns) and every K row of that tile. Its threads form a KT x VT grid:
// VT threads across the tile, each on W adjacent columns (W = 4: one 16-byte load and store per
// state row, coalesced along V), KT threads down K, each on MaxK/KT rows whose loads are all issued
// before the first use (several 16-byte loads in flight per thread). The KT partial sums of each
// output column are reduced in shared memory. Small batches use narrow tiles (more CTAs, so that
// every SM streams part of the state), large batches wide ones (fewer, fatter CTAs).
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "rodimus/backend/cuda/cuda.cuh"
#include "rodimus/backend/cuda/launch.cuh"
#include "rodimus/core/dtype.hpp"
#include "rodimus/core/status.hpp"
#include "rodimus/core/tensor_view.hpp"
#include "rodimus/core/workspace.hpp"
#include "rodimus/primitives/gla.hpp"

namespace rodimus {

/// Tuning constants of gla_decode on cuda<Sm>, chosen with bench/cuda/bench_gla_decode.cu on an
/// H200 (bench/results/2026-11-28-h200-gla-decode.md; K = 64, V = 4096, share of copy bandwidth):
///   wide   BV 128 x 256 threads (8 rows of 16 B per thread, 74 registers, 3 CTAs per SM):
///          B = 64: 84%, B = 256: 96%. Tried and slower: 512 threads (79%, 88%: more occupancy
///          did not help), a 64-register cap (79%, 89%), BV 256 x 512 (74%, 82%), BV 64 (81%, 90%).
///   narrow BV 32 x 256 threads for small batches: B = 1 kernel time 2.9 us (graph replay), as
///          BV 16 and 64; wide tiles take 3.1 to 4.2 us there.
template <int Sm> struct gla_decode_policy {
  static constexpr int wide_tile = 128;    // V columns per CTA for large batches (32 lanes x 16 B)
  static constexpr int wide_threads = 256; // 8 x 32 threads: 8 state rows per thread at K = 64
  static constexpr int narrow_tile = 32;   // for small batches: B=1, V=4096 gives 128 CTAs
  static constexpr int narrow_threads = 256;
  static constexpr index_t wide_min_ctas = 264; // wide tiles once they give >= 2 CTAs per SM (132)
};

namespace detail {

template <int MaxK, int BV, int W, int Threads> struct gla_decode_tile {
  static constexpr int max_k = MaxK, bv = BV, w = W, threads = Threads;
  static constexpr int vt = BV / W;          // threads across the tile
  static constexpr int kt = Threads / vt;    // threads down K
  static constexpr int rk = MaxK / kt;       // K rows per thread
  static constexpr int parts = Threads / BV; // partial sums per column after the first reduction
  static_assert(W == 1 || W == 4, "W: 1 or 4 floats per access");
  static_assert(BV % W == 0 && Threads % vt == 0 && MaxK % kt == 0 && rk >= 1, "tile shape");
  static_assert(Threads % BV == 0 && kt % parts == 0, "reduction shape");
  static_assert(MaxK <= Threads, "one thread per key channel loads q, k, g");
  // CTAs per SM that __launch_bounds__ asks for: with at most 16 state floats per thread, a cap of
  // 64 registers costs no spills (ptxas -v, MaxK 64) and lets 2048 threads share an SM; larger
  // per-thread tiles are left to the compiler (a 64-register cap spills them).
  static constexpr int min_blocks = rk * W <= 16 && Threads <= 1024 ? 1024 / Threads : 1;
};

/// The shared memory of one CTA's tile: the per-key-channel operands of the update (written by
/// threads < MaxK, zero beyond K) and the two passes of the column reduction.
template <class Tile> struct gla_decode_shared {
  float q[Tile::max_k];                       // scale * q
  float k[Tile::max_k];                       // k
  float decay[Tile::max_k];                   // exp(g)
  alignas(16) float part[Tile::kt][Tile::bv]; // per-thread partial sums of o
  float sum[Tile::parts][Tile::bv];
};

/// One thread's place in a tile: the K rows kt, kt + KT, ... of the W columns from `col` of one
/// (row, head) state (K, V) at `base` with strides (sk, sv). The state tile streams through
/// registers: load() issues every load first (rk independent 16-byte loads in flight), update()
/// decays, adds k^T v, writes the state back and accumulates q . S of its rows; column_sum()
/// reduces the KT partial sums of each column (every thread of the CTA must call it).
template <class Tile> struct gla_decode_fragment {
  static constexpr int W = Tile::w;
  float* base;
  index_t sk, sv, K, col;
  int kt;
  bool col_ok; // W = 4 is only used when V % 4 == 0: the whole vector is in range
  float st[Tile::rk][W];

  __device__ __forceinline__ void load() noexcept {
#pragma unroll
    for (int i = 0; i < Tile::rk; ++i) {
      const index_t kk = kt + index_t(i) * Tile::kt;
      if (col_ok && kk < K) {
        const float* p = base + kk * sk + col * sv;
        if constexpr (W == 4) {
          const float4 x = *reinterpret_cast<const float4*>(p);
          st[i][0] = x.x;
          st[i][1] = x.y;
          st[i][2] = x.z;
          st[i][3] = x.w;
        } else {
          st[i][0] = *p;
        }
      } else {
#pragma unroll
        for (int j = 0; j < W; ++j)
          st[i][j] = 0.0f;
      }
    }
  }

  /// S <- diag(decay) S + k^T v on this thread's rows, written back; acc = sum_rows q S.
  __device__ __forceinline__ void update(const gla_decode_shared<Tile>& sh, const float (&vv)[W],
                                         float (&acc)[W]) noexcept {
#pragma unroll
    for (int j = 0; j < W; ++j)
      acc[j] = 0.0f;
#pragma unroll
    for (int i = 0; i < Tile::rk; ++i) {
      const index_t kk = kt + index_t(i) * Tile::kt;
      if (col_ok && kk < K) {
        const float d = sh.decay[kk], kv = sh.k[kk], qv = sh.q[kk];
#pragma unroll
        for (int j = 0; j < W; ++j) {
          st[i][j] = fmaf(d, st[i][j], kv * vv[j]);
          acc[j] = fmaf(qv, st[i][j], acc[j]);
        }
        float* p = base + kk * sk + col * sv;
        if constexpr (W == 4) {
          *reinterpret_cast<float4*>(p) = make_float4(st[i][0], st[i][1], st[i][2], st[i][3]);
        } else {
          *p = st[i][0];
        }
      }
    }
  }
};

/// o of tile column `tid` (meaningful for tid < BV): the sum over the KT threads of that column,
/// two shared-memory passes. vt = tid % Tile::vt, kt = tid / Tile::vt.
template <class Tile>
__device__ __forceinline__ float gla_decode_column_sum(gla_decode_shared<Tile>& sh,
                                                       const float (&acc)[Tile::w], int tid, int vt,
                                                       int kt) noexcept {
  constexpr int W = Tile::w, BV = Tile::bv;
  if constexpr (W == 4) {
    *reinterpret_cast<float4*>(&sh.part[kt][vt * W]) = make_float4(acc[0], acc[1], acc[2], acc[3]);
  } else {
    sh.part[kt][vt] = acc[0];
  }
  __syncthreads();
  {
    const int c = tid % BV, part = tid / BV;
    float sum = 0.0f;
#pragma unroll
    for (int r = part; r < Tile::kt; r += Tile::parts)
      sum += sh.part[r][c];
    sh.sum[part][c] = sum;
  }
  __syncthreads();
  float sum = 0.0f;
  if (tid < BV) {
#pragma unroll
    for (int p = 0; p < Tile::parts; ++p)
      sum += sh.sum[p][tid];
  }
  return sum;
}

template <int MaxK, int BV, int W, int Threads, int MinBlocks, class Act, class Gate>
__global__ void __launch_bounds__(Threads, MinBlocks)
    gla_decode_kernel(const gla_decode_args<Act, Gate, float> a, const index_t tiles) {
  begin_after_prior_kernels();
  using tile = gla_decode_tile<MaxK, BV, W, Threads>;
  __shared__ gla_decode_shared<tile> sh;

  const index_t H = a.q.shape[1], K = a.q.shape[2], V = a.v.shape[2], P = a.state.shape[0];
  const index_t bh = index_t(blockIdx.x) / tiles;
  const index_t v0 = (index_t(blockIdx.x) - bh * tiles) * BV;
  const index_t b = bh / H, h = bh - b * H;
  const int tid = int(threadIdx.x);
  const int vt = tid % tile::vt, kt = tid / tile::vt;
  const index_t col = v0 + index_t(vt) * W;
  const bool col_ok = col < V;

  // Everything that does not depend on the slot is loaded while the slot is in flight (B = 1
  // latency: slot -> state is the one unavoidable chain of dependent loads).
  const index_t s = slot_at(a.slot, b);
  float vv[W];
#pragma unroll
  for (int j = 0; j < W; ++j)
    vv[j] = col_ok ? load_as<float>(a.v(b, h, col + j)) : 0.0f;
  const bool k_ok = tid < K; // MaxK <= Threads: thread i < K loads q[i], k[i], g[i]
  const float qi = k_ok ? a.scale * load_as<float>(a.q(b, h, tid)) : 0.0f;
  const float ki = k_ok ? load_as<float>(a.k(b, h, tid)) : 0.0f;
  const float gi = k_ok ? load_as<float>(a.g(b, h, tid)) : 0.0f;

  if (!slot_in_pool(s, P)) return; // padding row: o and state untouched (uniform over the CTA)

  gla_decode_fragment<tile> f{a.state.data + s * a.state.stride[0] + h * a.state.stride[1],
                              a.state.stride[2],
                              a.state.stride[3],
                              K,
                              col,
                              kt,
                              col_ok,
                              {}};
  f.load();
  if (tid < MaxK) {
    sh.q[tid] = qi;
    sh.k[tid] = ki;
    sh.decay[tid] = k_ok ? expf(gi) : 0.0f;
  }
  __syncthreads();

  float acc[W];
  f.update(sh, vv, acc);
  const float o = gla_decode_column_sum(sh, acc, tid, vt, kt);
  if (tid < BV && v0 + tid < V) a.o(b, h, v0 + tid) = store_as<Act>(o);
}

template <int MaxK, int BV, int W, int Threads,
          int MinBlocks = gla_decode_tile<MaxK, BV, W, Threads>::min_blocks, class Act, class Gate>
status gla_decode_launch(const gla_decode_args<Act, Gate, float>& a,
                         const launch_target& on) noexcept {
  const index_t rows = a.q.shape[0] * a.q.shape[1], V = a.v.shape[2];
  const index_t tiles = (V + BV - 1) / BV;
  RODIMUS_REQUIRE(rows <= index_t(0x7fffffff) / tiles, unsupported, "q"); // grid size limit
  RODIMUS_CUDA_TRY(launch(on, gla_decode_kernel<MaxK, BV, W, Threads, MinBlocks, Act, Gate>,
                          unsigned(rows * tiles), Threads, 0, a, tiles));
  return status::success();
}

/// The one runtime-to-compile-time switch: K to the smallest supported MaxK >= K.
template <int BV, int W, int Threads, class Act, class Gate>
status gla_decode_dispatch(const gla_decode_args<Act, Gate, float>& a,
                           const launch_target& on) noexcept {
  const index_t K = a.q.shape[2];
  if (K <= 32) return gla_decode_launch<32, BV, W, Threads>(a, on);
  if (K <= 64) return gla_decode_launch<64, BV, W, Threads>(a, on);
  if (K <= 128) return gla_decode_launch<128, BV, W, Threads>(a, on);
  if (K <= 256) return gla_decode_launch<256, BV, W, Threads>(a, on);
  return status::fail(status_code::unsupported, "q");
}

} // namespace detail

/// gla_decode on CUDA needs no workspace.
template <int Sm, class Act, class Gate, class State>
constexpr std::size_t
gla_decode_workspace_bytes(const cuda<Sm>&, const gla_decode_args<Act, Gate, State>&) noexcept {
  return 0;
}

/// One decode step on the GPU (see the top of this file). Enqueues on `backend.stream`.
template <int Sm, class Act, class Gate, class State>
[[nodiscard]] status gla_decode(const cuda<Sm>& backend, const gla_decode_args<Act, Gate, State>& a,
                                workspace = {}) noexcept {
  if constexpr (!std::is_same_v<State, float>) {
    (void)backend;
    (void)a;
    return status::fail(status_code::unsupported, "state");
  } else {
    RODIMUS_TRY(gla_decode_check_shapes(a));
    using policy = gla_decode_policy<Sm>;
    const index_t rows = a.q.shape[0] * a.q.shape[1], V = a.v.shape[2];
    if (rows == 0) return status::success();
    const auto& st = a.state;
    const bool vec = V % 4 == 0 && st.stride[3] == 1 && st.stride[2] % 4 == 0 &&
                     st.stride[1] % 4 == 0 && st.stride[0] % 4 == 0 &&
                     reinterpret_cast<std::uintptr_t>(st.data) % 16 == 0;
    constexpr int NT = policy::narrow_threads, WT = policy::wide_threads;
    if (!vec)
      return detail::gla_decode_dispatch<policy::narrow_tile, 1, NT>(a, detail::launch_on(backend));
    const index_t wide_ctas = rows * ((V + policy::wide_tile - 1) / policy::wide_tile);
    if (wide_ctas >= policy::wide_min_ctas)
      return detail::gla_decode_dispatch<policy::wide_tile, 4, WT>(a, detail::launch_on(backend));
    return detail::gla_decode_dispatch<policy::narrow_tile, 4, NT>(a, detail::launch_on(backend));
  }
}

} // namespace rodimus
