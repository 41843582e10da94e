// Scalar reference of the depthwise causal conv: plain loops, double accumulation, y rounded once.
#pragma once

#include "rodimus/core/dtype.hpp"
#include "rodimus/primitives/causal_conv.hpp"
#include "rodimus/primitives/elementwise.hpp"

namespace rodimus {

template <class Act>
[[nodiscard]] status causal_conv(const scalar&, const causal_conv_args<Act>& a) noexcept {
  RODIMUS_TRY(causal_conv_check(a));
  const index_t B = a.x.shape[0], T = a.x.shape[1], C = a.x.shape[2], W = a.weight.shape[1];
  RODIMUS_TRY(check_packed_offsets(a.cu_seqlens, a.num_seqs, T));
  const index_t N = sequence_count(a.cu_seqlens, a.num_seqs, B);
  RODIMUS_TRY(causal_conv_check_slots(a, N));
  for (index_t n = 0; n < N; ++n) {
    const index_t s = slot_at(a.slot, n);
    if (is_padding_slot(s)) continue; // y rows and states untouched
    const sequence_range r = sequence_at(a.cu_seqlens, n, T);
    const index_t L = r.length();
    for (index_t c = 0; c < C; ++c) {
      // x at sequence-local time tau (tau < 0: the initial state, or zero).
      auto input = [&](index_t tau) -> Act {
        if (tau >= 0) return a.x(r.batch, r.begin + tau, c);
        if (a.initial_state.data) return a.initial_state(s, c, W + tau);
        return store_as<Act>(0.0);
      };
      for (index_t t = 0; t < L; ++t) {
        double acc = a.bias.data ? double(a.bias(c)) : 0.0;
        for (index_t w = 0; w < W; ++w)
          acc += double(a.weight(c, w)) * load_as<double>(input(t - (W - 1) + w));
        a.y(r.batch, r.begin + t, c) = store_as<Act>(a.silu ? silu(acc) : acc);
      }
      // Ascending w reads index L + w >= w of an aliased initial state: never one already written.
      if (a.final_state.data)
        for (index_t w = 0; w < W; ++w)
          a.final_state(s, c, w) = input(L - W + w);
    }
  }
  return status::success();
}

template <class Act>
[[nodiscard]] status causal_conv_step(const scalar&, const causal_conv_step_args<Act>& a) noexcept {
  RODIMUS_TRY(causal_conv_step_check(a));
  RODIMUS_TRY(causal_conv_step_check_slots(a)); // before anything is written
  const index_t B = a.x.shape[0], C = a.x.shape[1], W = a.weight.shape[1];
  for (index_t b = 0; b < B; ++b) {
    const index_t s = slot_at(a.slot, b);
    if (is_padding_slot(s)) continue; // y row and state untouched
    for (index_t c = 0; c < C; ++c) {
      for (index_t w = 0; w + 1 < W; ++w)
        a.state(s, c, w) = a.state(s, c, w + 1);
      a.state(s, c, W - 1) = a.x(b, c);
      double acc = a.bias.data ? double(a.bias(c)) : 0.0;
      for (index_t w = 0; w < W; ++w)
        acc += double(a.weight(c, w)) * load_as<double>(a.state(s, c, w));
      a.y(b, c) = store_as<Act>(a.silu ? silu(acc) : acc);
    }
  }
  return status::success();
}

} // namespace rodimus
