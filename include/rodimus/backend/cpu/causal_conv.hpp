// Depthwise causal conv1d (+ bias, optional SiLU) on the CPU backend (math and shapes in
// rodimus/primitives/causal_conv.hpp), f32 arithmetic:
//
//   y_t[c] = act( bias[c] + sum_w weight[c][w] * x_{t-(W-1)+w}[c] )
//
// causal_conv       vectorised over channels in blocks of 256 (the block's weights transposed to
//                   (W, 256) on the stack), every token of a sequence per block; threads split the
//                   channel blocks. Taps before the sequence start read the initial state. W <= 16.
// causal_conv_step  one token per row, the (C, W) state shifted in place per block of 256 channels
//                   (W = 2, 4 with dense rows: taps unrolled), then bias and SiLU vectorised
//                   over the block; threads split rows and channel blocks (>= 64 KiB each).
// Other shapes (W > 16, inner strides other than 1) run the scalar reference.
#pragma once

#include <algorithm>

#include "rodimus/backend/cpu/cpu.hpp"
#include "rodimus/backend/cpu/simd.hpp"
#include "rodimus/backend/scalar/causal_conv.hpp" // the fallback for what this backend does not cover
#include "rodimus/primitives/causal_conv.hpp"
#include "rodimus/primitives/elementwise.hpp"
#include "rodimus/primitives/packed_sequences.hpp"

