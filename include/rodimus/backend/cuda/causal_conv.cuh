// Depthwise causal conv on the CUDA backend (math, shapes and the state contract in
// rodimus/primitives/causal_conv.hpp), f32 arithmetic:
//
//   y_t[c] = act( bias[c] + sum_w weight[c][w] * x_{t-(W-1)+w}[c] )     act = silu or identity
//
// Every pointer (x, y, weight, bias, the state pools, cu_seqlens, the slots) is DEVICE
// memory. Act: f32, bf16, f16 (f64 returns unsupported "x"); weight and bias f32; any strides.
//
// causal_conv (prefill), two kernels on the stream:
//   1. y: one thread per (batch row, chunk of `tokens` positions of the T axis, channel); threads
//      of a CTA take consecutive channels (coalesced along C). A thread finds the sequence of its
//      first token by a binary search in cu_seqlens, then runs along its chunk with the last W-1
//      inputs in registers (W <= 4; wider kernels read the W taps from memory), restarting at each
//      sequence boundary inside the chunk; taps before a sequence's start come from the initial
//      state. The conv has no recurrence, so chunks are independent: a long sequence fills the GPU.
//   2. final state: one thread per (sequence, channel) writes the W entries in ascending w order,
//      reading x or the initial state (exactly as the scalar reference). Being a separate launch,
//      it runs after every read of the initial state by kernel 1, so final_state may alias
//      initial_state (the in-place update); within a thread, ascending w reads entry L + w >= w of
//      an aliased state, never one it already wrote.
// causal_conv_step (decode): one thread per (row, channel): the state row's W entries are all
//   loaded (registers for W <= 4), then the shifted row and x are stored and the conv computed.
//
// Contents the host cannot check (they live on the device; the model runner validates them on the
// host, the host backends return bad_argument): the kernels never read or write out of bounds for
// any content of cu_seqlens or the slots.
//   - offsets are clamped to [0, T] (end >= begin); a token that no sequence covers (only possible
//     with invalid offsets) gets y = NaN;
//   - a sequence whose slot is -1 (padding) or outside a pool given is skipped: its y rows
//     and the pools are left as they are (primitives/slots.hpp);
//   - a step row whose slot is -1 (padding) or outside [0, P) is skipped the same way;
//   - two sequences or rows sharing a slot is a caller error (a race on that state row).
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "rodimus/backend/cuda/cuda.cuh"
#include "rodimus/backend/cuda/launch.cuh"
#include "rodimus/core/dtype.hpp"
#include "rodimus/core/status.hpp"
#include "rodimus/core/tensor_view.hpp"
#include "rodimus/primitives/causal_conv.hpp"
#include "rodimus/primitives/elementwise.hpp"
#include "rodimus/primitives/packed_sequences.hpp"

