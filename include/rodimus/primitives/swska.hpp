// Shared-key sliding-window attention (SW-SKA, docs/MODEL.md §5): causal softmax attention with a
// left window where few key heads (one in every release) serve all query heads.
//
//   query i at absolute position p_i attends the keys at absolute positions
//     j in [max(0, p_i - window_left), p_i]        (window_left = -1: [0, p_i], unbounded causal)
//   s_ij   = scale * <q_i[h], k_j[h % Hk]>         (scale = 0 means D^-0.5)
//   o_i[h] = sum_j softmax_j(s_ij) v_j[h % Hv]     (scalar: softmax in double, max subtracted)
//
// Query head h reads key head h % Hk and value head h % Hv (heads are tiled, not interleaved); Hq
// must be divisible by Hk and by Hv. A model's window_left is attn_cfg.window_size // 2
// (docs/MODEL.md §5.3): every token sees itself and window_left earlier tokens, window_left + 1
// keys, in prefill and decode alike.
//
// Entry points (scalar reference in backend/scalar/swska.hpp):
//   swska_prefill     a batch (or a packed varlen batch) of whole sequences, optionally continuing
//                     after earlier tokens whose keys/values sit in a ring (`history_*`)
//   swska_decode      one token per batch row; the new k/v is written into the row's ring slot;
//                     optionally applies RoPE to q and k itself (rotary_dim > 0, below)
//   swska_ring_store  after a prefill, copies each sequence's last W keys/values into its ring
//
// The ring ("window cache") of a sequence is W slots, (W, Hk, D) keys and (W, Hv, D) values; the
// token at absolute position p lives in slot p % W. Rings of many sequences form a pool
// (P, W, H, D) addressed by slot index. Bounded windows need W >= window_left + 1 (decode;
// W = window_left + 1 is the minimum); unbounded attention (window_left = -1) needs W > every
// position stored (W = capacity). Keys are stored already rotated (RoPE is applied before caching,
// docs/MODEL.md §5.2).
//
// RoPE inside the decode step (swska_decode_args::rotary_dim > 0): q and k are then the UNROTATED
// projections, and the step is defined as the rotary primitive (primitives/rotary.hpp: NeoX
// rotate-half over the first rotary_dim channels, base rotary_base) applied to copies of q and k
// at each row's absolute position position[b], followed by the step with rotary_dim = 0: the
// rotated key (rounded to Act, as rotary stores it) is the row's own key and is what goes into
// the ring, so the ring holds rotated keys exactly as when the caller rotates. rotary_dim = 0 (the
// default): q and k are already rotated. k must not alias ring_k (nor q, k or v the rings).
//
// Prefill then decode: swska_prefill(x), swska_ring_store(x's k, v) and then swska_decode per token
// equals one swska_prefill over the whole sequence. A chunked prefill passes the ring as history:
// call swska_prefill first (it reads the ring) and swska_ring_store after (it overwrites slots).
//
// Types: Act (f64, f32, bf16, f16) stores q, k, v, o and the rings; the scalar reference computes
// in double; other backends in f32. o must not alias q, k or v.
//
// Checks come in two kinds. swska_check, swska_decode_check and swska_ring_store_check look at
// shapes, pointers and scalars only (never through cu_seqlens, slots or positions), so every
// backend runs them, the CUDA one included (its index arrays are device memory), and every such
// error gives the same status everywhere. check_packed_offsets, swska_check_history,
// swska_decode_check_slots and swska_ring_store_check_slots read the index arrays' contents; the
// host backends run them too. The CUDA backend cannot: it never reads or writes out of bounds for
// any contents, and treats out-of-range slots and positions as rows to skip
// (backend/cuda/swska.cuh). Slots follow primitives/slots.hpp: -1 is a padding row or sequence,
// skipped by every backend (its outputs and the rings untouched); other slots outside the pool are
// bad_argument on host backends.
#pragma once

#include <algorithm>
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

