// Depthwise causal conv1d with bias and optional SiLU: the Rodimus ShortConv (docs/MODEL.md §2.3
// step 3, §6.1). Per channel c, with kernel width W (d_conv = 4 in every release):
//
//   y_t[c] = act( bias[c] + sum_{w=0..W-1} weight[c][w] * x_{t-(W-1)+w}[c] )
//   act    = silu, or the identity when silu == false
//
// weight[c][W-1] multiplies the current token (PyTorch Conv1d cross-correlation with left padding
// W-1, as causal_conv1d_fn). Inputs before the sequence start come from the initial state:
// x_{-i} = initial_state[c][W-i] for i = 1..W (zeros without one). The state of a sequence is the
// last W inputs INCLUDING the current token, oldest first, left-padded with the initial state (or
// zeros) when the sequence is shorter than W: final_state[c][w] = x_{L-W+w}. Its width is the
// kernel width, so the oldest entry is not used by the next token's conv.
//
//   causal_conv       whole sequences (a batch or a packed varlen batch), optional initial and
//                     final state
//   causal_conv_step  one token per batch row, states in a pool, updated in place:
//                       state <- shift_left(state); state[:, W-1] = x
//                       y = act(bias + sum_w weight * state)
//
// Types: x, y and the states are Act (f64, f32, bf16, f16); weight and bias are f32. The scalar
// reference accumulates in double and rounds y once to Act; other backends compute in f32.
// y must not overlap x (later tokens read earlier inputs); final_state may alias initial_state.
#pragma once

#include <cstdint>

#include "rodimus/core/backend.hpp"
#include "rodimus/core/status.hpp"
#include "rodimus/core/tensor_view.hpp"
#include "rodimus/primitives/packed_sequences.hpp"
#include "rodimus/primitives/slots.hpp"

