// mixer_decode on CUDA (math and shapes in rodimus/primitives/mixer_decode.hpp): the channel gate,
// DDTS, the GLA decode update and readout and the internal skip of a batch of decode rows in ONE
// kernel (docs/MODEL.md §2.3 steps 6-11, §6.3):
//
//   u_pre = u_preact,  or (low-rank form) h . ch_gate_up^T         this CTA's columns only
//   v     = channel_gate_value(u_pre, ch_gate_bias, x)             this CTA's columns only
//   gate  = ddts_gate(ddts_preact(psi, mem_gate_bias)),  denom = ddts_key_denominator(||k||)
//   k_hat = ddts_key(k, denom, gate.beta),  decay = exp(gate.log_decay)          all N channels
//   S     = decay * S + k_hat^T v;  o_gla = (scale * r) S                        the state tile
//   o     = fmaf(c, residual_weight, o_gla)                                      this CTA's columns
//
// Every formula is the primitive's own (primitives/channel_gate.hpp, ddts.hpp; the state update
// and the column reduction are gla_decode.cuh's gla_decode_fragment / gla_decode_column_sum), in
// f32 in the unfused kernels' order: the key's sum of squares over lanes n, n + 32, ... of one warp
// and warp_sum as ddts.cuh, o_gla rounded to f32 before the fmaf as scale_add.cuh. So the result
// equals the unfused sequence channel_gate, ddts, gla_decode, scale_add on CUDA up to the
// compiler's contractions.
//
// Kernel design: gla_decode's (its tiles, its policy gla_decode_policy<Sm>, chosen on the same
// state streaming): one CTA per (row, tile of BV columns of E). Its prologue computes what the
// tile needs from the row: the channel gate of its own columns, and DDTS for all N <= 256 key
// channels (thread n < N one channel; warp 0 the key norm), redundantly in each of the E / BV CTAs
// of a row (N = 64 gates against 2 x 64 x BV x 4 bytes of state per CTA). The loads that do not
// depend on the slot are issued while it is in flight (and the channel gate computed from them
// there: its 3W operands kept live past the state loads cost 10 registers), the state loads right
// after it, and the DDTS gate arithmetic runs while those are in flight. ptxas (sm_90, N = 64):
// narrow tile 42 registers, wide tile 80 (gla_decode: 38 and 72), 3 CTAs per SM on wide tiles as
// gla_decode.
//
// The low-rank form (h and ch_gate_up instead of u_preact, a template switch of the same kernel)
// splits the tile's BV x R products over the whole CTA: thread t sums column t % BV over r = t /
// BV, t / BV + parts, ... (parts = Threads / BV: R / 8 products each on narrow tiles, R / 2 on
// wide ones; a warp reads one h value, broadcast) before the first barrier; between the two
// barriers thread t < BV adds its column's parts and applies the channel gate; after the second
// each thread reads the gated values of its W columns from shared memory. So the weights are read
// once per CTA (BV x R, 2 KiB in bf16 on a narrow tile at R = 32) instead of once per thread row.
// ptxas (sm_90, N = 64, R any, bf16 weights): narrow tile 48 registers, wide tile 80; no spills.
//
// Every pointer in DEVICE memory. Rows whose slot is -1 or outside [0, P) are skipped: o row and
// pool untouched (primitives/slots.hpp; never an out-of-bounds access); two rows sharing a slot
// is a caller error (a race). N <= 256 (else unsupported "r"). No workspace. The call only
// enqueues one kernel on the backend's stream.
#pragma once

#include <cstddef>
#include <cstdint>

#include "rodimus/backend/cuda/cuda.cuh"
#include "rodimus/backend/cuda/gla_decode.cuh"
#include "rodimus/backend/cuda/launch.cuh"
#include "rodimus/backend/cuda/reduce.cuh"
#include "rodimus/core/dtype.hpp"
#include "rodimus/core/status.hpp"
#include "rodimus/core/workspace.hpp"
#include "rodimus/primitives/channel_gate.hpp"
#include "rodimus/primitives/ddts.hpp"
#include "rodimus/primitives/mixer_decode.hpp"