/// Arguments of swska_prefill.
template <class Act> struct swska_args {
  tensor_view<const Act, 4> q; // (B, T, Hq, D)
  tensor_view<const Act, 4> k; // (B, T, Hk, D)
  tensor_view<const Act, 4> v; // (B, T, Hv, D)
  tensor_view<Act, 4> o;       // (B, T, Hq, D) written
  int window_left = -1;        // -1: unbounded causal; else query p sees keys p - window_left .. p
  float scale = 0.0f;          // 0 means D^-0.5
  /// Packed variable-length batch (packed_sequences.hpp): nullptr or N+1 offsets; B must then be 1.
  const std::int64_t* cu_seqlens = nullptr;
  std::int64_t num_seqs = 0;
  /// Continuing after earlier tokens: the rings of earlier keys/values (same layout as decode's).
  /// history_k.data == nullptr means no history: every sequence starts at position 0.
  tensor_view<const Act, 4> history_k; // (P, W, Hk, D) ring pool
  tensor_view<const Act, 4> history_v; // (P, W, Hv, D)
  /// (N) pool slot of each sequence; nullptr: n. -1: a padding sequence, skipped (its o rows
  /// untouched) whatever its history_len.
  const std::int32_t* slot = nullptr;
  /// (N) tokens seen before this call = absolute position of the sequence's first token here.
  /// Required with history. The ring must still hold the positions in the window of that token:
  /// W >= min(history_len, window_left) (bounded) or W >= history_len (unbounded).
  const std::int64_t* history_len = nullptr;
};

/// Arguments of swska_decode: one new token per batch row, rings updated in place.
template <class Act> struct swska_decode_args {
  tensor_view<const Act, 3> q; // (B, Hq, D) rotated, or not yet when rotary_dim > 0
  tensor_view<const Act, 3> k; // (B, Hk, D) the new key, rotated, or not yet when rotary_dim > 0
  tensor_view<const Act, 3> v; // (B, Hv, D) the new value
  tensor_view<Act, 3> o;       // (B, Hq, D) written; rows of padding slots are left as they are
  tensor_view<Act, 4> ring_k;  // (P, W, Hk, D) W >= window_left + 1 (unbounded: W = capacity)
  tensor_view<Act, 4> ring_v;  // (P, W, Hv, D)
  /// (B): row b uses ring slot[b]; -1 = padding (ring and o row untouched); nullptr: b. Others
  /// in [0, P) and distinct.
  const std::int32_t* slot = nullptr;
  /// (B) tokens this sequence has seen before this one (its absolute position); required.
  /// Unbounded attention needs position < W ("position" otherwise).
  const std::int64_t* position = nullptr;
  int window_left = -1;
  float scale = 0.0f; // 0 means D^-0.5
  /// RoPE applied by the step (see the top of this file): 0 = q and k already rotated; else even,
  /// <= D, the channels rotated at position[b] with base rotary_base (finite, > 0).
  int rotary_dim = 0;
  float rotary_base = 10000.0f;
};

/// Arguments of swska_ring_store: sequence n's tokens at absolute positions
/// start_position[n] + t (t < length) are stored at ring slot (position % W); only the last W of
/// them are written (the earlier ones would be overwritten anyway).
template <class Act> struct swska_ring_store_args {
  tensor_view<const Act, 4> k;        // (B, T, Hk, D)
  tensor_view<const Act, 4> v;        // (B, T, Hv, D)
  tensor_view<Act, 4> ring_k;         // (P, W, Hk, D)
  tensor_view<Act, 4> ring_v;         // (P, W, Hv, D)
  const std::int32_t* slot = nullptr; // (N) ring of each sequence; -1: skipped; nullptr: n
  const std::int64_t* start_position = nullptr; // (N) absolute position of token 0; nullptr: 0
  const std::int64_t* cu_seqlens = nullptr;     // packed varlen, B == 1
  std::int64_t num_seqs = 0;
};