namespace rodimus {

namespace detail {
constexpr index_t kConvBlock = 256;
constexpr index_t kConvMaxWidth = 16;

/// Dense (C, W) state rows of nc channels: shift each row left by one, append x, and
/// acc[c] = sum_w weight[c][w] * new state[c][w] (W fixed: the compiler unrolls the taps).
template <int W, class Act>
inline void conv_step_shift(Act* state, const Act* x, const float* weight, float* acc,
                            index_t nc) noexcept {
  for (index_t c = 0; c < nc; ++c) {
    Act* st = state + c * W;
    const float* wt = weight + c * W;
    float t = 0.0f;
    for (int w = 0; w + 1 < W; ++w) {
      st[w] = st[w + 1];
      t += wt[w] * load_as<float>(st[w]);
    }
    st[W - 1] = x[c];
    acc[c] = t + wt[W - 1] * load_as<float>(x[c]);
  }
}

/// y[b, c0:c0+nc] = act(bias + acc), vectorised (SiLU's exp is most of a step's arithmetic).
template <class A, class Act>
inline void conv_step_finish(const causal_conv_step_args<Act>& a, index_t b, index_t c0,
                             const float* acc, index_t nc) noexcept {
  using B = fbatch<A>;
  constexpr index_t L = index_t(lanes<A>);
  Act* y = &a.y(b, c0);
  const bool contiguous = a.y.stride[1] == 1 && (!a.bias.data || a.bias.stride[0] == 1);
  const index_t nv = contiguous ? nc / L * L : 0;
  for (index_t c = 0; c < nv; c += L) {
    B t = B::load_aligned(acc + c);
    if (a.bias.data) t += load_f32<A>(&a.bias(c0 + c));
    store_f32<A>(y + c, a.silu ? silu_f32<A>(t) : t);
  }
  for (index_t c = nv; c < nc; ++c) {
    const float t = acc[c] + (a.bias.data ? a.bias(c0 + c) : 0.0f);
    a.y(b, c0 + c) = store_as<Act>(a.silu ? silu(t) : t);
  }
}
} // namespace detail

/// Whether causal_conv() on cpu<Arch> runs the scalar reference for `a` instead of its own kernel
/// (Act other than f32 / bf16 / f16, a width W above 16, an inner stride other than 1). Benchmarks
/// check it, so that they never time the fallback (docs/ARCHITECTURE.md "Fallbacks").
template <class Arch, class Act>
[[nodiscard]] bool falls_back_to_scalar(const cpu<Arch>&, const causal_conv_args<Act>& a) noexcept {
  if constexpr (!detail::cpu_storage_type<Act>)
    return true;
  else
    return a.weight.shape[1] > detail::kConvMaxWidth || a.x.stride[2] != 1 || a.y.stride[2] != 1;
}

template <class Arch, class Act>
[[nodiscard]] status causal_conv(const cpu<Arch>& be, const causal_conv_args<Act>& a) noexcept {
  RODIMUS_TRY(causal_conv_check(a));
  if constexpr (!detail::cpu_storage_type<Act>) {
    return causal_conv(scalar{}, a);
  } else {
    const index_t B = a.x.shape[0], T = a.x.shape[1], C = a.x.shape[2], W = a.weight.shape[1];
    if (falls_back_to_scalar(be, a)) return causal_conv(scalar{}, a);
    RODIMUS_TRY(check_packed_offsets(a.cu_seqlens, a.num_seqs, T));
    const index_t N = sequence_count(a.cu_seqlens, a.num_seqs, B);
    RODIMUS_TRY(causal_conv_check_slots(a, N));
    using V = detail::fbatch<Arch>;
    constexpr index_t Wd = index_t(detail::lanes<Arch>);
    constexpr index_t CB = detail::kConvBlock;
    const index_t blocks = (C + CB - 1) / CB;
    // Threads only for >= 16K outputs each (a one-token call is a few microseconds).
    const index_t grain = std::max<index_t>(1, 16384 / (CB * std::max<index_t>(1, B * T)));
    parallel_for(be.pool, 0, blocks, grain, [&](index_t lo, index_t hi) {
      alignas(64) float wt[detail::kConvMaxWidth * CB]; // (W, CB) weights of the block, transposed
      alignas(64) float bs[CB];                         // (CB) bias
      alignas(64) float head[detail::kConvMaxWidth * CB]; // (W, CB) the initial state, transposed
      for (index_t blk = lo; blk < hi; ++blk) {
        const index_t c0 = blk * CB, nc = std::min(CB, C - c0);
        const index_t ncv = nc / Wd * Wd;
        for (index_t c = 0; c < nc; ++c) {
          for (index_t w = 0; w < W; ++w)
            wt[w * CB + c] = a.weight(c0 + c, w);
          bs[c] = a.bias.data ? a.bias(c0 + c) : 0.0f;
        }
        for (index_t n = 0; n < N; ++n) {
          const index_t s = slot_at(a.slot, n);
          if (is_padding_slot(s)) continue; // y rows and states untouched
          const sequence_range r = sequence_at(a.cu_seqlens, n, T);
          const index_t L = r.length();
          for (index_t c = 0; c < nc; ++c)
            for (index_t w = 0; w < W; ++w)
              head[w * CB + c] =
                  a.initial_state.data ? load_as<float>(a.initial_state(s, c0 + c, w)) : 0.0f;
          // x at sequence-local time tau, channel c0 + c (tau < 0: the initial state).
          auto input = [&](index_t tau, index_t c) -> float {
            return tau >= 0 ? load_as<float>(a.x(r.batch, r.begin + tau, c0 + c))
                            : head[(W + tau) * CB + c];
          };
          for (index_t t = 0; t < L; ++t) {
            Act* y = &a.y(r.batch, r.begin + t, c0);
            if (t >= W - 1) {
              for (index_t c = 0; c < ncv; c += Wd) {
                V acc = V::load_aligned(bs + c);
                for (index_t w = 0; w < W; ++w)
                  acc = xsimd::fma(
                      V::load_aligned(wt + w * CB + c),
                      detail::load_f32<Arch>(&a.x(r.batch, r.begin + t - (W - 1) + w, c0 + c)),
                      acc);
                detail::store_f32<Arch>(y + c, a.silu ? detail::silu_f32<Arch>(acc) : acc);
              }
            }
            for (index_t c = (t >= W - 1 ? ncv : 0); c < nc; ++c) {
              float acc = bs[c];
              for (index_t w = 0; w < W; ++w)
                acc += wt[w * CB + c] * input(t - (W - 1) + w, c);
              y[c] = store_as<Act>(a.silu ? silu(acc) : acc);
            }
          }
          if (a.final_state.data)
            for (index_t c = 0; c < nc; ++c)
              for (index_t w = 0; w < W; ++w)
                a.final_state(s, c0 + c, w) = store_as<Act>(input(L - W + w, c));
        }
      }
    });
    return status::success();
  }
}

/// Whether causal_conv_step() on cpu<Arch> runs the scalar reference for `a` instead of its own
/// kernel (Act other than f32 / bf16 / f16; any strides run the kernel). Benchmarks check it, so
/// that they never time the fallback (docs/ARCHITECTURE.md "Fallbacks").
template <class Arch, class Act>
[[nodiscard]] constexpr bool falls_back_to_scalar(const cpu<Arch>&,
                                                  const causal_conv_step_args<Act>&) noexcept {
  return !detail::cpu_storage_type<Act>;
}

template <class Arch, class Act>
[[nodiscard]] status causal_conv_step(const cpu<Arch>& be,
                                      const causal_conv_step_args<Act>& a) noexcept {
  RODIMUS_TRY(causal_conv_step_check(a));
  if constexpr (!detail::cpu_storage_type<Act>) {
    return causal_conv_step(scalar{}, a);
  } else {
    RODIMUS_TRY(causal_conv_step_check_slots(a)); // before anything is written
    const index_t B = a.x.shape[0], C = a.x.shape[1], W = a.weight.shape[1];
    constexpr index_t CB = detail::kConvBlock;
    const index_t blocks = (C + CB - 1) / CB;
    // A decode step is a few microseconds per row: threads only for >= 64 KiB of state each.
    const index_t grain = std::max<index_t>(1, 65536 / (CB * W * index_t(sizeof(Act))));
    parallel_for(be.pool, 0, B * blocks, grain, [&](index_t lo, index_t hi) {
      alignas(64) float acc[CB]; // (nc) the block's pre-activation outputs
      for (index_t item = lo; item < hi; ++item) {
        const index_t b = item / blocks, c0 = (item % blocks) * CB, c1 = std::min(C, c0 + CB);
        const index_t s = slot_at(a.slot, b);
        if (is_padding_slot(s)) continue; // y row and state untouched
        const index_t nc = c1 - c0;
        const bool dense = a.state.stride[2] == 1 && a.state.stride[1] == W &&
                           a.weight.stride[1] == 1 && a.weight.stride[0] == W && a.x.stride[1] == 1;
        if (dense && W == 4) {
          detail::conv_step_shift<4>(&a.state(s, c0, index_t(0)), &a.x(b, c0),
                                     &a.weight(c0, index_t(0)), acc, nc);
        } else if (dense && W == 2) {
          detail::conv_step_shift<2>(&a.state(s, c0, index_t(0)), &a.x(b, c0),
                                     &a.weight(c0, index_t(0)), acc, nc);
        } else {
          for (index_t c = c0; c < c1; ++c) {
            Act* st = &a.state(s, c, index_t(0));
            const index_t sw = a.state.stride[2];
            float t = 0.0f;
            for (index_t w = 0; w + 1 < W; ++w) {
              st[w * sw] = st[(w + 1) * sw];
              t += a.weight(c, w) * load_as<float>(st[w * sw]);
            }
            st[(W - 1) * sw] = a.x(b, c);
            acc[c - c0] = t + a.weight(c, W - 1) * load_as<float>(a.x(b, c));
          }
        }
        detail::conv_step_finish<Arch>(a, b, c0, acc, nc);
      }
    });
    return status::success();
  }
}

} // namespace rodimus