namespace rodimus {

template <class Act> struct causal_conv_args {
  tensor_view<const Act, 3> x;        // (B, T, C)
  tensor_view<const float, 2> weight; // (C, W)
  tensor_view<const float, 1> bias;   // (C); data == nullptr: no bias
  tensor_view<Act, 3> y;              // (B, T, C) written
  /// (N, C, W) the last W inputs before this call, oldest first; data == nullptr: zeros.
  tensor_view<const Act, 3> initial_state;
  /// (N, C, W) the last W inputs including the final token; data == nullptr: not written.
  /// May alias initial_state exactly (same pointer and strides): an in-place state update.
  tensor_view<Act, 3> final_state;
  bool silu = true;
  const std::int64_t* cu_seqlens = nullptr; // packed varlen, B == 1
  std::int64_t num_seqs = 0;
  /// (N) row of sequence n in initial_state / final_state (pools of P rows); nullptr: n. -1 is a
  /// padding sequence: skipped, its y rows and the pools untouched. Others in [0, P) of each pool
  /// given, distinct when final_state is written (primitives/slots.hpp).
  const std::int32_t* slot = nullptr;
};

template <class Act> struct causal_conv_step_args {
  tensor_view<const Act, 2> x;        // (B, C) the new token
  tensor_view<const float, 2> weight; // (C, W)
  tensor_view<const float, 1> bias;   // (C); data == nullptr: no bias
  tensor_view<Act, 3> state;          // (P, C, W) pool, updated in place
  /// (B) row b uses state[slot[b]]; -1 = padding (y row and state untouched); nullptr: b. Others
  /// in [0, P) and distinct (primitives/slots.hpp).
  const std::int32_t* slot = nullptr;
  tensor_view<Act, 2> y; // (B, C) written
  bool silu = true;
};

namespace detail {
inline status causal_conv_check_weights(const tensor_view<const float, 2>& weight,
                                        const tensor_view<const float, 1>& bias,
                                        index_t C) noexcept {
  RODIMUS_REQUIRE(weight.data || weight.numel() == 0, null_pointer, "weight");
  RODIMUS_REQUIRE(weight.shape[0] == C && weight.shape[1] > 0, bad_shape, "weight");
  RODIMUS_REQUIRE(!bias.data || bias.shape[0] == C, bad_shape, "bias");
  return status::success();
}
} // namespace detail

/// Validation shared by every backend (does not read cu_seqlens or slot).
template <class Act>
[[nodiscard]] status causal_conv_check(const causal_conv_args<Act>& a) noexcept {
  RODIMUS_REQUIRE(a.x.data || a.x.numel() == 0, null_pointer, "x");
  RODIMUS_REQUIRE(a.y.data || a.y.numel() == 0, null_pointer, "y");
  RODIMUS_REQUIRE(a.x.shape[0] >= 0 && a.x.shape[1] >= 0 && a.x.shape[2] >= 0, bad_shape, "x");
  const index_t B = a.x.shape[0], T = a.x.shape[1], C = a.x.shape[2];
  RODIMUS_TRY(detail::causal_conv_check_weights(a.weight, a.bias, C));
  const index_t W = a.weight.shape[1];
  RODIMUS_REQUIRE(has_shape(a.y, {B, T, C}), bad_shape, "y");
  RODIMUS_TRY(check_packed_shape(a.cu_seqlens, a.num_seqs, B));
  const index_t N = sequence_count(a.cu_seqlens, a.num_seqs, B);
  if (a.initial_state.data) {
    const index_t P = a.initial_state.shape[0];
    RODIMUS_REQUIRE(P >= 0 && a.initial_state.shape[1] == C && a.initial_state.shape[2] == W,
                    bad_shape, "initial_state");
    RODIMUS_REQUIRE(a.slot || P >= N, bad_shape, "initial_state");
  }
  if (a.final_state.data) {
    const index_t P = a.final_state.shape[0];
    RODIMUS_REQUIRE(P >= 0 && a.final_state.shape[1] == C && a.final_state.shape[2] == W, bad_shape,
                    "final_state");
    RODIMUS_REQUIRE(a.slot || P >= N, bad_shape, "final_state");
  }
  return status::success();
}

/// Validation shared by every backend (does not read slot).
template <class Act>
[[nodiscard]] status causal_conv_step_check(const causal_conv_step_args<Act>& a) noexcept {
  RODIMUS_REQUIRE(a.x.data || a.x.numel() == 0, null_pointer, "x");
  RODIMUS_REQUIRE(a.y.data || a.y.numel() == 0, null_pointer, "y");
  RODIMUS_REQUIRE(a.state.data || a.state.numel() == 0, null_pointer, "state");
  RODIMUS_REQUIRE(a.x.shape[0] >= 0 && a.x.shape[1] >= 0, bad_shape, "x");
  const index_t B = a.x.shape[0], C = a.x.shape[1];
  RODIMUS_TRY(detail::causal_conv_check_weights(a.weight, a.bias, C));
  const index_t W = a.weight.shape[1];
  RODIMUS_REQUIRE(has_shape(a.y, {B, C}), bad_shape, "y");
  const index_t P = a.state.shape[0];
  RODIMUS_REQUIRE(P >= 0 && a.state.shape[1] == C && a.state.shape[2] == W, bad_shape, "state");
  RODIMUS_REQUIRE(a.slot || B <= P, bad_shape, "slot");
  return status::success();
}

/// Host-side check of slot (every backend whose index arrays are in host memory;
/// primitives/slots.hpp): each slot -1 or inside the pools it addresses; no two sequences writing
/// one final state (the second would read the first's result where the update is in place, and
/// one result would be lost either way). `N` is the number of sequences.
template <class Act>
[[nodiscard]] status causal_conv_check_slots(const causal_conv_args<Act>& a, index_t N) noexcept {
  const index_t Pi = pool_rows(a.initial_state), Pf = pool_rows(a.final_state);
  return check_slots(a.slot, N, Pi < Pf ? Pi : Pf, a.final_state.data != nullptr, "slot");
}

/// Host-side check of the step's slot (every backend whose index arrays are in host memory;
/// primitives/slots.hpp): each slot -1 or < P, and no two rows on one state (it would be shifted
/// twice). CUDA cannot read the slots: it skips rows whose slot is outside the pool.
template <class Act>
[[nodiscard]] status causal_conv_step_check_slots(const causal_conv_step_args<Act>& a) noexcept {
  return check_slots(a.slot, a.x.shape[0], a.state.shape[0], true, "slot");
}

} // namespace rodimus