namespace detail {

template <class T, int R> constexpr bool swska_view_ok(const tensor_view<T, R>& v) noexcept {
  for (int d = 0; d < R; ++d)
    if (v.shape[d] < 0) return false;
  return true;
}

inline bool swska_scale_ok(float s) noexcept { return std::isfinite(s); }

/// The null-pointer checks of q, k, v and o, shared by swska_args and swska_decode_args.
template <class Args> inline status swska_check_qkvo_pointers(const Args& a) noexcept {
  RODIMUS_REQUIRE(a.q.data || a.q.numel() == 0, null_pointer, "q");
  RODIMUS_REQUIRE(a.k.data || a.k.numel() == 0, null_pointer, "k");
  RODIMUS_REQUIRE(a.v.data || a.v.numel() == 0, null_pointer, "v");
  RODIMUS_REQUIRE(a.o.data || a.o.numel() == 0, null_pointer, "o");
  return status::success();
}

/// Head tiling (query head h reads key head h % Hk and value head h % Hv), the window and the
/// scale, shared by prefill and decode. Hk, Hv > 0 must have been checked.
inline status swska_check_heads_window_scale(index_t Hq, index_t Hk, index_t Hv, int window_left,
                                             float scale) noexcept {
  RODIMUS_REQUIRE(Hq % Hk == 0, bad_shape, "k");
  RODIMUS_REQUIRE(Hq % Hv == 0, bad_shape, "v");
  RODIMUS_REQUIRE(window_left >= -1, bad_argument, "window_left");
  RODIMUS_REQUIRE(swska_scale_ok(scale), bad_argument, "scale");
  return status::success();
}

/// A pair of ring pools (P, W, Hk, D) keys and (P, W, Hv, D) values with P >= min_pools, W >= 1;
/// a mismatch names the key ring (`k_name`) or the value ring (`v_name`).
template <class K, class V>
inline status swska_check_rings(const tensor_view<K, 4>& ring_k, const tensor_view<V, 4>& ring_v,
                                index_t min_pools, index_t Hk, index_t Hv, index_t D,
                                const char* k_name, const char* v_name) noexcept {
  const index_t P = ring_k.shape[0], W = ring_k.shape[1];
  RODIMUS_REQUIRE(P >= min_pools && W > 0 && ring_k.shape[2] == Hk && ring_k.shape[3] == D,
                  bad_shape, k_name);
  RODIMUS_REQUIRE(has_shape(ring_v, {P, W, Hv, D}), bad_shape, v_name);
  return status::success();
}

} // namespace detail

/// Validation of swska_prefill shared by every backend. It does not read cu_seqlens, slot
/// or history_len (they may live on a device); host backends check those too
/// (check_packed_offsets, swska_check_history).
template <class Act> [[nodiscard]] status swska_check(const swska_args<Act>& a) noexcept {
  RODIMUS_TRY(detail::swska_check_qkvo_pointers(a));
  RODIMUS_REQUIRE(detail::swska_view_ok(a.q) && a.q.shape[2] > 0 && a.q.shape[3] > 0, bad_shape,
                  "q");
  const index_t B = a.q.shape[0], T = a.q.shape[1], Hq = a.q.shape[2], D = a.q.shape[3];
  const index_t Hk = a.k.shape[2], Hv = a.v.shape[2];
  RODIMUS_REQUIRE(a.k.shape[0] == B && a.k.shape[1] == T && Hk > 0 && a.k.shape[3] == D, bad_shape,
                  "k");
  RODIMUS_REQUIRE(a.v.shape[0] == B && a.v.shape[1] == T && Hv > 0 && a.v.shape[3] == D, bad_shape,
                  "v");
  RODIMUS_REQUIRE(has_shape(a.o, {B, T, Hq, D}), bad_shape, "o");
  RODIMUS_TRY(detail::swska_check_heads_window_scale(Hq, Hk, Hv, a.window_left, a.scale));
  RODIMUS_TRY(check_packed_shape(a.cu_seqlens, a.num_seqs, B));
  if (a.history_k.data) {
    RODIMUS_REQUIRE(a.history_v.data, null_pointer, "history_v");
    RODIMUS_REQUIRE(a.history_len, null_pointer, "history_len");
    RODIMUS_TRY(detail::swska_check_rings(a.history_k, a.history_v, 1, Hk, Hv, D, "history_k",
                                          "history_v"));
    if (!a.slot)
      RODIMUS_REQUIRE(sequence_count(a.cu_seqlens, a.num_seqs, B) <= a.history_k.shape[0],
                      bad_shape, "slot");
  }
  return status::success();
}

