// Gated linear attention (GLA) recurrence: the Rodimus memory (docs/MODEL.md §2.4, §4).
//
//   S_0 = initial_state (or 0)                   S: (K, V) per sequence and head, fp32
//   S_t = diag(exp(g_t)) S_{t-1} + k_t^T v_t     decay first, then add the outer product
//   o_t = scale * (q_t S_t)                      the current token is included
//   final_state = S_T
//
// g is the log of the per-key-channel decay (g <= 0). Three entry points compute it:
//   gla_scan     the sequential recurrence over T (one step per token)
//   gla_chunked  the chunked parallel form (docs/MODEL.md §4.1), any chunk size; every exponent it
//                takes is <= 0
//   gla_decode   one token for a batch whose states live in a pool, addressed by slot
//
// Chunked form, chunk c of length L covering positions t0 .. t0+L-1 of one sequence
// (docs/MODEL.md §4.1):
//   G_i   = sum_{s=t0}^{t0+i} g_s (local inclusive cumsum),  Gamma = G_{L-1}
//   A_ij  = sum_n q_i[n] k_j[n] exp(G_i[n] - G_j[n])            j <= i only
//   o_i   = scale * ( (q_i * exp(G_i)) S_in + sum_{j<=i} A_ij v_j )
//   S_out = diag(exp(Gamma)) S_in + sum_j (k_j * exp(Gamma - G_j))^T v_j
// Entries j > i are never evaluated (masked by selection, never by multiplying: exp of a positive
// exponent could be inf, and inf * 0 = NaN). Chunks restart at every sequence start.
//
// Types: Act stores q, v and o (f64, f32, bf16, f16); Gate stores k and g (often f32 while Act is
// 16-bit, as in the Rodimus mixer); State stores the recurrent state (f32; f64 only in reference
// tests). o must not overlap q, k, v or g.
//
// States of gla_scan / gla_chunked: without slot, sequence n starts from initial_state[n]
// and ends in final_state[n]. With slot, both are pools (P, H, K, V) (each its own P) and
// sequence n uses row slot[n] of each, so a runner passes its state pool directly, with no
// gather or scatter around the call; slot[n] = -1 marks a padding sequence, which is skipped
// (its o rows and the pools untouched: primitives/slots.hpp). final_state may alias initial_state
// exactly (the same data and strides: the pool updated in place; every sequence reads its state
// before writing it, and distinct sequences use distinct rows); no other overlap is allowed.
//
// Validation (shared by every backend): gla_check / gla_chunked_check / gla_decode_check return a
// failed status naming the argument ("q", "k", "v", "g", "o", "initial_state", "final_state",
// "cu_seqlens", "num_seqs", "scale", "chunk_size", "state", "slot"). K and V must be >= 1; B, H,
// T and the pool size P may be 0. The *_shapes variants never read through cu_seqlens or slot
// (for backends whose index arrays live in device memory); the full checks read
// them on the host.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "rodimus/core/backend.hpp"
#include "rodimus/core/status.hpp"
#include "rodimus/core/tensor_view.hpp"
#include "rodimus/core/workspace.hpp"
#include "rodimus/primitives/packed_sequences.hpp"
#include "rodimus/primitives/slots.hpp"