namespace rodimus {

namespace detail {

/// LowRank: u_pre from h and ch_gate_up (UpWeight), else from u_preact (then UpWeight = float).
template <class UpWeight, bool LowRank, int MaxK, int BV, int W, int Threads, int MinBlocks>
__global__ void __launch_bounds__(Threads, MinBlocks)
    mixer_decode_kernel(const mixer_decode_args<UpWeight> a, const index_t tiles) {
  begin_after_prior_kernels();
  using tile = gla_decode_tile<MaxK, BV, W, Threads>;
  constexpr int key_loads = (MaxK + cuda_warp_size - 1) / cuda_warp_size; // per lane of warp 0
  __shared__ gla_decode_shared<tile> sh;
  __shared__ float s_denom; // max(||k||, eps)
  // Low-rank form: the parts of the tile's u_pre (Threads = parts x BV), then its gated values.
  __shared__ __align__(16) float s_up[LowRank ? Threads : 1];

  const index_t K = a.r.shape[1], V = a.x.shape[1], P = a.state.shape[0];
  const index_t b = index_t(blockIdx.x) / tiles;
  const index_t v0 = (index_t(blockIdx.x) - b * tiles) * BV;
  const int tid = int(threadIdx.x);
  const int vt = tid % tile::vt, kt = tid / tile::vt;
  const index_t col = v0 + index_t(vt) * W;
  const bool col_ok = col < V; // W = 4 only when V % 4 == 0: the whole vector is in range

  // Loads that do not depend on the slot, issued while it is in flight.
  const index_t s = slot_at(a.slot, b);
  const index_t oc = v0 + tid; // the output column of threads < BV
  const bool o_ok = tid < BV && oc < V;
  float vv[W];                           // v = u: the channel gate of this thread's columns
  float up = 0.0f, gx = 0.0f, gb = 0.0f; // low-rank: a part of u_pre; x, b1 of column oc
  if constexpr (LowRank) {
    const index_t R = a.h.shape[1], uc = v0 + tid % BV;
    if (uc < V)
#pragma unroll 4
      for (index_t r = tid / BV; r < R; r += tile::parts)
        up = fmaf(a.h(b, r), load_as<float>(a.ch_gate_up(uc, r)), up);
    if (o_ok) {
      gx = a.x(b, oc);
      gb = a.ch_gate_bias(oc);
    }
  } else {
#pragma unroll
    for (int j = 0; j < W; ++j)
      vv[j] = col_ok ? channel_gate_value(a.u_preact(b, col + j), a.ch_gate_bias(col + j),
                                          a.x(b, col + j))
                     : 0.0f;
  }
  const float cv = o_ok ? a.c(b, oc) : 0.0f;
  const float rw = o_ok ? a.residual_weight(oc) : 0.0f;
  const bool k_ok = tid < K; // MaxK <= Threads: thread n < K owns key channel n
  const float qi = k_ok ? a.scale * a.r(b, tid) : 0.0f;
  const float ki = k_ok ? a.k(b, tid) : 0.0f;
  const ddts_preact_values pre = k_ok ? ddts_preact(a.psi, a.mem_gate_bias, b, index_t(tid), K)
                                      : ddts_preact_values{0.0f, 0.0f};
  float kn[key_loads]; // warp 0: k[lane], k[lane + 32], ... for the norm (ddts.cuh's order)
#pragma unroll
  for (int i = 0; i < key_loads; ++i) {
    const index_t n = index_t(tid) + index_t(i) * cuda_warp_size;
    kn[i] = tid < cuda_warp_size && n < K ? a.k(b, n) : 0.0f;
  }

  if (!slot_in_pool(s, P)) return; // padding row: o and state untouched (uniform over the CTA)

  gla_decode_fragment<tile> f{a.state.data + s * a.state.stride[0],
                              a.state.stride[2],
                              a.state.stride[3],
                              K,
                              col,
                              kt,
                              col_ok,
                              {}};
  f.load(); // the state tile's loads in flight during the arithmetic below

  if constexpr (LowRank) s_up[tid] = up;
  const ddts_gate_values<float> gate =
      k_ok ? ddts_gate(pre.sel, pre.tau) : ddts_gate_values<float>{0.0f, 0.0f};
  if (tid < cuda_warp_size) {
    float ss = 0.0f;
#pragma unroll
    for (int i = 0; i < key_loads; ++i)
      if (index_t(tid) + index_t(i) * cuda_warp_size < K) ss += kn[i] * kn[i];
    ss = warp_sum(ss);
    if (tid == 0) s_denom = ddts_key_denominator(sqrtf(ss), a.normalize_eps);
  }
  __syncthreads();
  if (tid < MaxK) {
    sh.q[tid] = qi;
    sh.k[tid] = k_ok ? ddts_key(ki, s_denom, gate.beta) : 0.0f;
    sh.decay[tid] = k_ok ? expf(gate.log_decay) : 0.0f;
  }
  if constexpr (LowRank) {
    if (tid < BV) { // column oc's parts (only this thread reads or writes them here)
      float u = s_up[tid];
#pragma unroll
      for (int p = 1; p < tile::parts; ++p)
        u += s_up[tid + p * BV];
      s_up[tid] = o_ok ? channel_gate_value(u, gb, gx) : 0.0f;
    }
  }
  __syncthreads();
  if constexpr (LowRank) {
#pragma unroll
    for (int j = 0; j < W; ++j)
      vv[j] = s_up[vt * W + j];
  }

  float acc[W];
  f.update(sh, vv, acc);
  const float o_gla = gla_decode_column_sum(sh, acc, tid, vt, kt);
  if (o_ok) a.o(b, oc) = fmaf(cv, rw, o_gla);
}

template <bool LowRank, int MaxK, int BV, int W, int Threads, class UpWeight,
          int MinBlocks = gla_decode_tile<MaxK, BV, W, Threads>::min_blocks>
status mixer_decode_launch(const mixer_decode_args<UpWeight>& a, const launch_target& on) noexcept {
  const index_t rows = a.x.shape[0], V = a.x.shape[1];
  const index_t tiles = (V + BV - 1) / BV;
  RODIMUS_REQUIRE(rows <= index_t(0x7fffffff) / tiles, unsupported, "x"); // grid size limit
  RODIMUS_CUDA_TRY(launch(on,
                          mixer_decode_kernel<UpWeight, LowRank, MaxK, BV, W, Threads, MinBlocks>,
                          unsigned(rows * tiles), Threads, 0, a, tiles));
  return status::success();
}

/// The one runtime-to-compile-time switch: N to the smallest supported MaxK >= N.
template <bool LowRank, int BV, int W, int Threads, class UpWeight>
status mixer_decode_dispatch(const mixer_decode_args<UpWeight>& a,
                             const launch_target& on) noexcept {
  const index_t K = a.r.shape[1];
  if (K <= 32) return mixer_decode_launch<LowRank, 32, BV, W, Threads>(a, on);
  if (K <= 64) return mixer_decode_launch<LowRank, 64, BV, W, Threads>(a, on);
  if (K <= 128) return mixer_decode_launch<LowRank, 128, BV, W, Threads>(a, on);
  if (K <= 256) return mixer_decode_launch<LowRank, 256, BV, W, Threads>(a, on);
  return status::fail(status_code::unsupported, "r");
}

/// The tile: gla_decode's choice for the same state (gla_decode_policy<Sm>).
template <int Sm, bool LowRank, class UpWeight>
status mixer_decode_tiles(const mixer_decode_args<UpWeight>& a, const launch_target& on) noexcept {
  using policy = gla_decode_policy<Sm>;
  const index_t rows = a.x.shape[0], V = a.x.shape[1];
  const auto& st = a.state;
  const bool vec = V % 4 == 0 && st.stride[3] == 1 && st.stride[2] % 4 == 0 &&
                   st.stride[0] % 4 == 0 && reinterpret_cast<std::uintptr_t>(st.data) % 16 == 0;
  constexpr int NT = policy::narrow_threads, WT = policy::wide_threads;
  if (!vec) return mixer_decode_dispatch<LowRank, policy::narrow_tile, 1, NT>(a, on);
  const index_t wide_ctas = rows * ((V + policy::wide_tile - 1) / policy::wide_tile);
  if (wide_ctas >= policy::wide_min_ctas)
    return mixer_decode_dispatch<LowRank, policy::wide_tile, 4, WT>(a, on);
  return mixer_decode_dispatch<LowRank, policy::narrow_tile, 4, NT>(a, on);
}

} // namespace detail

/// mixer_decode on CUDA needs no workspace.
template <int Sm, class UpWeight>
constexpr std::size_t mixer_decode_workspace_bytes(const cuda<Sm>&,
                                                   const mixer_decode_args<UpWeight>&) noexcept {
  return 0;
}

/// One fused decode step of the mixer's memory (see the top of this file) on `be.stream`, in
/// either form of the channel gate's pre-activation.
template <int Sm, class UpWeight>
[[nodiscard]] status mixer_decode(const cuda<Sm>& be, const mixer_decode_args<UpWeight>& a,
                                  workspace = {}) noexcept {
  RODIMUS_TRY(mixer_decode_check_shapes(a));
  if (a.x.shape[0] == 0) return status::success();
  const auto on = detail::launch_on(be);
  if (mixer_decode_low_rank(a)) return detail::mixer_decode_tiles<Sm, true>(a, on);
  // The u_preact form does not read ch_gate_up: one kernel per tile for it, whatever UpWeight.
  return detail::mixer_decode_tiles<Sm, false>(mixer_decode_with_up<float>(a, {}), on);
}

} // namespace rodimus