/// Host-side check of history_len and slot (every backend whose index arrays are in host
/// memory), after swska_check and check_packed_offsets, before anything is written: every
/// slot -1 (padding) or inside the pool (primitives/slots.hpp). For each of the `N`
/// sequences that is not padding: history_len >= 0; a sequence with history needs the rings
/// (history_k) and a ring that still holds its window (W >= min(history_len, window_left),
/// unbounded: W >= history_len). Sequences with history_len 0 read no ring.
template <class Act>
[[nodiscard]] status swska_check_history(const swska_args<Act>& a, index_t N) noexcept {
  RODIMUS_TRY(check_slots(a.slot, N, pool_rows(a.history_k), false, "slot"));
  if (!a.history_len) return status::success();
  const bool has_history = a.history_k.data != nullptr;
  const index_t W = has_history ? a.history_k.shape[1] : 0;
  const index_t wl = a.window_left;
  for (index_t n = 0; n < N; ++n) {
    if (is_padding_slot(slot_at(a.slot, n))) continue;
    const index_t h = a.history_len[n];
    RODIMUS_REQUIRE(h >= 0, bad_argument, "history_len");
    if (h == 0) continue;
    RODIMUS_REQUIRE(has_history, null_pointer, "history_k");
    RODIMUS_REQUIRE(W >= (wl < 0 ? h : std::min(wl, h)), bad_argument, "history_len");
  }
  return status::success();
}

/// Validation of swska_decode shared by every backend (does not read slot or position; host
/// backends check those with swska_decode_check_slots).
template <class Act>
[[nodiscard]] status swska_decode_check(const swska_decode_args<Act>& a) noexcept {
  RODIMUS_TRY(detail::swska_check_qkvo_pointers(a));
  RODIMUS_REQUIRE(a.ring_k.data || a.ring_k.numel() == 0, null_pointer, "ring_k");
  RODIMUS_REQUIRE(a.ring_v.data || a.ring_v.numel() == 0, null_pointer, "ring_v");
  RODIMUS_REQUIRE(detail::swska_view_ok(a.q) && a.q.shape[1] > 0 && a.q.shape[2] > 0, bad_shape,
                  "q");
  const index_t B = a.q.shape[0], Hq = a.q.shape[1], D = a.q.shape[2];
  const index_t Hk = a.k.shape[1], Hv = a.v.shape[1];
  RODIMUS_REQUIRE(a.k.shape[0] == B && Hk > 0 && a.k.shape[2] == D, bad_shape, "k");
  RODIMUS_REQUIRE(a.v.shape[0] == B && Hv > 0 && a.v.shape[2] == D, bad_shape, "v");
  RODIMUS_REQUIRE(has_shape(a.o, {B, Hq, D}), bad_shape, "o");
  RODIMUS_TRY(detail::swska_check_heads_window_scale(Hq, Hk, Hv, a.window_left, a.scale));
  RODIMUS_REQUIRE(a.rotary_dim >= 0 && a.rotary_dim % 2 == 0 && index_t(a.rotary_dim) <= D,
                  bad_argument, "rotary_dim");
  RODIMUS_REQUIRE(std::isfinite(a.rotary_base) && a.rotary_base > 0.0f, bad_argument,
                  "rotary_base");
  RODIMUS_TRY(detail::swska_check_rings(a.ring_k, a.ring_v, 0, Hk, Hv, D, "ring_k", "ring_v"));
  const index_t P = a.ring_k.shape[0], W = a.ring_k.shape[1];
  RODIMUS_REQUIRE(a.window_left < 0 || W >= index_t(a.window_left) + 1, bad_shape, "ring_k");
  RODIMUS_REQUIRE(a.position || B == 0, null_pointer, "position");
  if (!a.slot) RODIMUS_REQUIRE(B <= P, bad_shape, "slot");
  return status::success();
}