namespace rodimus {

/// Arguments of gla_scan and gla_chunked. Layout is free through strides; head-first (B, H, T, K)
/// as fla's head_first, or (B, T, H, K) by permuting strides.
template <class Act, class Gate = Act, class State = float> struct gla_args {
  tensor_view<const Act, 4> q;  // (B, H, T, K)
  tensor_view<const Gate, 4> k; // (B, H, T, K)
  tensor_view<const Act, 4> v;  // (B, H, T, V)
  tensor_view<const Gate, 4> g; // (B, H, T, K) log-decay, <= 0
  tensor_view<Act, 4> o;        // (B, H, T, V) written
  /// (N, H, K, V), N = number of sequences, or a pool (P, H, K, V) with slot; data ==
  /// nullptr means a zero initial state.
  tensor_view<const State, 4> initial_state;
  /// (N, H, K, V), or a pool (P, H, K, V) with slot (it may alias initial_state exactly:
  /// the pool is updated in place); data == nullptr means the final state is not written.
  tensor_view<State, 4> final_state;
  float scale = 1.0f;
  /// Packed variable-length batch (as flash-linear-attention's cu_seqlens): nullptr, or N+1
  /// non-decreasing offsets into T with cu_seqlens[0] = 0 and cu_seqlens[N] = T; B must then be 1.
  /// Without it N = B (num_seqs must then be 0 or B).
  const std::int64_t* cu_seqlens = nullptr;
  std::int64_t num_seqs = 0; // N when cu_seqlens is given
  /// (N) or nullptr (sequence n uses state row n). Sequence n reads initial_state[slot[n]]
  /// and writes final_state[slot[n]]; initial_state and final_state are then pools
  /// (P, H, K, V). -1 marks a padding sequence: it is skipped, its o rows and every state left as
  /// they are. Other slots must be in [0, P) of each pool given and, when final_state is written,
  /// distinct: host backends return bad_argument "slot", CUDA skips such a sequence
  /// (primitives/slots.hpp).
  const std::int32_t* slot = nullptr;
};

/// Arguments of gla_decode: one token per batch row, states updated in place in a pool.
template <class Act, class Gate = Act, class State = float> struct gla_decode_args {
  tensor_view<const Act, 3> q;  // (B, H, K)
  tensor_view<const Gate, 3> k; // (B, H, K)
  tensor_view<const Act, 3> v;  // (B, H, V)
  tensor_view<const Gate, 3> g; // (B, H, K) log-decay, <= 0
  tensor_view<Act, 3> o;        // (B, H, V) written; rows of padding slots are left as they are
  tensor_view<State, 4> state;  // (P, H, K, V) the pool, updated in place
  /// (B): row b uses state[slot[b]]; -1 is padding (o row and state untouched). nullptr means
  /// slot[b] = b (P >= B). Other slots must be in [0, P) and distinct (primitives/slots.hpp).
  const std::int32_t* slot = nullptr;
  float scale = 1.0f;
};

/// Chunk sizes gla_chunked supports (the scalar reference takes any size >= 1).
constexpr bool gla_chunk_size_supported(int chunk) noexcept {
  return chunk == 16 || chunk == 32 || chunk == 64 || chunk == 128;
}

namespace detail {
template <class T, int R> inline bool gla_sizes_nonnegative(const tensor_view<T, R>& t) noexcept {
  for (int d = 0; d < R; ++d)
    if (t.shape[d] < 0) return false;
  return true;
}
template <class T, int R> inline bool gla_pointer_ok(const tensor_view<T, R>& t) noexcept {
  return t.data != nullptr || t.numel() == 0;
}
/// The null-pointer checks of q, k, v, g and o, shared by gla_args and gla_decode_args (shapes
/// must have been checked first, so numel() is of non-negative sizes).
template <class Args> inline status gla_check_pointers(const Args& a) noexcept {
  RODIMUS_REQUIRE(gla_pointer_ok(a.q), null_pointer, "q");
  RODIMUS_REQUIRE(gla_pointer_ok(a.k), null_pointer, "k");
  RODIMUS_REQUIRE(gla_pointer_ok(a.v), null_pointer, "v");
  RODIMUS_REQUIRE(gla_pointer_ok(a.g), null_pointer, "g");
  RODIMUS_REQUIRE(gla_pointer_ok(a.o), null_pointer, "o");
  return status::success();
}
} // namespace detail

/// The number of sequences N (B, or num_seqs when packed). Valid after gla_check_shapes succeeded.
template <class Act, class Gate, class State>
inline index_t gla_num_seqs(const gla_args<Act, Gate, State>& a) noexcept {
  return a.cu_seqlens ? index_t(a.num_seqs) : a.q.shape[0];
}

/// Shape and pointer validation; never reads through cu_seqlens.
template <class Act, class Gate, class State>
[[nodiscard]] status gla_check_shapes(const gla_args<Act, Gate, State>& a) noexcept {
  RODIMUS_REQUIRE(detail::gla_sizes_nonnegative(a.q), bad_shape, "q");
  const index_t B = a.q.shape[0], H = a.q.shape[1], T = a.q.shape[2], K = a.q.shape[3];
  RODIMUS_REQUIRE(K >= 1, bad_shape, "q");
  RODIMUS_REQUIRE(has_shape(a.k, {B, H, T, K}), bad_shape, "k");
  RODIMUS_REQUIRE(has_shape(a.g, {B, H, T, K}), bad_shape, "g");
  const index_t V = a.v.shape[3];
  RODIMUS_REQUIRE(V >= 1 && has_shape(a.v, {B, H, T, V}), bad_shape, "v");
  RODIMUS_REQUIRE(has_shape(a.o, {B, H, T, V}), bad_shape, "o");
  RODIMUS_TRY(detail::gla_check_pointers(a));
  RODIMUS_REQUIRE(std::isfinite(a.scale), bad_argument, "scale");
  // Packed sequences share batch row 0; without cu_seqlens num_seqs is 0 or B.
  RODIMUS_TRY(check_packed_shape(a.cu_seqlens, a.num_seqs, B));
  if (!a.cu_seqlens) RODIMUS_REQUIRE(a.num_seqs == 0 || a.num_seqs == B, bad_shape, "num_seqs");
  // States: N rows, or pools of any size P >= 0 addressed through slot.
  const index_t N = gla_num_seqs(a);
  if (a.initial_state.data) {
    const index_t P = a.slot ? a.initial_state.shape[0] : N;
    RODIMUS_REQUIRE(P >= 0 && has_shape(a.initial_state, {P, H, K, V}), bad_shape, "initial_state");
  }
  if (a.final_state.data) {
    const index_t P = a.slot ? a.final_state.shape[0] : N;
    RODIMUS_REQUIRE(P >= 0 && has_shape(a.final_state, {P, H, K, V}), bad_shape, "final_state");
  }
  return status::success();
}

/// The state row of sequence n: slot[n], or n without slot (host-readable slots).
template <class Act, class Gate, class State>
inline index_t gla_state_row(const gla_args<Act, Gate, State>& a, index_t n) noexcept {
  return slot_at(a.slot, n);
}

/// Host-side check of slot (primitives/slots.hpp): every slot -1 (padding) or inside each
/// pool given; no two sequences writing one final state (the second would read the first's result
/// where the update is in place, and one result would be lost either way).
template <class Act, class Gate, class State>
[[nodiscard]] status gla_check_slots(const gla_args<Act, Gate, State>& a) noexcept {
  const index_t Pi = pool_rows(a.initial_state), Pf = pool_rows(a.final_state);
  return check_slots(a.slot, gla_num_seqs(a), Pi < Pf ? Pi : Pf, a.final_state.data != nullptr,
                     "slot");
}

/// Full validation of gla_scan / gla_chunked arguments: shapes, then the cu_seqlens offsets and
/// the state slots (host).
template <class Act, class Gate, class State>
[[nodiscard]] status gla_check(const gla_args<Act, Gate, State>& a) noexcept {
  RODIMUS_TRY(gla_check_shapes(a));
  RODIMUS_TRY(check_packed_offsets(a.cu_seqlens, a.num_seqs, a.q.shape[2]));
  return gla_check_slots(a);
}

/// The chunk size (>= 1) and gla_check_shapes: the checks of gla_chunked that read no index array.
template <class Act, class Gate, class State>
[[nodiscard]] status gla_chunked_check_shapes(const gla_args<Act, Gate, State>& a,
                                              int chunk_size) noexcept {
  RODIMUS_REQUIRE(chunk_size >= 1, bad_argument, "chunk_size");
  return gla_check_shapes(a);
}

/// gla_check plus the chunk size (>= 1; backends other than scalar also require
/// gla_chunk_size_supported and return status_code::unsupported otherwise).
template <class Act, class Gate, class State>
[[nodiscard]] status gla_chunked_check(const gla_args<Act, Gate, State>& a,
                                       int chunk_size) noexcept {
  RODIMUS_REQUIRE(chunk_size >= 1, bad_argument, "chunk_size");
  return gla_check(a);
}

/// Shape and pointer validation of gla_decode arguments; never reads through slot.
template <class Act, class Gate, class State>
[[nodiscard]] status gla_decode_check_shapes(const gla_decode_args<Act, Gate, State>& a) noexcept {
  RODIMUS_REQUIRE(detail::gla_sizes_nonnegative(a.q), bad_shape, "q");
  const index_t B = a.q.shape[0], H = a.q.shape[1], K = a.q.shape[2];
  RODIMUS_REQUIRE(K >= 1, bad_shape, "q");
  RODIMUS_REQUIRE(has_shape(a.k, {B, H, K}), bad_shape, "k");
  RODIMUS_REQUIRE(has_shape(a.g, {B, H, K}), bad_shape, "g");
  const index_t V = a.v.shape[2];
  RODIMUS_REQUIRE(V >= 1 && has_shape(a.v, {B, H, V}), bad_shape, "v");
  RODIMUS_REQUIRE(has_shape(a.o, {B, H, V}), bad_shape, "o");
  const index_t P = a.state.shape[0];
  RODIMUS_REQUIRE(P >= 0 && has_shape(a.state, {P, H, K, V}), bad_shape, "state");
  if (!a.slot) RODIMUS_REQUIRE(P >= B, bad_shape, "state"); // slot[b] = b
  RODIMUS_TRY(detail::gla_check_pointers(a));
  RODIMUS_REQUIRE(detail::gla_pointer_ok(a.state), null_pointer, "state");
  RODIMUS_REQUIRE(std::isfinite(a.scale), bad_argument, "scale");
  return status::success();
}

/// Full validation of gla_decode arguments: shapes, then every slot (host): -1 or in [0, P), and
/// no two rows on one state (each state is updated by at most one row).
template <class Act, class Gate, class State>
[[nodiscard]] status gla_decode_check(const gla_decode_args<Act, Gate, State>& a) noexcept {
  RODIMUS_TRY(gla_decode_check_shapes(a));
  return check_slots(a.slot, a.q.shape[0], a.state.shape[0], true, "slot");
}

} // namespace rodimus