namespace rodimus {

/// Tuning constants of causal_conv on cuda<Sm>. First choices, not yet measured: 128 channels per
/// CTA (256 B of bf16 per token row and CTA), 64 tokens per thread (the W-1 = 3 halo loads cost
/// 5%; T = 4096, C = 2048 gives 1024 CTAs), 256 threads for the element-wise step and state
/// kernels.
template <int Sm> struct causal_conv_policy {
  static constexpr int threads = 128;      // channels per CTA of the prefill y kernel
  static constexpr index_t tokens = 64;    // positions per thread of the prefill y kernel
  static constexpr int register_width = 4; // W <= this: taps in registers; wider: from memory
  static constexpr int step_threads = 256; // (row, channel) pairs per CTA, step and state kernels
};

namespace detail {

template <class Act>
constexpr bool cuda_conv_type =
    std::is_same_v<Act, float> || std::is_same_v<Act, bf16> || std::is_same_v<Act, f16>;

/// The tokens of sequence n, clamped to [0, T] with end >= begin (valid offsets are unchanged).
__device__ inline sequence_range conv_sequence(const std::int64_t* cu, index_t n, index_t T) {
  sequence_range r = sequence_at(cu, n, T);
  if (cu) {
    r.begin = r.begin < 0 ? 0 : r.begin > T ? T : r.begin;
    r.end = r.end < r.begin ? r.begin : r.end > T ? T : r.end;
  }
  return r;
}

/// The sequence holding token t of batch row b: without cu_seqlens b, else the last n in [0, N]
/// with cu[n] <= t (so empty sequences are skipped); -1 when that is none or N (invalid offsets
/// only). Reads cu[0..N] only.
__device__ inline index_t conv_sequence_of(const std::int64_t* cu, index_t N, index_t b,
                                           index_t t) {
  if (!cu) return b;
  index_t lo = 0, hi = N + 1; // the answer is lo - 1 once lo == hi
  while (lo < hi) {
    const index_t mid = lo + (hi - lo) / 2;
    if (cu[mid] <= t)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo - 1 < N ? lo - 1 : -1;
}

/// The rows a state slot may address: those of every pool given (without slot the pools
/// have a row per sequence: causal_conv_check).
template <class Act> __device__ inline index_t conv_state_rows(const causal_conv_args<Act>& a) {
  const index_t Pi = pool_rows(a.initial_state), Pf = pool_rows(a.final_state);
  return Pi < Pf ? Pi : Pf;
}

/// x of sequence r at sequence-local time tau, channel c; tau < 0: the initial state (has_init) or
/// zero.
template <class Act>
__device__ inline float conv_input(const causal_conv_args<Act>& a, const sequence_range& r,
                                   index_t c, index_t tau, bool has_init, index_t s, index_t W) {
  if (tau >= 0) return load_as<float>(a.x(r.batch, r.begin + tau, c));
  return has_init ? load_as<float>(a.initial_state(s, c, W + tau)) : 0.0f;
}

/// Kernel 1 of the prefill: y. RegW > 0: the last RegW - 1 inputs in registers (W <= RegW);
/// RegW == 0: every tap read from memory (any W). Items (b, chunk, channel tile) loop over the
/// grid.
template <int RegW, int Threads, class Act>
__global__ void __launch_bounds__(Threads)
    causal_conv_kernel(const causal_conv_args<Act> a, const index_t N, const index_t chunks,
                       const index_t tokens, const index_t ctiles) {
  begin_after_prior_kernels();
  static_assert(RegW == 0 || RegW >= 2, "RegW: 0 (taps from memory) or >= 2");
  const index_t B = a.x.shape[0], T = a.x.shape[1], C = a.x.shape[2], W = a.weight.shape[1];
  const index_t P = conv_state_rows(a);
  const index_t items = B * chunks * ctiles;
  for (index_t item = blockIdx.x; item < items; item += gridDim.x) {
    const index_t ct = item % ctiles, bk = item / ctiles;
    const index_t k = bk % chunks, b = bk / chunks;
    const index_t c = ct * Threads + index_t(threadIdx.x);
    if (c >= C) continue; // no shared memory, no barrier: idle lanes just skip
    const float bias = a.bias.data ? a.bias(c) : 0.0f;
    // Right-aligned taps: wr[RegW - W + w] = weight[c][w]; wr[RegW - 1] multiplies the current x.
    float wr[RegW > 0 ? RegW : 1];
#pragma unroll
    for (int j = 0; j < RegW; ++j) {
      const index_t w = index_t(j) - (RegW - W);
      wr[j] = w >= 0 ? a.weight(c, w) : 0.0f;
    }
    (void)wr; // unused when RegW == 0
    const index_t t_end = (k + 1) * tokens < T ? (k + 1) * tokens : T;
    for (index_t t = k * tokens; t < t_end;) {
      const index_t n = conv_sequence_of(a.cu_seqlens, N, b, t);
      const sequence_range r = n >= 0 ? conv_sequence(a.cu_seqlens, n, T) : sequence_range{};
      if (n < 0 || t < r.begin || t >= r.end) { // invalid offsets: no sequence covers t
        a.y(b, t, c) = store_as<Act>(NAN);
        ++t;
        continue;
      }
      const index_t s = slot_at(a.slot, n);
      const index_t stop = r.end < t_end ? r.end : t_end;
      if (!slot_in_pool(s, P)) { // padding (or a slot the host would refuse): y rows untouched
        t = stop;
        continue;
      }
      const bool has_init = a.initial_state.data != nullptr;
      if constexpr (RegW > 0) {
        // h[j] = x at sequence-local time tau - (RegW - 1) + j; entries j < RegW - W are unused.
        float h[RegW - 1];
        const index_t tau0 = t - r.begin;
#pragma unroll
        for (int j = 0; j < RegW - 1; ++j)
          h[j] = j >= RegW - W ? conv_input(a, r, c, tau0 - (RegW - 1) + j, has_init, s, W) : 0.0f;
        for (; t < stop; ++t) {
          const float v = load_as<float>(a.x(b, t, c));
          float acc = bias;
#pragma unroll
          for (int j = 0; j < RegW - 1; ++j)
            if (j >= RegW - W) acc = fmaf(wr[j], h[j], acc);
          acc = fmaf(wr[RegW - 1], v, acc);
          a.y(b, t, c) = store_as<Act>(a.silu ? silu(acc) : acc);
#pragma unroll
          for (int j = 0; j + 1 < RegW - 1; ++j)
            h[j] = h[j + 1];
          h[RegW - 2] = v;
        }
      } else {
        for (; t < stop; ++t) {
          const index_t tau = t - r.begin;
          float acc = bias;
          for (index_t w = 0; w < W; ++w)
            acc = fmaf(a.weight(c, w), conv_input(a, r, c, tau - (W - 1) + w, has_init, s, W), acc);
          a.y(b, t, c) = store_as<Act>(a.silu ? silu(acc) : acc);
        }
      }
    }
  }
}

/// Kernel 2 of the prefill: the final state, one thread per (sequence, channel), ascending w.
template <class Act>
__global__ void causal_conv_state_kernel(const causal_conv_args<Act> a, const index_t N) {
  begin_after_prior_kernels();
  const index_t T = a.x.shape[1], C = a.x.shape[2], W = a.weight.shape[1];
  const index_t P = conv_state_rows(a);
  const index_t n_items = N * C;
  for (index_t i = index_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n_items;
       i += index_t(gridDim.x) * blockDim.x) {
    const index_t n = i / C, c = i - n * C;
    const index_t s = slot_at(a.slot, n);
    if (!slot_in_pool(s, P)) continue; // padding: the pools untouched
    const bool has_init = a.initial_state.data != nullptr;
    const sequence_range r = conv_sequence(a.cu_seqlens, n, T);
    const index_t L = r.length();
    for (index_t w = 0; w < W; ++w) {
      const index_t tau = L - W + w;
      a.final_state(s, c, w) = tau >= 0   ? a.x(r.batch, r.begin + tau, c)
                               : has_init ? a.initial_state(s, c, W + tau)
                                          : store_as<Act>(0.0f);
    }
  }
}

/// The decode step, one thread per (row, channel). RegW > 0: the W <= RegW state entries are
/// loaded into registers before any store; RegW == 0: ascending w, entry w + 1 read before it is
/// overwritten (any W).
template <int RegW, class Act>
__global__ void causal_conv_step_kernel(const causal_conv_step_args<Act> a) {
  begin_after_prior_kernels();
  const index_t B = a.x.shape[0], C = a.x.shape[1], W = a.weight.shape[1], P = a.state.shape[0];
  const index_t n_items = B * C;
  for (index_t i = index_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n_items;
       i += index_t(gridDim.x) * blockDim.x) {
    const index_t b = i / C, c = i - b * C;
    const index_t s = slot_at(a.slot, b);
    if (!slot_in_pool(s, P)) continue; // padding row (or a slot outside the pool): untouched
    const Act xv = a.x(b, c);
    float acc = a.bias.data ? a.bias(c) : 0.0f;
    if constexpr (RegW > 0) {
      Act old[RegW] = {}; // old[w] = state[w + 1], the new state[w] for w + 1 < W
#pragma unroll
      for (int w = 0; w < RegW; ++w)
        if (w + 1 < W) old[w] = a.state(s, c, index_t(w + 1));
#pragma unroll
      for (int w = 0; w < RegW; ++w)
        if (w < W) {
          const Act v = w + 1 < W ? old[w] : xv;
          a.state(s, c, index_t(w)) = v;
          acc = fmaf(a.weight(c, index_t(w)), load_as<float>(v), acc);
        }
    } else {
      for (index_t w = 0; w < W; ++w) {
        const Act v = w + 1 < W ? a.state(s, c, w + 1) : xv;
        a.state(s, c, w) = v;
        acc = fmaf(a.weight(c, w), load_as<float>(v), acc);
      }
    }
    a.y(b, c) = store_as<Act>(a.silu ? silu(acc) : acc);
  }
}

} // namespace detail

/// The prefill on the GPU (see the top of this file): shape checks only (cu_seqlens and
/// slot are device memory), then up to two launches on `be.stream`.
template <int Sm, class Act>
[[nodiscard]] status causal_conv(const cuda<Sm>& be, const causal_conv_args<Act>& a) noexcept {
  RODIMUS_TRY(causal_conv_check(a));
  if constexpr (!detail::cuda_conv_type<Act>) {
    (void)be;
    return status::fail(status_code::unsupported, "x");
  } else {
    using policy = causal_conv_policy<Sm>;
    constexpr int NT = policy::threads;
    const index_t B = a.x.shape[0], T = a.x.shape[1], C = a.x.shape[2], W = a.weight.shape[1];
    const index_t N = sequence_count(a.cu_seqlens, a.num_seqs, B);
    if (B > 0 && T > 0 && C > 0) {
      const index_t chunks = (T + policy::tokens - 1) / policy::tokens;
      const index_t ctiles = (C + NT - 1) / NT;
      const unsigned grid = detail::rows_grid(B * chunks * ctiles);
      if (W <= policy::register_width)
        RODIMUS_CUDA_TRY(detail::launch(detail::launch_on(be),
                                        detail::causal_conv_kernel<policy::register_width, NT, Act>,
                                        grid, NT, 0, a, N, chunks, policy::tokens, ctiles));
      else
        RODIMUS_CUDA_TRY(detail::launch(detail::launch_on(be),
                                        detail::causal_conv_kernel<0, NT, Act>, grid, NT, 0, a, N,
                                        chunks, policy::tokens, ctiles));
    }
    if (a.final_state.data && N > 0 && C > 0) {
      constexpr int ST = policy::step_threads;
      RODIMUS_CUDA_TRY(detail::launch(detail::launch_on(be), detail::causal_conv_state_kernel<Act>,
                                      detail::elements_grid(N * C, ST), ST, 0, a, N));
    }
    return status::success();
  }
}

/// The decode step on the GPU (see the top of this file): shape checks only (slot is device
/// memory), then one launch on `be.stream`.
template <int Sm, class Act>
[[nodiscard]] status causal_conv_step(const cuda<Sm>& be,
                                      const causal_conv_step_args<Act>& a) noexcept {
  RODIMUS_TRY(causal_conv_step_check(a));
  if constexpr (!detail::cuda_conv_type<Act>) {
    (void)be;
    return status::fail(status_code::unsupported, "x");
  } else {
    using policy = causal_conv_policy<Sm>;
    constexpr int ST = policy::step_threads;
    const index_t n = a.x.shape[0] * a.x.shape[1];
    if (n == 0) return status::success();
    const unsigned grid = detail::elements_grid(n, ST);
    if (a.weight.shape[1] <= policy::register_width)
      RODIMUS_CUDA_TRY(detail::launch(detail::launch_on(be),
                                      detail::causal_conv_step_kernel<policy::register_width, Act>,
                                      grid, ST, 0, a));
    else
      RODIMUS_CUDA_TRY(detail::launch(detail::launch_on(be),
                                      detail::causal_conv_step_kernel<0, Act>, grid, ST, 0, a));
    return status::success();
  }
}

} // namespace rodimus