/// Host-side check of slot and position for swska_decode (every backend whose index arrays are in
/// host memory), after swska_decode_check, before anything is written: every slot -1 (padding,
/// skipped) or inside the pool, no two rows on one ring (each would write its key into it and
/// attend the other's: primitives/slots.hpp). For each row that is not padding, the position is
/// >= 0 and, with an unbounded window, still inside the ring (position < W).
template <class Act>
[[nodiscard]] status swska_decode_check_slots(const swska_decode_args<Act>& a) noexcept {
  const index_t B = a.q.shape[0], P = a.ring_k.shape[0], W = a.ring_k.shape[1];
  RODIMUS_TRY(check_slots(a.slot, B, P, true, "slot"));
  for (index_t b = 0; b < B; ++b) {
    if (is_padding_slot(slot_at(a.slot, b))) continue;
    RODIMUS_REQUIRE(a.position[b] >= 0, bad_argument, "position");
    RODIMUS_REQUIRE(a.window_left >= 0 || a.position[b] < W, bad_argument, "position");
  }
  return status::success();
}

/// Validation of swska_ring_store shared by every backend (does not read slot, start_position or
/// cu_seqlens).
template <class Act>
[[nodiscard]] status swska_ring_store_check(const swska_ring_store_args<Act>& a) noexcept {
  RODIMUS_REQUIRE(a.k.data || a.k.numel() == 0, null_pointer, "k");
  RODIMUS_REQUIRE(a.v.data || a.v.numel() == 0, null_pointer, "v");
  RODIMUS_REQUIRE(a.ring_k.data || a.ring_k.numel() == 0, null_pointer, "ring_k");
  RODIMUS_REQUIRE(a.ring_v.data || a.ring_v.numel() == 0, null_pointer, "ring_v");
  RODIMUS_REQUIRE(detail::swska_view_ok(a.k) && a.k.shape[2] > 0 && a.k.shape[3] > 0, bad_shape,
                  "k");
  const index_t B = a.k.shape[0], T = a.k.shape[1], Hk = a.k.shape[2], D = a.k.shape[3];
  const index_t Hv = a.v.shape[2];
  RODIMUS_REQUIRE(a.v.shape[0] == B && a.v.shape[1] == T && Hv > 0 && a.v.shape[3] == D, bad_shape,
                  "v");
  RODIMUS_TRY(detail::swska_check_rings(a.ring_k, a.ring_v, 0, Hk, Hv, D, "ring_k", "ring_v"));
  RODIMUS_TRY(check_packed_shape(a.cu_seqlens, a.num_seqs, B));
  if (!a.slot)
    RODIMUS_REQUIRE(sequence_count(a.cu_seqlens, a.num_seqs, B) <= a.ring_k.shape[0], bad_shape,
                    "slot");
  return status::success();
}

/// Host-side check of slot and start_position for swska_ring_store (every backend whose index
/// arrays are in host memory), after swska_ring_store_check and check_packed_offsets, before
/// anything is written: every slot -1 (padding, skipped) or inside the pool (primitives/slots.hpp),
/// and the start position of each sequence that is not padding >= 0.
template <class Act>
[[nodiscard]] status swska_ring_store_check_slots(const swska_ring_store_args<Act>& a,
                                                  index_t N) noexcept {
  RODIMUS_TRY(check_slots(a.slot, N, a.ring_k.shape[0], false, "slot"));
  for (index_t n = 0; n < N; ++n) {
    if (is_padding_slot(slot_at(a.slot, n))) continue;
    RODIMUS_REQUIRE(!a.start_position || a.start_position[n] >= 0, bad_argument, "start_position");
  }
  return status::success();
}

} // namespace rodimus
