// Gated linear attention (GLA) recurrence: the Rodimus memory (SPEC §2.4, §4).
//
//   S_0 = initial_state (or 0)                                  S: (K, V) per sequence and head, fp32
//   S_t = diag(exp(g_t)) S_{t-1} + k_t^T v_t                    decay first, then add the outer product
//   o_t = scale * (q_t S_t)                                     the current token is included
//   final_state = S_T
//
// g is the log of the per-key-channel decay (g <= 0). Three entry points compute it:
//   gla_scan     the sequential recurrence over T                              (one step per token)
//   gla_chunked  the chunked parallel form (SPEC §4.1), any chunk size; every exponent it takes is <= 0
//   gla_decode   one token for a batch whose states live in a pool, addressed by slot
//
// Types: Act stores q, v and o (f64, f32, bf16, f16); Gate stores k and g (often f32 while Act is
// 16-bit, as in the Rodimus mixer); State stores the recurrent state (f32; f64 only in reference tests).
#pragma once

#include <cstddef>
#include <cstdint>

#include "rodimus/core/backend.hpp"
#include "rodimus/core/status.hpp"
#include "rodimus/core/tensor_view.hpp"
#include "rodimus/core/workspace.hpp"

namespace rodimus {

/// Arguments of gla_scan and gla_chunked. Layout is free through strides; head-first (B, H, T, K)
/// as fla's head_first, or (B, T, H, K) by permuting strides.
template <class Act, class Gate = Act, class State = float>
struct gla_args {
  tensor_view<const Act, 4> q;   // (B, H, T, K)
  tensor_view<const Gate, 4> k;  // (B, H, T, K)
  tensor_view<const Act, 4> v;   // (B, H, T, V)
  tensor_view<const Gate, 4> g;  // (B, H, T, K) log-decay, <= 0
  tensor_view<Act, 4> o;         // (B, H, T, V) written
  /// (N, H, K, V), N = number of sequences; data == nullptr means a zero initial state.
  tensor_view<const State, 4> initial_state;
  /// (N, H, K, V); data == nullptr means the final state is not written.
  tensor_view<State, 4> final_state;
  float scale = 1.0f;
  /// Packed variable-length batch (as flash-linear-attention's cu_seqlens): nullptr, or N+1
  /// non-decreasing offsets into T with cu_seqlens[0] = 0 and cu_seqlens[N] = T; B must then be 1.
  /// Without it N = B.
  const std::int64_t* cu_seqlens = nullptr;
  std::int64_t num_seqs = 0;  // N when cu_seqlens is given
};

/// Arguments of gla_decode: one token per batch row, states updated in place in a pool.
template <class Act, class Gate = Act, class State = float>
struct gla_decode_args {
  tensor_view<const Act, 3> q;   // (B, H, K)
  tensor_view<const Gate, 3> k;  // (B, H, K)
  tensor_view<const Act, 3> v;   // (B, H, V)
  tensor_view<const Gate, 3> g;  // (B, H, K) log-decay, <= 0
  tensor_view<Act, 3> o;         // (B, H, V) written; rows of padding slots are set to 0
  tensor_view<State, 4> state;   // (P, H, K, V) the pool, updated in place
  /// (B): row b uses state[slot[b]]; a negative slot is padding: its state is untouched.
  /// nullptr means slot[b] = b.
  const std::int32_t* slot = nullptr;
  float scale = 1.0f;
};

/// Chunk sizes gla_chunked supports (the scalar reference takes any size >= 1).
constexpr bool gla_chunk_size_supported(int chunk) noexcept {
  return chunk == 16 || chunk == 32 || chunk == 64 || chunk == 128;
}

}  // namespace rodimus
