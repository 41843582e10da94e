// SW-SKA (swska_prefill, swska_decode, swska_ring_store) on any backend against the scalar
// reference (one body, stamped per backend: see support/backend_support.hpp), on fresh random
// inputs with poisoned outputs:
//   prefill: batched and packed (cu_seqlens, empty and odd-length sequences) inputs, windows
//     smaller and larger than T and unbounded, several key / query tiles crossed, Hq / Hk / Hv
//     tilings (Rodimus+: Hk = 1, Hv = Hq), history rings (bounded and unbounded windows, a
//     different position per sequence, slots that differ from the sequence numbers), f32, bf16
//     and f16, head dims 12 .. 256 (64, 100, 128 among them); the history rings are read only
//     (checked bit for bit); a padding sequence (slot -1) whose o rows stay poisoned;
//   decode: several steps over ring pools that start random, padding rows (slot -1: o rows stay
//     poisoned, primitives/slots.hpp), unused ring
//     slots (checked bit for bit unchanged), bounded windows that wrap the ring, long windows
//     (a CUDA split of the window), unbounded attention;
//   ring store: packed and batched, sequences longer and shorter than the ring, skipped slots;
//     the model's row sizes (16-byte vector copies on CUDA) and odd ones;
//   decode at a model's window (W = 2049): batch 1 with long and short histories (CUDA: all, one
//     or two pieces of the split window), rows of very different histories between padding rows,
//     padding rows only; padding rows (slot -1) stay untouched (check_swska_decode_rows);
//   decode at the edges of CUDA's flash-decoding pieces and head chunks: histories of 1 to 33
//     keys, 600 rows, 24 query heads at D = 128, two key heads at D = 256;
//   chunked prefill through the rings and then decode, as a model runs it;
//   decode with RoPE inside the step (rotary_dim > 0: q and k unrotated) against the reference
//     and against the rotary primitive followed by the step with rotary_dim 0 on the same backend
//     (check_swska_decode_rotary): positions up to 2 x 10^5, partial rotary_dim (pairs that
//     straddle 8-column groups too), a one-key window, rings that wrap, padding rows, two head
//     chunks of two key heads, an unbounded window, f32, bf16 and f16;
//   every shape / pointer / scalar error gives the same status on every backend (the checks that
//   read index-array contents are host-backend-only: tests/test_cpu_swska.cpp says why).
//
// Tolerances, relative to max|o| of the reference: prefill f32 1e-5 (online softmax in f32:
// scores of D products accumulated in f32 and an f32 exp against the double reference; the
// weights are <= 1 and sum to 1, so the error stays at a few f32 ulps of the largest value);
// decode f32 2e-5 (the same, plus the rescaling of a split window's partial sums); bf16 / f16
// outputs: one rounding step of the output, 2^-7 / 2^-10. Rings are copies of the inputs: exact,
// except the keys a step rotated itself (rotary_dim > 0), which differ from the reference's as
// rotary's outputs do (rotary_tol, tests/cases/rotary_cases.hpp: cos / sin of CUDA and libm differ
// by a few ulp); the outputs of such steps keep the decode tolerances (in f32 those ulps move a
// score by ~10^-6 of its size; in 16 bits a cos that rounds one step apart changes a few q or k
// elements by 2^-9, far below the output's own rounding).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>
#include <vector>

#include "cases/rotary_cases.hpp"
#include "rodimus/backend/scalar/swska.hpp"
#include "support/backend_support.hpp"
#include "support/primitive_support.hpp"

namespace rodimus::test {

template <class T> double swska_prefill_tol() {
  if (std::is_same_v<T, bf16>) return 1.0 / 128;
  if (std::is_same_v<T, f16>) return 1.0 / 1024;
  return 1e-5;
}

template <class T> double swska_decode_tol() {
  if (std::is_same_v<T, bf16>) return 1.0 / 128;
  if (std::is_same_v<T, f16>) return 1.0 / 1024;
  return 2e-5;
}

/// True when elements [first, first + count) of a and b are bit-for-bit equal.
template <class T>
bool swska_same_bits(const std::vector<T>& a, const std::vector<T>& b, std::size_t first,
                     std::size_t count) {
  REQUIRE(a.size() == b.size());
  REQUIRE(first + count <= a.size());
  return count == 0 || std::memcmp(a.data() + first, b.data() + first, count * sizeof(T)) == 0;
}

/// The shapes of a decode case: B rows of Hq query, Hk key and Hv value heads of D, P rings of W
/// positions; args() makes the step's arguments over given arrays.
struct swska_decode_shape {
  index_t B, P, W, Hq, Hk, Hv, D;
  int window_left;
  template <class Act>
  swska_decode_args<Act> args(const Act* q, const Act* k, const Act* v, Act* o, Act* rk, Act* rv,
                              const std::int32_t* slot, const std::int64_t* position) const {
    swska_decode_args<Act> a;
    a.q = make_view<const Act>(q, B, Hq, D);
    a.k = make_view<const Act>(k, B, Hk, D);
    a.v = make_view<const Act>(v, B, Hv, D);
    a.o = make_view(o, B, Hq, D);
    a.ring_k = make_view(rk, P, W, Hk, D);
    a.ring_v = make_view(rv, P, W, Hv, D);
    a.slot = slot;
    a.position = position;
    a.window_left = window_left;
    return a;
  }
  /// The rings no row's slot names are bit for bit as they started (rk0, rv0).
  template <class Act>
  void check_unused_rings(const std::vector<Act>& rk, const std::vector<Act>& rv,
                          const std::vector<Act>& rk0, const std::vector<Act>& rv0,
                          const std::vector<std::int32_t>& slot) const {
    for (index_t s = 0; s < P; ++s) {
      bool used = false;
      for (const std::int32_t x : slot)
        used = used || x == s;
      if (used) continue;
      CAPTURE(s);
      CHECK(swska_same_bits(rk, rk0, std::size_t(s * W * Hk * D), std::size_t(W * Hk * D)));
      CHECK(swska_same_bits(rv, rv0, std::size_t(s * W * Hv * D), std::size_t(W * Hv * D)));
    }
  }
};

/// The decode outputs of B rows of `row` elements, poisoned before the backend's call and the
/// reference's: padding rows (slot -1) must still be the poison in both (the slot rule,
/// primitives/slots.hpp: padding rows are skipped, nothing written), the others against the
/// reference within `tol`.
template <class Act>
void check_swska_decode_rows(std::vector<Act> o, std::vector<Act> o_ref,
                             const std::vector<std::int32_t>& slot, index_t row, double tol,
                             const char* what) {
  std::vector<bool> skip(slot.size());
  for (std::size_t b = 0; b < slot.size(); ++b)
    skip[b] = is_padding_slot(slot[b]);
  check_skipped_rows(o, o_ref, std::size_t(row), skip);
  if (!o.empty()) check_close(o, o_ref, tol, 0.0, what);
}

struct swska_prefill_case {
  index_t B, T, Hq, Hk, Hv, D;
  int window_left;
  std::vector<std::int64_t> cu_seqlens;  // empty: batched
  std::vector<std::int64_t> history_len; // empty: no history
  index_t W = 0;                         // history ring length
  index_t padding = -1; // with history: this sequence's slot is -1 (skipped, o untouched)
  float scale = 0.0f;   // swska_args::scale (0: 1 / sqrt(D))
};

/// The swska_args of prefill case `c` over q, ..., hlen (host vectors or their backend copies):
/// N = c.history_len.size() sequences with history rings in a pool of N + 1.
template <class Act>
swska_args<Act> swska_case_args(const swska_prefill_case& c, const Act* q, const Act* k,
                                const Act* v, Act* o, const std::int64_t* cu, const Act* hk,
                                const Act* hv, const std::int32_t* hslot,
                                const std::int64_t* hlen) {
  const index_t N = index_t(c.history_len.size()), P = N + 1;
  swska_args<Act> a;
  a.q = make_view<const Act>(q, c.B, c.T, c.Hq, c.D);
  a.k = make_view<const Act>(k, c.B, c.T, c.Hk, c.D);
  a.v = make_view<const Act>(v, c.B, c.T, c.Hv, c.D);
  a.o = make_view(o, c.B, c.T, c.Hq, c.D);
  a.window_left = c.window_left;
  a.scale = c.scale;
  if (!c.cu_seqlens.empty()) {
    a.cu_seqlens = cu;
    a.num_seqs = std::int64_t(c.cu_seqlens.size()) - 1;
  }
  if (N > 0) {
    a.history_k = make_view<const Act>(hk, P, c.W, c.Hk, c.D);
    a.history_v = make_view<const Act>(hv, P, c.W, c.Hv, c.D);
    a.slot = hslot;
    a.history_len = hlen;
  }
  return a;
}

template <class Backend, class Act>
void check_swska_prefill(const Backend& be, const swska_prefill_case& c) {
  CAPTURE(c.B);
  CAPTURE(c.T);
  CAPTURE(c.Hq);
  CAPTURE(c.Hk);
  CAPTURE(c.Hv);
  CAPTURE(c.D);
  CAPTURE(c.window_left);
  CAPTURE(c.cu_seqlens.size());
  CAPTURE(c.history_len.size());
  CAPTURE(c.W);
  const index_t B = c.B, T = c.T, Hq = c.Hq, Hk = c.Hk, Hv = c.Hv, D = c.D;
  auto g = rng(std::uint64_t(B * 7919 + T * 131 + Hq * 17 + Hk * 5 + D + c.window_left));
  auto q = uniform<Act>(g, std::size_t(B * T * Hq * D), -2.0, 2.0);
  auto k = uniform<Act>(g, std::size_t(B * T * Hk * D), -2.0, 2.0);
  auto v = uniform<Act>(g, std::size_t(B * T * Hv * D));
  std::vector<Act> o(std::size_t(B * T * Hq * D)), o_ref(o.size());
  poison(o);
  poison(o_ref);
  const index_t N = index_t(c.history_len.size()), P = N + 1;
  auto hk = uniform<Act>(g, std::size_t(P * c.W * Hk * D), -2.0, 2.0);
  auto hv = uniform<Act>(g, std::size_t(P * c.W * Hv * D));
  std::vector<std::int32_t> hslot;
  for (index_t n = 0; n < N; ++n) // reversed: slots differ from sequence numbers
    hslot.push_back(n == c.padding ? padding_slot : std::int32_t(P - 1 - n));

  auto args = [&](auto... arrays) { return swska_case_args<Act>(c, arrays...); };

  backend_arrays<Backend> mem(be);
  Act* d_o = mem.put(o);
  Act* d_hk = mem.put(hk);
  Act* d_hv = mem.put(hv);
  const auto a = args(mem.put(q), mem.put(k), mem.put(v), d_o, mem.put(c.cu_seqlens), d_hk, d_hv,
                      mem.put(hslot), mem.put(c.history_len));
  backend_workspace<Backend> ws(be, swska_prefill_workspace_bytes(be, a));
  REQUIRE(swska_prefill(be, a, ws.get()).ok());
  mem.get(o, d_o);
  std::vector<Act> hk_after(hk.size()), hv_after(hv.size());
  mem.get(hk_after, d_hk);
  mem.get(hv_after, d_hv);

  const auto r = args(q.data(), k.data(), v.data(), o_ref.data(), c.cu_seqlens.data(), hk.data(),
                      hv.data(), hslot.data(), c.history_len.data());
  workspace_buffer ws_ref(swska_prefill_workspace_bytes(scalar{}, r));
  REQUIRE(swska_prefill(scalar{}, r, ws_ref.get()).ok());
  std::vector<bool> skip(std::size_t(B * T), false); // (B, T) token rows of the padding sequence
  if (c.padding >= 0)
    for (index_t t = 0; t < T; ++t)
      for (index_t b = 0; b < B; ++b)
        skip[std::size_t(b * T + t)] = c.cu_seqlens.empty()
                                           ? b == c.padding
                                           : t >= c.cu_seqlens[std::size_t(c.padding)] &&
                                                 t < c.cu_seqlens[std::size_t(c.padding) + 1];
  check_skipped_rows(o, o_ref, std::size_t(Hq * D), skip);
  check_close(o, o_ref, swska_prefill_tol<Act>(), 0.0, "o");
  CHECK(swska_same_bits(hk_after, hk, 0, hk.size())); // the history is only read
  CHECK(swska_same_bits(hv_after, hv, 0, hv.size()));
}

/// `steps` decode steps of B rows over a pool of P rings (row 1 is padding, the others use slots
/// P - 1 - b, so slots 0 .. P - B - 1 and the padding row's are never used).
template <class Backend, class Act>
void check_swska_decode(const Backend& be, index_t B, index_t P, index_t W, index_t Hq, index_t Hk,
                        index_t Hv, index_t D, int window_left, int steps = 4) {
  CAPTURE(B);
  CAPTURE(P);
  CAPTURE(W);
  CAPTURE(Hq);
  CAPTURE(Hk);
  CAPTURE(Hv);
  CAPTURE(D);
  CAPTURE(window_left);
  auto g = rng(std::uint64_t(B * 7919 + W * 131 + Hq * 17 + Hk * 5 + D));
  const auto rk0 = uniform<Act>(g, std::size_t(P * W * Hk * D));
  const auto rv0 = uniform<Act>(g, std::size_t(P * W * Hv * D));
  auto rk_ref = rk0, rv_ref = rv0;
  std::vector<Act> rk(rk0.size()), rv(rv0.size());
  std::vector<std::int32_t> slot;
  std::vector<std::int64_t> position;
  std::vector<bool> used(std::size_t(P), false);
  for (index_t b = 0; b < B; ++b) {
    const std::int32_t s = b == 1 ? -1 : std::int32_t(P - 1 - b);
    slot.push_back(s);
    if (s >= 0) used[std::size_t(s)] = true;
    // Unbounded attention needs position < W; bounded windows start past the ring length, and
    // every row is at a different position.
    position.push_back(window_left < 0 ? b : std::int64_t(W + 3 * b));
  }
  backend_arrays<Backend> mem(be);
  Act* d_rk = mem.put(rk0);
  Act* d_rv = mem.put(rv0);
  const std::int32_t* d_slot = mem.put(slot);
  std::int64_t* d_position = mem.put(position);
  const swska_decode_shape shape{B, P, W, Hq, Hk, Hv, D, window_left};
  auto args = [&](const Act* q_, const Act* k_, const Act* v_, Act* o_, Act* rk_, Act* rv_,
                  const std::int32_t* slot_, const std::int64_t* position_) {
    return shape.args(q_, k_, v_, o_, rk_, rv_, slot_, position_);
  };
  for (int step = 0; step < steps; ++step) {
    CAPTURE(step);
    auto q = uniform<Act>(g, std::size_t(B * Hq * D), -2.0, 2.0);
    auto k = uniform<Act>(g, std::size_t(B * Hk * D), -2.0, 2.0);
    auto v = uniform<Act>(g, std::size_t(B * Hv * D));
    std::vector<Act> o(std::size_t(B * Hq * D)), o_ref(o.size());
    poison(o);
    poison(o_ref);
    Act* d_o = mem.put(o);
    mem.set(d_position, position);
    const auto a = args(mem.put(q), mem.put(k), mem.put(v), d_o, d_rk, d_rv, d_slot, d_position);
    backend_workspace<Backend> ws(be, swska_decode_workspace_bytes(be, a));
    REQUIRE(swska_decode(be, a, ws.get()).ok());
    mem.get(o, d_o);
    mem.get(rk, d_rk);
    mem.get(rv, d_rv);

    const auto r = args(q.data(), k.data(), v.data(), o_ref.data(), rk_ref.data(), rv_ref.data(),
                        slot.data(), position.data());
    workspace_buffer ws_ref(swska_decode_workspace_bytes(scalar{}, r));
    REQUIRE(swska_decode(scalar{}, r, ws_ref.get()).ok());
    check_swska_decode_rows(o, o_ref, slot, Hq * D, swska_decode_tol<Act>(), "o");
    CHECK(swska_same_bits(rk, rk_ref, 0, rk.size()));
    CHECK(swska_same_bits(rv, rv_ref, 0, rv.size()));
    for (auto& p : position)
      ++p;
  }
  // The rings of unused slots are exactly as they started.
  for (index_t s = 0; s < P; ++s) {
    if (used[std::size_t(s)]) continue;
    CAPTURE(s);
    CHECK(swska_same_bits(rk, rk0, std::size_t(s * W * Hk * D), std::size_t(W * Hk * D)));
    CHECK(swska_same_bits(rv, rv0, std::size_t(s * W * Hv * D), std::size_t(W * Hv * D)));
  }
}

struct swska_ring_store_case {
  index_t B, T, Hk, Hv, D, P, W;
  std::vector<std::int64_t> cu_seqlens;     // empty: batched
  std::vector<std::int32_t> slot;           // empty: nullptr (slot n)
  std::vector<std::int64_t> start_position; // empty: nullptr (0)
};

template <class Backend, class Act>
void check_swska_ring_store(const Backend& be, const swska_ring_store_case& c) {
  CAPTURE(c.B);
  CAPTURE(c.T);
  CAPTURE(c.W);
  CAPTURE(c.D);
  CAPTURE(c.cu_seqlens.size());
  auto g = rng(std::uint64_t(c.B * 31 + c.T * 7 + c.W + c.D));
  const auto k = uniform<Act>(g, std::size_t(c.B * c.T * c.Hk * c.D));
  const auto v = uniform<Act>(g, std::size_t(c.B * c.T * c.Hv * c.D));
  auto rk_ref = uniform<Act>(g, std::size_t(c.P * c.W * c.Hk * c.D));
  auto rv_ref = uniform<Act>(g, std::size_t(c.P * c.W * c.Hv * c.D));
  std::vector<Act> rk(rk_ref.size()), rv(rv_ref.size());
  auto args = [&](const Act* k_, const Act* v_, Act* rk_, Act* rv_, const std::int64_t* cu_,
                  const std::int32_t* slot_, const std::int64_t* start_) {
    swska_ring_store_args<Act> a;
    a.k = make_view<const Act>(k_, c.B, c.T, c.Hk, c.D);
    a.v = make_view<const Act>(v_, c.B, c.T, c.Hv, c.D);
    a.ring_k = make_view(rk_, c.P, c.W, c.Hk, c.D);
    a.ring_v = make_view(rv_, c.P, c.W, c.Hv, c.D);
    if (!c.cu_seqlens.empty()) {
      a.cu_seqlens = cu_;
      a.num_seqs = std::int64_t(c.cu_seqlens.size()) - 1;
    }
    a.slot = c.slot.empty() ? nullptr : slot_;
    a.start_position = c.start_position.empty() ? nullptr : start_;
    return a;
  };
  backend_arrays<Backend> mem(be);
  Act* d_rk = mem.put(rk_ref);
  Act* d_rv = mem.put(rv_ref);
  REQUIRE(swska_ring_store(be, args(mem.put(k), mem.put(v), d_rk, d_rv, mem.put(c.cu_seqlens),
                                    mem.put(c.slot), mem.put(c.start_position)))
              .ok());
  mem.get(rk, d_rk);
  mem.get(rv, d_rv);
  REQUIRE(
      swska_ring_store(scalar{}, args(k.data(), v.data(), rk_ref.data(), rv_ref.data(),
                                      c.cu_seqlens.data(), c.slot.data(), c.start_position.data()))
          .ok());
  CHECK(swska_same_bits(rk, rk_ref, 0, rk.size()));
  CHECK(swska_same_bits(rv, rv_ref, 0, rv.size()));
}

/// A model's use of the primitives: a packed batch of sequences is prefilled in two chunks
/// (the second continues from the rings, at a different position per sequence), each chunk's
/// keys / values stored into the rings, then every sequence decodes a few tokens. Every output
/// and the rings are compared with the scalar reference doing the same.
template <class Backend, class Act>
void check_swska_chunked_then_decode(const Backend& be, index_t Hq, index_t Hv, index_t D,
                                     int window_left) {
  CAPTURE(Hq);
  CAPTURE(Hv);
  CAPTURE(D);
  CAPTURE(window_left);
  const index_t Hk = 1, N = 3, P = 5;
  const index_t W = window_left < 0 ? 64 : index_t(window_left) + 1;
  // Chunk lengths per sequence; with an unbounded window everything stays below W = 64.
  const std::vector<std::int64_t> len1 = {5, 0, 23}, len2 = {17, 9, 1};
  const std::vector<std::int32_t> slot = {3, 0, 4}; // slots 1 and 2 stay unused
  auto g = rng(std::uint64_t(Hq * 13 + D * 3 + window_left));
  const auto rk0 = uniform<Act>(g, std::size_t(P * W * Hk * D));
  const auto rv0 = uniform<Act>(g, std::size_t(P * W * Hv * D));
  auto rk_ref = rk0, rv_ref = rv0;
  std::vector<Act> rk(rk0.size()), rv(rv0.size());
  backend_arrays<Backend> mem(be);
  Act* d_rk = mem.put(rk0);
  Act* d_rv = mem.put(rv0);
  const std::int32_t* d_slot = mem.put(slot);
  std::vector<std::int64_t> seen(std::size_t(N), 0); // tokens of each sequence so far

  for (const auto* lens : {&len1, &len2}) {
    std::vector<std::int64_t> cu = {0};
    for (const std::int64_t L : *lens)
      cu.push_back(cu.back() + L);
    const index_t T = index_t(cu.back());
    auto q = uniform<Act>(g, std::size_t(T * Hq * D), -2.0, 2.0);
    auto k = uniform<Act>(g, std::size_t(T * Hk * D), -2.0, 2.0);
    auto v = uniform<Act>(g, std::size_t(T * Hv * D));
    std::vector<Act> o(std::size_t(T * Hq * D)), o_ref(o.size());
    poison(o);
    poison(o_ref);
    auto prefill_args = [&](const Act* q_, const Act* k_, const Act* v_, Act* o_,
                            const std::int64_t* cu_, const Act* rk_, const Act* rv_,
                            const std::int32_t* slot_, const std::int64_t* seen_) {
      swska_args<Act> a;
      a.q = make_view<const Act>(q_, 1, T, Hq, D);
      a.k = make_view<const Act>(k_, 1, T, Hk, D);
      a.v = make_view<const Act>(v_, 1, T, Hv, D);
      a.o = make_view(o_, 1, T, Hq, D);
      a.window_left = window_left;
      a.cu_seqlens = cu_;
      a.num_seqs = N;
      a.history_k = make_view<const Act>(rk_, P, W, Hk, D);
      a.history_v = make_view<const Act>(rv_, P, W, Hv, D);
      a.slot = slot_;
      a.history_len = seen_;
      return a;
    };
    auto store_args = [&](const Act* k_, const Act* v_, Act* rk_, Act* rv_, const std::int64_t* cu_,
                          const std::int32_t* slot_, const std::int64_t* seen_) {
      swska_ring_store_args<Act> a;
      a.k = make_view<const Act>(k_, 1, T, Hk, D);
      a.v = make_view<const Act>(v_, 1, T, Hv, D);
      a.ring_k = make_view(rk_, P, W, Hk, D);
      a.ring_v = make_view(rv_, P, W, Hv, D);
      a.cu_seqlens = cu_;
      a.num_seqs = N;
      a.slot = slot_;
      a.start_position = seen_;
      return a;
    };
    const Act *d_q = mem.put(q), *d_k = mem.put(k), *d_v = mem.put(v);
    Act* d_o = mem.put(o);
    const std::int64_t *d_cu = mem.put(cu), *d_seen = mem.put(seen);
    const auto a = prefill_args(d_q, d_k, d_v, d_o, d_cu, d_rk, d_rv, d_slot, d_seen);
    backend_workspace<Backend> ws(be, swska_prefill_workspace_bytes(be, a));
    REQUIRE(swska_prefill(be, a, ws.get()).ok());
    REQUIRE(swska_ring_store(be, store_args(d_k, d_v, d_rk, d_rv, d_cu, d_slot, d_seen)).ok());
    mem.get(o, d_o);
    mem.get(rk, d_rk);
    mem.get(rv, d_rv);

    const auto r = prefill_args(q.data(), k.data(), v.data(), o_ref.data(), cu.data(),
                                rk_ref.data(), rv_ref.data(), slot.data(), seen.data());
    workspace_buffer ws_ref(swska_prefill_workspace_bytes(scalar{}, r));
    REQUIRE(swska_prefill(scalar{}, r, ws_ref.get()).ok());
    REQUIRE(swska_ring_store(scalar{}, store_args(k.data(), v.data(), rk_ref.data(), rv_ref.data(),
                                                  cu.data(), slot.data(), seen.data()))
                .ok());
    check_close(o, o_ref, swska_prefill_tol<Act>(), 0.0, "prefill o");
    CHECK(swska_same_bits(rk, rk_ref, 0, rk.size()));
    CHECK(swska_same_bits(rv, rv_ref, 0, rv.size()));
    for (index_t n = 0; n < N; ++n)
      seen[std::size_t(n)] += (*lens)[std::size_t(n)];
  }

  // Decode: the N sequences as rows in reversed order, plus a padding row.
  const std::vector<std::int32_t> dslot = {slot[2], -1, slot[1], slot[0]};
  std::vector<std::int64_t> dpos = {seen[2], 0, seen[1], seen[0]};
  const index_t B = index_t(dslot.size());
  const std::int32_t* d_dslot = mem.put(dslot);
  std::int64_t* d_dpos = mem.put(dpos);
  for (int step = 0; step < 3; ++step) {
    CAPTURE(step);
    auto q = uniform<Act>(g, std::size_t(B * Hq * D), -2.0, 2.0);
    auto k = uniform<Act>(g, std::size_t(B * Hk * D), -2.0, 2.0);
    auto v = uniform<Act>(g, std::size_t(B * Hv * D));
    std::vector<Act> o(std::size_t(B * Hq * D)), o_ref(o.size());
    poison(o);
    poison(o_ref);
    const swska_decode_shape shape{B, P, W, Hq, Hk, Hv, D, window_left};
    auto args = [&](const Act* q_, const Act* k_, const Act* v_, Act* o_, Act* rk_, Act* rv_,
                    const std::int32_t* slot_, const std::int64_t* pos_) {
      return shape.args(q_, k_, v_, o_, rk_, rv_, slot_, pos_);
    };
    Act* d_o = mem.put(o);
    mem.set(d_dpos, dpos);
    const auto a = args(mem.put(q), mem.put(k), mem.put(v), d_o, d_rk, d_rv, d_dslot, d_dpos);
    backend_workspace<Backend> ws(be, swska_decode_workspace_bytes(be, a));
    REQUIRE(swska_decode(be, a, ws.get()).ok());
    mem.get(o, d_o);
    mem.get(rk, d_rk);
    mem.get(rv, d_rv);
    const auto r = args(q.data(), k.data(), v.data(), o_ref.data(), rk_ref.data(), rv_ref.data(),
                        dslot.data(), dpos.data());
    workspace_buffer ws_ref(swska_decode_workspace_bytes(scalar{}, r));
    REQUIRE(swska_decode(scalar{}, r, ws_ref.get()).ok());
    check_swska_decode_rows(o, o_ref, dslot, Hq * D, swska_decode_tol<Act>(), "decode o");
    CHECK(swska_same_bits(rk, rk_ref, 0, rk.size()));
    CHECK(swska_same_bits(rv, rv_ref, 0, rv.size()));
    for (auto& p : dpos)
      ++p;
  }
  for (const index_t s : {index_t(1), index_t(2)}) { // unused slots: untouched
    CAPTURE(s);
    CHECK(swska_same_bits(rk, rk0, std::size_t(s * W * Hk * D), std::size_t(W * Hk * D)));
    CHECK(swska_same_bits(rv, rv0, std::size_t(s * W * Hv * D), std::size_t(W * Hv * D)));
  }
}

/// Every shape, pointer and scalar error gives the backend the same status as the reference
/// (tests/test_swska.cpp runs the reference on the same kind of cases), and nothing is written.
/// The arguments' index arrays hold valid contents in the backend's memory.
template <class Backend> void check_swska_bad_shapes(const Backend& be) {
  using F = float;
  const index_t T = 4, Hq = 2, Hk = 1, Hv = 2, D = 4, P = 3, W = 4;
  std::vector<F> q(T * Hq * D, 0.5f), k(T * Hk * D, 0.25f), v(T * Hv * D, 1.0f);
  std::vector<F> o(q.size()), rk(P * W * Hk * D, 0.125f), rv(P * W * Hv * D, 2.0f);
  poison(o);
  backend_arrays<Backend> mem(be);
  const F *d_q = mem.put(q), *d_k = mem.put(k), *d_v = mem.put(v);
  F* d_o = mem.put(o);
  F* d_rk = mem.put(rk);
  F* d_rv = mem.put(rv);
  const std::int64_t* d_cu = mem.put(std::vector<std::int64_t>{0, 1, 4});
  const std::int64_t* d_hlen = mem.put(std::vector<std::int64_t>{2, 0});
  const std::int32_t* d_hslot = mem.put(std::vector<std::int32_t>{1, 2});

  // Prefill: a packed batch of two sequences, the first continuing after 2 tokens.
  swska_args<F> pa;
  pa.q = make_view<const F>(d_q, 1, T, Hq, D);
  pa.k = make_view<const F>(d_k, 1, T, Hk, D);
  pa.v = make_view<const F>(d_v, 1, T, Hv, D);
  pa.o = make_view(d_o, 1, T, Hq, D);
  pa.window_left = 3;
  pa.cu_seqlens = d_cu;
  pa.num_seqs = 2;
  pa.history_k = make_view<const F>(d_rk, P, W, Hk, D);
  pa.history_v = make_view<const F>(d_rv, P, W, Hv, D);
  pa.slot = d_hslot;
  pa.history_len = d_hlen;
  backend_workspace<Backend> pws(be, swska_prefill_workspace_bytes(be, pa));
  auto prun = [&](const swska_args<F>& a) { return swska_prefill(be, a, pws.get()); };
  using pbad = bad_case<swska_args<F>>;
  check_bad_cases(
      pa, prun,
      {
          pbad{"q.data = nullptr", [](swska_args<F>& a) { a.q.data = nullptr; },
               status_code::null_pointer, "q"},
          pbad{"o.data = nullptr", [](swska_args<F>& a) { a.o.data = nullptr; },
               status_code::null_pointer, "o"},
          pbad{"k.shape[1] = 3", [](swska_args<F>& a) { a.k.shape[1] = 3; }, status_code::bad_shape,
               "k"},
          pbad{"v.shape[3] = 2", [](swska_args<F>& a) { a.v.shape[3] = 2; }, status_code::bad_shape,
               "v"},
          pbad{"o.shape[2] = 1", [](swska_args<F>& a) { a.o.shape[2] = 1; }, status_code::bad_shape,
               "o"},
          pbad{"q.shape[0] = -1", [](swska_args<F>& a) { a.q.shape[0] = -1; },
               status_code::bad_shape, "q"},
          pbad{"D = 0",
               [](swska_args<F>& a) {
                 a.q.shape[3] = 0;
                 a.k.shape[3] = 0;
                 a.v.shape[3] = 0;
                 a.o.shape[3] = 0;
               },
               status_code::bad_shape, "q"},
          pbad{"window_left = -2", [](swska_args<F>& a) { a.window_left = -2; },
               status_code::bad_argument, "window_left"},
          pbad{"scale = NAN", [](swska_args<F>& a) { a.scale = NAN; }, status_code::bad_argument,
               "scale"},
          pbad{"Hq = 2, Hk = 3", [](swska_args<F>& a) { a.k.shape[2] = 3; }, status_code::bad_shape,
               "k"},
          pbad{"Hq = 2, Hv = 3", [](swska_args<F>& a) { a.v.shape[2] = 3; }, status_code::bad_shape,
               "v"},
          pbad{"num_seqs = -1", [](swska_args<F>& a) { a.num_seqs = -1; }, status_code::bad_shape,
               "num_seqs"},
          pbad{"cu_seqlens with B = 2",
               [](swska_args<F>& a) {
                 a.q.shape[0] = a.k.shape[0] = a.v.shape[0] = a.o.shape[0] = 2;
                 a.q.shape[1] = a.k.shape[1] = a.v.shape[1] = a.o.shape[1] = 2;
               },
               status_code::bad_shape, "cu_seqlens"},
          pbad{"history_v.data = nullptr", [](swska_args<F>& a) { a.history_v.data = nullptr; },
               status_code::null_pointer, "history_v"},
          pbad{"history_len = nullptr", [](swska_args<F>& a) { a.history_len = nullptr; },
               status_code::null_pointer, "history_len"},
          pbad{"history_k.shape[3] = 2", [](swska_args<F>& a) { a.history_k.shape[3] = 2; },
               status_code::bad_shape, "history_k"},
          pbad{"history_v.shape[1] = 3", [](swska_args<F>& a) { a.history_v.shape[1] = 3; },
               status_code::bad_shape, "history_v"},
          pbad{"slot = nullptr with 2 sequences, P = 1",
               [](swska_args<F>& a) {
                 a.slot = nullptr;
                 a.history_k.shape[0] = a.history_v.shape[0] = 1;
               },
               status_code::bad_shape, "slot"},
      });

  // Decode: two rows (the second padding) on rings P = 3, W = 4.
  const std::int32_t* d_slot = mem.put(std::vector<std::int32_t>{2, -1});
  const std::int64_t* d_pos = mem.put(std::vector<std::int64_t>{5, 0});
  swska_decode_args<F> da;
  da.q = make_view<const F>(d_q, 2, Hq, D);
  da.k = make_view<const F>(d_k, 2, Hk, D);
  da.v = make_view<const F>(d_v, 2, Hv, D);
  da.o = make_view(d_o, 2, Hq, D);
  da.ring_k = make_view(d_rk, P, W, Hk, D);
  da.ring_v = make_view(d_rv, P, W, Hv, D);
  da.slot = d_slot;
  da.position = d_pos;
  da.window_left = 3;
  backend_workspace<Backend> dws(be, swska_decode_workspace_bytes(be, da));
  auto drun = [&](const swska_decode_args<F>& a) { return swska_decode(be, a, dws.get()); };
  using dbad = bad_case<swska_decode_args<F>>;
  check_bad_cases(
      da, drun,
      {
          dbad{"position = nullptr", [](swska_decode_args<F>& a) { a.position = nullptr; },
               status_code::null_pointer, "position"},
          dbad{"q.data = nullptr", [](swska_decode_args<F>& a) { a.q.data = nullptr; },
               status_code::null_pointer, "q"},
          dbad{"ring_k.data = nullptr", [](swska_decode_args<F>& a) { a.ring_k.data = nullptr; },
               status_code::null_pointer, "ring_k"},
          dbad{"window_left = 4 (W < 5)", [](swska_decode_args<F>& a) { a.window_left = 4; },
               status_code::bad_shape, "ring_k"},
          dbad{"window_left = -3", [](swska_decode_args<F>& a) { a.window_left = -3; },
               status_code::bad_argument, "window_left"},
          dbad{"scale = inf", [](swska_decode_args<F>& a) { a.scale = INFINITY; },
               status_code::bad_argument, "scale"},
          dbad{"ring_v.shape[0] = 2", [](swska_decode_args<F>& a) { a.ring_v.shape[0] = 2; },
               status_code::bad_shape, "ring_v"},
          dbad{"k.shape[2] = 3", [](swska_decode_args<F>& a) { a.k.shape[2] = 3; },
               status_code::bad_shape, "k"},
          dbad{"o.shape[1] = 1", [](swska_decode_args<F>& a) { a.o.shape[1] = 1; },
               status_code::bad_shape, "o"},
          dbad{"slot = nullptr with B = 2 > P = 1",
               [](swska_decode_args<F>& a) {
                 a.slot = nullptr;
                 a.ring_k.shape[0] = a.ring_v.shape[0] = 1;
               },
               status_code::bad_shape, "slot"},
          dbad{"rotary_dim = 3 (odd)", [](swska_decode_args<F>& a) { a.rotary_dim = 3; },
               status_code::bad_argument, "rotary_dim"},
          dbad{"rotary_dim = -2", [](swska_decode_args<F>& a) { a.rotary_dim = -2; },
               status_code::bad_argument, "rotary_dim"},
          dbad{"rotary_dim = 6 > D = 4", [](swska_decode_args<F>& a) { a.rotary_dim = 6; },
               status_code::bad_argument, "rotary_dim"},
          dbad{"rotary_base = 0",
               [](swska_decode_args<F>& a) {
                 a.rotary_dim = 4;
                 a.rotary_base = 0.0f;
               },
               status_code::bad_argument, "rotary_base"},
          dbad{"rotary_base = NAN", [](swska_decode_args<F>& a) { a.rotary_base = NAN; },
               status_code::bad_argument, "rotary_base"},
      });

  // Ring store: the packed batch above into slots 2 and 0.
  const std::int32_t* d_sslot = mem.put(std::vector<std::int32_t>{2, 0});
  const std::int64_t* d_start = mem.put(std::vector<std::int64_t>{3, 0});
  swska_ring_store_args<F> sa;
  sa.k = make_view<const F>(d_k, 1, T, Hk, D);
  sa.v = make_view<const F>(d_v, 1, T, Hv, D);
  sa.ring_k = make_view(d_rk, P, W, Hk, D);
  sa.ring_v = make_view(d_rv, P, W, Hv, D);
  sa.cu_seqlens = d_cu;
  sa.num_seqs = 2;
  sa.slot = d_sslot;
  sa.start_position = d_start;
  auto srun = [&](const swska_ring_store_args<F>& a) { return swska_ring_store(be, a); };
  using sbad = bad_case<swska_ring_store_args<F>>;
  check_bad_cases(
      sa, srun,
      {
          sbad{"k.data = nullptr", [](swska_ring_store_args<F>& a) { a.k.data = nullptr; },
               status_code::null_pointer, "k"},
          sbad{"v.shape[1] = 3", [](swska_ring_store_args<F>& a) { a.v.shape[1] = 3; },
               status_code::bad_shape, "v"},
          sbad{"ring_k.shape[3] = 2", [](swska_ring_store_args<F>& a) { a.ring_k.shape[3] = 2; },
               status_code::bad_shape, "ring_k"},
          sbad{"ring_v.shape[1] = 2", [](swska_ring_store_args<F>& a) { a.ring_v.shape[1] = 2; },
               status_code::bad_shape, "ring_v"},
          sbad{"num_seqs = -1", [](swska_ring_store_args<F>& a) { a.num_seqs = -1; },
               status_code::bad_shape, "num_seqs"},
          sbad{"slot = nullptr with 2 sequences, P = 1",
               [](swska_ring_store_args<F>& a) {
                 a.slot = nullptr;
                 a.ring_k.shape[0] = a.ring_v.shape[0] = 1;
               },
               status_code::bad_shape, "slot"},
      });

  // Nothing was written by the refused calls.
  std::vector<F> o_after(o.size()), rk_after(rk.size()), rv_after(rv.size());
  mem.get(o_after, d_o);
  mem.get(rk_after, d_rk);
  mem.get(rv_after, d_rv);
  CHECK(all_nan(o_after));
  CHECK(swska_same_bits(rk_after, rk, 0, rk.size()));
  CHECK(swska_same_bits(rv_after, rv, 0, rv.size()));
  // And the valid arguments are accepted.
  CHECK(prun(pa).ok());
  CHECK(drun(da).ok());
  swska_decode_args<F> rotated = da; // RoPE inside the step: valid too (the workspace has room)
  rotated.rotary_dim = 2;
  backend_workspace<Backend> rws(be, swska_decode_workspace_bytes(be, rotated));
  CHECK(swska_decode(be, rotated, rws.get()).ok());
  CHECK(srun(sa).ok());
  REQUIRE(synchronize(be).ok());
}

/// Decode steps of B rows with given slots (negative: padding) and starting positions over a pool
/// of P rings that start random: the rows' outputs against the reference, padding rows untouched
/// (check_swska_decode_rows), every ring bit for bit (the unused ones unchanged).
template <class Backend, class Act>
void check_swska_decode_rows_case(const Backend& be, const std::vector<std::int32_t>& slot,
                                  std::vector<std::int64_t> position, index_t P, index_t W,
                                  index_t Hq, index_t Hk, index_t Hv, index_t D, int window_left,
                                  int steps) {
  const index_t B = index_t(slot.size());
  CAPTURE(B);
  CAPTURE(P);
  CAPTURE(W);
  CAPTURE(D);
  CAPTURE(window_left);
  CAPTURE(position[0]);
  auto g = rng(std::uint64_t(B * 104729 + W * 31 + position[0] * 7 + D));
  const auto rk0 = uniform<Act>(g, std::size_t(P * W * Hk * D), -2.0, 2.0);
  const auto rv0 = uniform<Act>(g, std::size_t(P * W * Hv * D));
  auto rk_ref = rk0, rv_ref = rv0;
  std::vector<Act> rk(rk0.size()), rv(rv0.size());
  backend_arrays<Backend> mem(be);
  Act* d_rk = mem.put(rk0);
  Act* d_rv = mem.put(rv0);
  const std::int32_t* d_slot = mem.put(slot);
  std::int64_t* d_position = mem.put(position);
  const swska_decode_shape shape{B, P, W, Hq, Hk, Hv, D, window_left};
  auto args = [&](const Act* q_, const Act* k_, const Act* v_, Act* o_, Act* rk_, Act* rv_,
                  const std::int32_t* slot_, const std::int64_t* position_) {
    return shape.args(q_, k_, v_, o_, rk_, rv_, slot_, position_);
  };
  for (int step = 0; step < steps; ++step) {
    CAPTURE(step);
    const auto q = uniform<Act>(g, std::size_t(B * Hq * D), -2.0, 2.0);
    const auto k = uniform<Act>(g, std::size_t(B * Hk * D), -2.0, 2.0);
    const auto v = uniform<Act>(g, std::size_t(B * Hv * D));
    std::vector<Act> o(std::size_t(B * Hq * D)), o_ref(o.size());
    poison(o);
    poison(o_ref);
    Act* d_o = mem.put(o);
    mem.set(d_position, position);
    const auto a = args(mem.put(q), mem.put(k), mem.put(v), d_o, d_rk, d_rv, d_slot, d_position);
    backend_workspace<Backend> ws(be, swska_decode_workspace_bytes(be, a));
    REQUIRE(swska_decode(be, a, ws.get()).ok());
    mem.get(o, d_o);
    mem.get(rk, d_rk);
    mem.get(rv, d_rv);
    const auto r = args(q.data(), k.data(), v.data(), o_ref.data(), rk_ref.data(), rv_ref.data(),
                        slot.data(), position.data());
    workspace_buffer ws_ref(swska_decode_workspace_bytes(scalar{}, r));
    REQUIRE(swska_decode(scalar{}, r, ws_ref.get()).ok());
    check_swska_decode_rows(o, o_ref, slot, Hq * D, swska_decode_tol<Act>(), "o");
    CHECK(swska_same_bits(rk, rk_ref, 0, rk.size()));
    CHECK(swska_same_bits(rv, rv_ref, 0, rv.size()));
    for (auto& p : position)
      ++p;
  }
  shape.check_unused_rings(rk, rv, rk0, rv0, slot);
}

/// Decode steps with RoPE inside the step (rotary_dim > 0: q and k are the unrotated projections)
/// of rows with given slots (negative: padding) and starting positions over a pool of P rings
/// that start random, compared with (1) the scalar reference given the same arguments and (2) an
/// independent path on the same backend: the rotary primitive on copies of q and k at the rows'
/// positions, then the step with rotary_dim 0 on rings of its own. Outputs of the rows within the
/// decode tolerance (padding rows untouched), the rings' rotated keys within the rotary tolerance,
/// their values bit for bit, unused rings unchanged.
template <class Backend, class Act>
void check_swska_decode_rotary(const Backend& be, const std::vector<std::int32_t>& slot,
                               std::vector<std::int64_t> position, index_t P, index_t W, index_t Hq,
                               index_t Hk, index_t Hv, index_t D, int window_left, int rotary_dim,
                               float base, int steps) {
  const index_t B = index_t(slot.size());
  CAPTURE(B);
  CAPTURE(W);
  CAPTURE(Hq);
  CAPTURE(Hk);
  CAPTURE(D);
  CAPTURE(window_left);
  CAPTURE(rotary_dim);
  CAPTURE(position[0]);
  auto g = rng(std::uint64_t(B * 7727 + W * 37 + position[0] * 3 + D * 11 + rotary_dim));
  const auto rk0 = uniform<Act>(g, std::size_t(P * W * Hk * D), -2.0, 2.0);
  const auto rv0 = uniform<Act>(g, std::size_t(P * W * Hv * D));
  auto rk_ref = rk0, rv_ref = rv0;
  std::vector<Act> rk(rk0.size()), rv(rv0.size()), rk_pre(rk0.size()), rv_pre(rv0.size());
  backend_arrays<Backend> mem(be);
  Act* d_rk = mem.put(rk0); // the step's rings
  Act* d_rv = mem.put(rv0);
  Act* d_rk_pre = mem.put(rk0); // the rings of the rotary-then-step path
  Act* d_rv_pre = mem.put(rv0);
  const std::int32_t* d_slot = mem.put(slot);
  std::int64_t* d_position = mem.put(position);
  std::vector<std::int64_t> offset(position.size()); // rotary's: padding rows at 0
  std::int64_t* d_offset = mem.put(offset);
  const swska_decode_shape shape{B, P, W, Hq, Hk, Hv, D, window_left};
  auto args = [&](const Act* q_, const Act* k_, const Act* v_, Act* o_, Act* rk_, Act* rv_,
                  const std::int32_t* slot_, const std::int64_t* position_, int rdim) {
    swska_decode_args<Act> a = shape.args(q_, k_, v_, o_, rk_, rv_, slot_, position_);
    a.rotary_dim = rdim;
    a.rotary_base = base;
    return a;
  };
  for (int step = 0; step < steps; ++step) {
    CAPTURE(step);
    const auto q = uniform<Act>(g, std::size_t(B * Hq * D), -2.0, 2.0);
    const auto k = uniform<Act>(g, std::size_t(B * Hk * D), -2.0, 2.0);
    const auto v = uniform<Act>(g, std::size_t(B * Hv * D));
    std::vector<Act> o(std::size_t(B * Hq * D)), o_pre(o.size()), o_ref(o.size());
    poison(o);
    poison(o_pre);
    poison(o_ref);
    for (std::size_t b = 0; b < slot.size(); ++b)
      offset[b] = is_padding_slot(slot[b]) ? 0 : position[b];
    mem.set(d_position, position);
    mem.set(d_offset, offset);
    const Act *d_q = mem.put(q), *d_k = mem.put(k), *d_v = mem.put(v);

    // RoPE inside the step.
    Act* d_o = mem.put(o);
    const auto a = args(d_q, d_k, d_v, d_o, d_rk, d_rv, d_slot, d_position, rotary_dim);
    backend_workspace<Backend> ws(be, swska_decode_workspace_bytes(be, a));
    REQUIRE(swska_decode(be, a, ws.get()).ok());
    mem.get(o, d_o);
    mem.get(rk, d_rk);
    mem.get(rv, d_rv);

    // The rotary primitive on copies of q and k, then the step on rotated inputs.
    Act* d_q_rot = mem.put(q);
    Act* d_k_rot = mem.put(k);
    for (const auto& [x, heads] : {std::pair<Act*, index_t>{d_q_rot, Hq}, {d_k_rot, Hk}}) {
      rotary_args<Act> ra;
      ra.x = make_view(x, B, index_t(1), heads, D);
      ra.position_offset = d_offset;
      ra.rotary_dim = rotary_dim;
      ra.base = base;
      REQUIRE(rotary(be, ra).ok());
    }
    Act* d_o_pre = mem.put(o_pre);
    const auto a_pre =
        args(d_q_rot, d_k_rot, d_v, d_o_pre, d_rk_pre, d_rv_pre, d_slot, d_position, 0);
    backend_workspace<Backend> ws_pre(be, swska_decode_workspace_bytes(be, a_pre));
    REQUIRE(swska_decode(be, a_pre, ws_pre.get()).ok());
    mem.get(o_pre, d_o_pre);
    mem.get(rk_pre, d_rk_pre);
    mem.get(rv_pre, d_rv_pre);

    // The reference, RoPE inside the step.
    const auto r = args(q.data(), k.data(), v.data(), o_ref.data(), rk_ref.data(), rv_ref.data(),
                        slot.data(), position.data(), rotary_dim);
    workspace_buffer ws_ref(swska_decode_workspace_bytes(scalar{}, r));
    REQUIRE(swska_decode(scalar{}, r, ws_ref.get()).ok());

    check_swska_decode_rows(o, o_ref, slot, Hq * D, swska_decode_tol<Act>(), "o");
    check_swska_decode_rows(o_pre, o, slot, Hq * D, swska_decode_tol<Act>(),
                            "o of rotary, then the step");
    check_close(rk, rk_ref, rotary_tol<Act>(), 0.0, "ring_k");
    check_close(rk_pre, rk, rotary_tol<Act>(), 0.0, "ring_k of rotary, then the step");
    CHECK(swska_same_bits(rv, rv_ref, 0, rv.size()));
    CHECK(swska_same_bits(rv_pre, rv, 0, rv.size()));
    for (auto& p : position)
      ++p;
  }
  shape.check_unused_rings(rk, rv, rk0, rv0, slot);
}

/// The cases of RoPE inside the decode step (check_swska_decode_rotary): the model's shape at
/// position 2 x 10^5 (a full window, the ring wrapped many times; CUDA: every piece of the split
/// window); rows of very different histories (CUDA: one, two or all pieces) between padding rows
/// with a partial rotary_dim, bf16, another base; f16 on a small ring that wraps; a one-key window
/// (W = 1: o is the row's own value, the rotated key still goes into the ring); two key heads of
/// 24 query heads at D = 128 (CUDA: two head chunks each) with rotary_dim 100 (pairs j, j + 50
/// straddle 8-column groups), and at D = 256 with 10 query heads each (chunks of 5), bf16; an
/// unbounded window; D = 12 with rotary_dim 6 (an odd number of pairs; no vector loads on CUDA).
template <class Backend> void check_swska_decode_rotary_all(const Backend& be) {
  check_swska_decode_rotary<Backend, float>(be, {0}, {200000}, 1, 2049, 16, 1, 16, 128, 2048, 128,
                                            10000.0f, 2);
  check_swska_decode_rotary<Backend, bf16>(be, {-1, 2, -1, 0, 3}, {0, 300, 7, 199999, 1}, 4, 2049,
                                           16, 1, 16, 128, 2048, 64, 500000.0f, 2);
  check_swska_decode_rotary<Backend, f16>(be, {2, -1, 0}, {5, 0, 100000}, 3, 9, 4, 1, 4, 64, 8, 32,
                                          10000.0f, 3);
  check_swska_decode_rotary<Backend, float>(be, {1, 0}, {3, 77}, 2, 1, 2, 1, 2, 32, 0, 32, 10000.0f,
                                            3);
  check_swska_decode_rotary<Backend, float>(be, {1, -1, 0}, {349, 0, 40}, 2, 300, 48, 2, 2, 128,
                                            299, 100, 10000.0f, 2);
  check_swska_decode_rotary<Backend, bf16>(be, {2, -1, 0}, {100, 0, 5}, 3, 40, 20, 2, 10, 256, 39,
                                           128, 10000.0f, 2);
  check_swska_decode_rotary<Backend, float>(be, {1, -1}, {30, 0}, 2, 40, 4, 1, 4, 64, -1, 64,
                                            10000.0f, 2);
  check_swska_decode_rotary<Backend, float>(be, {0, 1}, {20, 3}, 2, 9, 3, 1, 3, 12, 8, 6, 10000.0f,
                                            2);
}

/// Decode at the shapes of a model's window (16 query heads on one key head, 16 value heads,
/// D = 128, window_left 2048, W = 2049), where the CUDA backend splits the window into pieces of
/// >= swska_policy::decode_min_split_keys keys (16, at the default tuning) and uses only as many as
/// a row's history needs: batch 1 with a long history (the ring wrapped, every piece), a short one
/// (one piece) and a middle one (several pieces); a batch whose rows have very different histories
/// with padding rows between them; a batch of padding rows only (nothing is written). The decode
/// paths the other cases do not reach.
template <class Backend> void check_swska_decode_windows_all(const Backend& be) {
  const index_t W = 2049, Hq = 16, Hv = 16, D = 128;
  const int wl = 2048;
  for (const std::int64_t p : {std::int64_t(5000), std::int64_t(10), std::int64_t(200)})
    check_swska_decode_rows_case<Backend, float>(be, {0}, {p}, 1, W, Hq, 1, Hv, D, wl, 2);
  check_swska_decode_rows_case<Backend, bf16>(be, {-1, 2, -1, 0, 3}, {0, 300, 7, 4100, 0}, 5, W, Hq,
                                              1, Hv, D, wl, 2);
  check_swska_decode_rows_case<Backend, float>(be, {-1, -1}, {0, 0}, 2, W, Hq, 1, Hv, D, wl, 1);
  // Unbounded window (W = capacity), one row near the end of its ring.
  check_swska_decode_rows_case<Backend, float>(be, {1, -1}, {700, 0}, 2, 720, 8, 1, 8, 64, -1, 2);
}

/// Decode shapes that reach the edges of CUDA's flash-decoding kernel (backend/cuda/swska.cuh:
/// pieces of >= 16 keys at the default tuning, 2048 / MaxD query heads per CTA): histories of 1, 2,
/// 16 and 17 keys (one piece, exactly one, a second piece of one key) and 33 (a third), rows that
/// go on to the next step's position; a batch of 600 rows (no split: one CTA set per row) with
/// padding rows between them; 24 query heads at D = 128 (two head chunks of 12) over a split window
/// that wraps its ring; two key heads of 10 query heads each at D = 256 (head chunks of 5) with 10
/// shared value heads, bf16.
template <class Backend> void check_swska_decode_pieces_all(const Backend& be) {
  check_swska_decode_rows_case<Backend, bf16>(be, {0, 1, 2, 3, 4, 5}, {0, 1, 15, 16, 31, 32}, 6,
                                              513, 16, 1, 16, 128, 512, 2);
  std::vector<std::int32_t> slot;
  std::vector<std::int64_t> position;
  for (std::int32_t b = 0; b < 600; ++b) {
    slot.push_back(b % 97 == 5 ? padding_slot : 599 - b);
    position.push_back((std::int64_t(b) * 37) % 101);
  }
  check_swska_decode_rows_case<Backend, float>(be, slot, position, 600, 24, 8, 1, 8, 64, 23, 2);
  check_swska_decode_rows_case<Backend, float>(be, {1, 0}, {349, 40}, 2, 300, 24, 1, 24, 128, 299,
                                               2);
  check_swska_decode_rows_case<Backend, bf16>(be, {2, -1, 0}, {100, 0, 5}, 3, 40, 20, 2, 10, 256,
                                              39, 2);
}

/// Ring stores of the shapes the CUDA kernel treats differently: sequences with many more tokens
/// than the ring (only the last W are written, the ring wraps at a start position), shorter than
/// the ring, empty, padding (slot -1: its ring untouched); the model's rows (D = 128, 16 value
/// heads: 16-byte vectors) and rows that are not a multiple of 16 bytes (element copies).
template <class Backend> void check_swska_ring_store_shapes_all(const Backend& be) {
  check_swska_ring_store<Backend, bf16>(be, {1,
                                             700,
                                             1,
                                             16,
                                             128,
                                             6,
                                             65,
                                             {0, 300, 301, 301, 620, 700},
                                             {5, -1, 0, 2, 3},
                                             {0, 7, 0, 1000, 64}});
  check_swska_ring_store<Backend, float>(
      be, {4, 9, 1, 16, 128, 5, 100, {}, {4, 0, -1, 1}, {0, 95, 3, 2000}});
  check_swska_ring_store<Backend, bf16>(be, {1, 30, 1, 3, 12, 3, 7, {0, 10, 30}, {}, {3, 0}});
  check_swska_ring_store<Backend, f16>(be, {2, 25, 2, 1, 20, 2, 8, {}, {1, -1}, {}});
}

/// The prefill cases every backend runs.
template <class Backend> void check_swska_prefill_all(const Backend& be) {
  // Rodimus+ tiling (one key head), windows smaller and larger than T, unbounded; T = 150
  // crosses key and query tiles.
  for (int wl : {7, 70, 400, -1})
    check_swska_prefill<Backend, float>(be, {2, 150, 4, 1, 4, 128, wl, {}, {}});
  // Several key heads, shared values.
  check_swska_prefill<Backend, float>(be, {2, 37, 4, 2, 1, 64, 9, {}, {}});
  check_swska_prefill<Backend, float>(be, {1, 33, 6, 3, 2, 32, -1, {}, {}});
  // Rodimus+ head counts (16 query heads on one key head, 16 value heads), head dim 100.
  check_swska_prefill<Backend, float>(be, {1, 45, 16, 1, 16, 100, 20, {}, {}});
  // Packed sequences (one empty, odd lengths), bounded and unbounded.
  check_swska_prefill<Backend, float>(be, {1, 90, 4, 1, 4, 64, 10, {0, 3, 3, 20, 90}, {}});
  check_swska_prefill<Backend, float>(be, {1, 90, 2, 1, 2, 64, -1, {0, 41, 41, 90}, {}});
  // History rings: bounded window (W = window_left + 1) and unbounded (W = capacity), a
  // different position per sequence.
  check_swska_prefill<Backend, float>(be, {2, 30, 4, 1, 4, 64, 11, {}, {5, 40}, 12});
  check_swska_prefill<Backend, float>(be, {1, 50, 4, 1, 4, 32, 20, {0, 17, 50}, {0, 77}, 21});
  check_swska_prefill<Backend, float>(be, {2, 20, 2, 1, 2, 64, -1, {}, {9, 3}, 12});
  check_swska_prefill<Backend, float>(
      be, {1, 61, 8, 1, 8, 128, 33, {0, 1, 30, 30, 61}, {100, 3, 0, 34}, 34});
  // A padding sequence (slot -1), packed and batched: skipped, its o rows untouched.
  check_swska_prefill<Backend, float>(
      be, {1, 61, 8, 1, 8, 128, 33, {0, 1, 30, 30, 61}, {100, 3, 0, 34}, 34, 1});
  check_swska_prefill<Backend, float>(be, {2, 30, 4, 1, 4, 64, 11, {}, {5, 40}, 12, 0});
  // ... also when the padding sequence has no history (history_len 0: nothing to read, still
  // skipped), packed and batched.
  check_swska_prefill<Backend, float>(be, {1, 50, 4, 1, 4, 32, 20, {0, 17, 50}, {0, 77}, 21, 0});
  check_swska_prefill<Backend, float>(be, {2, 30, 4, 1, 4, 64, 11, {}, {0, 40}, 12, 0});
  // 16-bit activations.
  check_swska_prefill<Backend, bf16>(be, {2, 70, 4, 1, 4, 128, 33, {}, {}});
  check_swska_prefill<Backend, bf16>(be, {1, 40, 4, 1, 4, 64, 15, {0, 13, 40}, {7, 29}, 16});
  check_swska_prefill<Backend, f16>(be, {1, 40, 2, 1, 2, 16, -1, {}, {}});
  // Head dimensions off the CPU SIMD path (the scalar reference runs there); the largest one.
  check_swska_prefill<Backend, float>(be, {1, 20, 3, 1, 3, 48, 8, {}, {}});
  check_swska_prefill<Backend, float>(be, {1, 19, 2, 1, 2, 256, 6, {}, {3}, 7});
  // No tokens.
  check_swska_prefill<Backend, float>(be, {2, 0, 2, 1, 2, 32, 5, {}, {}});
}

/// The decode cases every backend runs.
template <class Backend> void check_swska_decode_all(const Backend& be) {
  // Rodimus+ shape (one shared key head, one value head per query head), a bounded window
  // that wraps the ring, more keys than one key block.
  check_swska_decode<Backend, float>(be, 3, 4, 150, 8, 1, 8, 128, 149);
  // Shared values too, several key heads, short window.
  check_swska_decode<Backend, float>(be, 2, 3, 6, 4, 2, 1, 64, 5);
  // Unbounded attention (W = capacity).
  check_swska_decode<Backend, float>(be, 3, 3, 40, 4, 1, 4, 32, -1);
  // A Coder-sized window (2048 + 1 keys) for one row: the CUDA backend splits it.
  check_swska_decode<Backend, float>(be, 1, 2, 2049, 16, 1, 16, 128, 2048, 2);
  // 16-bit activations and rings.
  check_swska_decode<Backend, bf16>(be, 3, 4, 70, 4, 1, 4, 64, 66);
  check_swska_decode<Backend, bf16>(be, 2, 3, 513, 16, 1, 16, 100, 512, 2);
  check_swska_decode<Backend, f16>(be, 2, 2, 9, 2, 1, 2, 16, 8);
  // Head dimensions off the CPU SIMD path (not 2^i SIMD widths): the scalar reference runs there.
  check_swska_decode<Backend, float>(be, 2, 2, 9, 3, 1, 3, 48, 8);
  check_swska_decode<Backend, float>(be, 2, 2, 9, 2, 1, 2, 12, 8);
  check_swska_decode<Backend, float>(be, 3, 4, 33, 4, 1, 4, 256, 32);
  // Split windows at head dims CUDA's combine does not take in whole 16-byte pieces: D % 4 != 0
  // (element loads), and D = 200 (a second column block of 72); with few pieces (its 128-thread
  // kernel) and with 69 or 128 (the 256-thread one, swska_policy::combine_wide_splits).
  check_swska_decode<Backend, float>(be, 1, 2, 100, 4, 1, 4, 6, 99, 2);
  check_swska_decode<Backend, float>(be, 1, 2, 150, 4, 1, 4, 200, 149, 2);
  check_swska_decode<Backend, float>(be, 1, 2, 2049, 2, 1, 2, 6, 2048, 2);
  check_swska_decode<Backend, float>(be, 1, 2, 1100, 2, 1, 2, 200, 1099, 2);
  // More (row, key head) items than a CUDA grid holds (65535): the decode kernel's grid-stride
  // loop reuses its shared memory from one item to the next.
  check_swska_decode<Backend, float>(be, 4200, 4201, 4, 16, 16, 1, 32, 3, 1);
  check_swska_decode_windows_all(be);
  check_swska_decode_pieces_all(be);
  check_swska_decode_rotary_all(be);
}

/// The ring store and pipeline cases every backend runs.
template <class Backend> void check_swska_ring_store_all(const Backend& be) {
  // Packed, sequences longer and shorter than the ring, an empty one, a skipped slot.
  check_swska_ring_store<Backend, float>(
      be, {1, 40, 1, 4, 32, 5, 8, {0, 3, 3, 30, 40}, {4, 0, -1, 2}, {5, 0, 7, 100}});
  // Batched, no slots (slot n), no start positions (0), T > W.
  check_swska_ring_store<Backend, bf16>(be, {3, 11, 1, 2, 64, 4, 6, {}, {}, {}});
  // Batched, start positions, T < W.
  check_swska_ring_store<Backend, f16>(be, {2, 5, 2, 2, 16, 3, 9, {}, {2, 0}, {4, 13}});
  check_swska_chunked_then_decode<Backend, float>(be, 4, 4, 64, 6);
  check_swska_chunked_then_decode<Backend, float>(be, 8, 8, 100, -1);
  check_swska_chunked_then_decode<Backend, bf16>(be, 16, 16, 128, 20);
  check_swska_ring_store_shapes_all(be);
}

// ---- The rounded mode (CUDA's bf16 tensor-core prefill, cuda_matmul::rounded) ----
//
// That kernel (backend/cuda/swska_prefill_mma.cuh) rounds q, k, v (and the history rings) to bf16
// once, computes the scores, softmax and sums in f32 and rounds the weights p to bf16 for the PV
// product. The reference is the scalar prefill (double) on the ROUNDED inputs (what the tensor
// cores multiply, as linear_cases.hpp does for a split x), and the bound is derived per output
// element from sums of |terms| (swska_rounded_bound). Outputs are NaN-poisoned, so an element
// the kernel forgets is caught (valid packed offsets cover every token; the rows of skipped
// sequences, which must stay NaN, are a CUDA-only case: tests/cuda/test_swska.cu). The body was
// tried on the scalar backend when written: it meets the bound with bf16 Act (the input rounding
// is exact) and breaks it with f32 Act (1.3 x the bound: the rounding of q, k, v it leaves out).

/// x rounded to bf16 once (round to nearest even) and stored back as T (exact for bf16 T).
template <class T> std::vector<T> swska_round_bf16(const std::vector<T>& x) {
  return round_bf16(x);
}

/// The per-element bound of the rounded mode, for one call:
///   |o_d - o_ref_d| <= (1 + u_o) (rel A_d + 2 u_o |o_ref_d|)
/// with o_ref the exact attention over the rounded q, k, v (rounded to Act) and
/// A_d = sum_j w_j |v_jd| (w_j the exact softmax weights: the reference run on |v|), where
///   rel = (1 + u) (1 + e_p)^2 (1 + K 2^-23) - 1:
///   u = 2^-8: each p_j is rounded to bf16 for the PV product (a relative u per term of
///     sum_j p_j v_jd; the row sum l adds the unrounded p_j);
///   e_p = exp(dlt) (1 + 2^-21) - 1, the relative error of one unnormalised weight p_j: its
///     score is a sum of D products of bf16 values (each exact in f32) accumulated in f32, then
///     scaled by scale * log2(e) and reduced by the row max, all in f32, so it is off by at most
///     dlt = (D + 6) 2^-24 * 2 sigma in natural-log units, with sigma = scale D max|q| max|k|
///     bounding scale sum_d |q_d k_jd| (and |s - max| <= 2 sigma); the kernel's 2^x
///     (ex2.approx.ftz) adds 2 ulps (2^-22), and flushes a p below 2^-126 to 0 (an absolute
///     error under 2^-126 |v_jd| / l, far below the output's rounding).
///     A weight w_j = p_j / l is then off by at most (1 + e_p)^2 - 1 relative;
///   K 2^-23: the f32 sums over at most K keys of l and of p_j v_jd;
///   u_o: the unit roundoff of the output dtype Act (o and o_ref are each rounded once).
struct swska_rounded_bound {
  double rel = 0, u_o = 0;
  double operator()(double a_d, double o_ref_d) const {
    return (1 + u_o) * (rel * a_d + 2 * u_o * std::fabs(o_ref_d));
  }
};

template <class Act>
swska_rounded_bound swska_rounded_tol(index_t D, double scale, double max_q, double max_k,
                                      index_t K) {
  const double u = 1.0 / 256, ulp24 = 1.0 / 16777216;
  const double sigma = scale * double(D) * max_q * max_k;
  const double dlt = double(D + 6) * ulp24 * 2 * sigma;
  const double e_p = std::exp(dlt) * (1 + 2 * ulp24 * 4) - 1; // 1 + 2^-21
  swska_rounded_bound b;
  b.rel = (1 + u) * (1 + e_p) * (1 + e_p) * (1 + double(K) * 2 * ulp24) - 1;
  if constexpr (std::is_same_v<Act, bf16>)
    b.u_o = 1.0 / 256;
  else if constexpr (std::is_same_v<Act, f16>)
    b.u_o = 1.0 / 2048;
  else
    b.u_o = ulp24;
  return b;
}

/// Per element: o within `bound` of o_ref (a_ref: the reference on |v|), or NaN where o_ref is
/// still NaN (the poison of an element nothing writes).
template <class Act>
void check_swska_rounded_close(const std::vector<Act>& o, const std::vector<Act>& o_ref,
                               const std::vector<Act>& a_ref, const swska_rounded_bound& bound,
                               const char* what) {
  REQUIRE(o.size() == o_ref.size());
  REQUIRE(a_ref.size() == o_ref.size());
  std::size_t bad = 0, first_bad = 0, unwritten = 0;
  double worst = 0; // max |o - o_ref| / bound over the written elements
  for (std::size_t i = 0; i < o.size(); ++i) {
    const double x = load_as<double>(o[i]), r = load_as<double>(o_ref[i]);
    if (std::isnan(r)) {
      if (!std::isnan(x) && bad++ == 0) first_bad = i;
      ++unwritten;
      continue;
    }
    const double lim = bound(load_as<double>(a_ref[i]), r), err = std::fabs(x - r);
    if (!(err <= lim) && bad++ == 0) first_bad = i;
    if (lim > 0 && err / lim > worst) worst = err / lim;
  }
  CAPTURE(what);
  CAPTURE(bound.rel);
  CAPTURE(worst);
  CAPTURE(unwritten);
  CAPTURE(first_bad);
  CHECK(bad == 0);
}

/// One prefill call with `be` in the rounded mode (the caller sets be.matmul) against the scalar
/// reference on the bf16-rounded inputs, the bound of swska_rounded_bound; the history rings are
/// only read (bit for bit). with_workspace false: the call gets no workspace (CUDA: the f32 tiles
/// are then converted by plain loads instead of copied from the workspace's bf16 k and v).
template <class Backend, class Act>
void check_swska_prefill_rounded(const Backend& be, const swska_prefill_case& c,
                                 bool with_workspace = true) {
  CAPTURE(c.B);
  CAPTURE(c.T);
  CAPTURE(c.Hq);
  CAPTURE(c.Hk);
  CAPTURE(c.Hv);
  CAPTURE(c.D);
  CAPTURE(c.window_left);
  CAPTURE(c.cu_seqlens.size());
  CAPTURE(c.history_len.size());
  CAPTURE(c.W);
  CAPTURE(c.scale);
  CAPTURE(with_workspace);
  const index_t B = c.B, T = c.T, Hq = c.Hq, Hk = c.Hk, Hv = c.Hv, D = c.D;
  auto g = rng(std::uint64_t(B * 7907 + T * 137 + Hq * 19 + Hk * 7 + D + c.window_left + 3));
  const auto q = uniform<Act>(g, std::size_t(B * T * Hq * D), -2.0, 2.0);
  const auto k = uniform<Act>(g, std::size_t(B * T * Hk * D), -2.0, 2.0);
  const auto v = uniform<Act>(g, std::size_t(B * T * Hv * D));
  std::vector<Act> o(std::size_t(B * T * Hq * D)), o_ref(o.size()), a_ref(o.size());
  poison(o);
  poison(o_ref);
  poison(a_ref);
  const index_t N = index_t(c.history_len.size()), P = N + 1;
  const auto hk = uniform<Act>(g, std::size_t(P * c.W * Hk * D), -2.0, 2.0);
  const auto hv = uniform<Act>(g, std::size_t(P * c.W * Hv * D));
  std::vector<std::int32_t> hslot;
  for (index_t n = 0; n < N; ++n)
    hslot.push_back(std::int32_t(P - 1 - n)); // reversed: slots differ from sequence numbers

  auto args = [&](auto... arrays) { return swska_case_args<Act>(c, arrays...); };

  backend_arrays<Backend> mem(be);
  Act* d_o = mem.put(o);
  Act* d_hk = mem.put(hk);
  Act* d_hv = mem.put(hv);
  const auto a = args(mem.put(q), mem.put(k), mem.put(v), d_o, mem.put(c.cu_seqlens), d_hk, d_hv,
                      mem.put(hslot), mem.put(c.history_len));
  backend_workspace<Backend> ws(be, with_workspace ? swska_prefill_workspace_bytes(be, a) : 0);
  REQUIRE(swska_prefill(be, a, with_workspace ? ws.get() : workspace{}).ok());
  mem.get(o, d_o);
  std::vector<Act> hk_after(hk.size()), hv_after(hv.size());
  mem.get(hk_after, d_hk);
  mem.get(hv_after, d_hv);
  CHECK(swska_same_bits(hk_after, hk, 0, hk.size())); // the history is only read
  CHECK(swska_same_bits(hv_after, hv, 0, hv.size()));

  // The reference on what the tensor cores multiply, and on |v| for the sums of |terms|.
  const auto qr = swska_round_bf16(q), kr = swska_round_bf16(k), vr = swska_round_bf16(v);
  const auto hkr = swska_round_bf16(hk), hvr = swska_round_bf16(hv);
  auto vabs = vr, hvabs = hvr;
  for (auto* x : {&vabs, &hvabs})
    for (auto& e : *x)
      e = store_as<Act>(std::fabs(load_as<double>(e)));
  const auto r = args(qr.data(), kr.data(), vr.data(), o_ref.data(), c.cu_seqlens.data(),
                      hkr.data(), hvr.data(), hslot.data(), c.history_len.data());
  workspace_buffer ws_ref(swska_prefill_workspace_bytes(scalar{}, r));
  REQUIRE(swska_prefill(scalar{}, r, ws_ref.get()).ok());
  const auto ra = args(qr.data(), kr.data(), vabs.data(), a_ref.data(), c.cu_seqlens.data(),
                       hkr.data(), hvabs.data(), hslot.data(), c.history_len.data());
  REQUIRE(swska_prefill(scalar{}, ra, ws_ref.get()).ok());

  const double scale = c.scale != 0.0f ? std::fabs(double(c.scale)) : 1.0 / std::sqrt(double(D));
  const double max_q = max_abs(qr), max_k = std::max(max_abs(kr), max_abs(hkr));
  const index_t K = T + c.W; // keys one query sees at most
  check_swska_rounded_close(o, o_ref, a_ref, swska_rounded_tol<Act>(D, scale, max_q, max_k, K),
                            "o");
}

/// The rounded-mode cases (CUDA's tensor-core prefill: D 64 and 128; the backend is passed with
/// be.matmul already set to rounded). Query tiles of 64 and 128 tokens and key tiles of 32 and 64
/// keys are crossed; G = Hq / Hk from 1 to 16 (odd G leaves a head chunk half used).
template <class Backend> void check_swska_prefill_rounded_all(const Backend& be) {
  // One sequence; batched Rodimus+ heads (G = 16, one key head, 16 value heads).
  check_swska_prefill_rounded<Backend, float>(be, {1, 150, 4, 1, 4, 128, 70, {}, {}});
  check_swska_prefill_rounded<Backend, float>(be, {3, 130, 16, 1, 16, 128, 33, {}, {}});
  // Windows smaller and larger than T, unbounded.
  for (int wl : {7, 64, 300, -1})
    check_swska_prefill_rounded<Backend, float>(be, {2, 150, 4, 1, 4, 128, wl, {}, {}});
  // G = 1 (one head per key head, and Hq = Hk = 2), odd G, shared values (Hv = 1), D = 64.
  check_swska_prefill_rounded<Backend, float>(be, {2, 100, 1, 1, 1, 64, 20, {}, {}});
  check_swska_prefill_rounded<Backend, float>(be, {1, 70, 2, 2, 2, 64, -1, {}, {}});
  check_swska_prefill_rounded<Backend, float>(be, {1, 80, 3, 1, 3, 64, 30, {}, {}});
  check_swska_prefill_rounded<Backend, float>(be, {1, 90, 4, 1, 1, 128, 50, {}, {}});
  // Packed: sequences shorter and longer than a tile (64 tokens), an empty one, one token;
  // unbounded. (Skipped sequences, whose rows must stay NaN: tests/cuda/test_swska.cu.)
  check_swska_prefill_rounded<Backend, float>(
      be, {1, 200, 4, 1, 4, 64, 40, {0, 5, 5, 70, 71, 200}, {}});
  check_swska_prefill_rounded<Backend, float>(be, {1, 150, 2, 1, 2, 128, -1, {0, 100, 150}, {}});
  // History rings: bounded windows whose rings have wrapped (history 100 > W = 41), packed with
  // history, unbounded (W = capacity).
  check_swska_prefill_rounded<Backend, float>(be, {2, 90, 4, 1, 4, 128, 40, {}, {100, 7}, 41});
  check_swska_prefill_rounded<Backend, float>(
      be, {1, 120, 16, 1, 16, 64, 63, {0, 17, 17, 120}, {0, 250, 5}, 64});
  check_swska_prefill_rounded<Backend, float>(be, {2, 40, 2, 1, 2, 64, -1, {}, {30, 3}, 80});
  check_swska_prefill_rounded<Backend, float>(be, {2, 260, 4, 1, 4, 128, 130, {}, {150, 20}, 131});
  // A window of the token itself only; a negative and a large scale (the max is taken after
  // scaling, so the sign matters).
  check_swska_prefill_rounded<Backend, float>(be, {1, 150, 4, 1, 4, 128, 0, {}, {}});
  check_swska_prefill_rounded<Backend, float>(be, {2, 140, 4, 1, 4, 128, 60, {}, {}, 0, -1, -0.2f});
  check_swska_prefill_rounded<Backend, bf16>(be, {1, 130, 2, 1, 2, 64, -1, {}, {}, 0, -1, 0.5f});
  // bf16 (the model's dtype: the rounding of q, k, v is exact) and f16 activations.
  check_swska_prefill_rounded<Backend, bf16>(be, {2, 140, 16, 1, 16, 128, 65, {}, {}});
  check_swska_prefill_rounded<Backend, bf16>(be,
                                             {1, 100, 4, 1, 4, 64, 20, {0, 33, 100}, {50, 9}, 21});
  check_swska_prefill_rounded<Backend, f16>(be, {1, 70, 2, 1, 2, 64, 30, {}, {}});
  // Many key tiles (odd and even counts through the two pipeline stages), T not a multiple of
  // 64, a one-token sequence in a packed batch.
  check_swska_prefill_rounded<Backend, bf16>(be, {1, 333, 2, 1, 2, 64, 200, {}, {}});
  check_swska_prefill_rounded<Backend, float>(be, {1, 333, 2, 1, 2, 128, -1, {0, 1, 200, 333}, {}});
  // No workspace: f32 tiles converted by plain loads (CUDA), with and without history.
  check_swska_prefill_rounded<Backend, float>(be, {2, 150, 4, 1, 4, 128, 70, {}, {}}, false);
  check_swska_prefill_rounded<Backend, float>(
      be, {1, 120, 16, 1, 16, 64, 63, {0, 17, 17, 120}, {0, 250, 5}, 64}, false);
  // No tokens.
  check_swska_prefill_rounded<Backend, float>(be, {2, 0, 2, 1, 2, 64, 5, {}, {}});
  // Head dims the tensor-core kernel does not serve run the f32 kernel in the rounded mode too:
  // the exact mode's tolerance.
  check_swska_prefill<Backend, float>(be, {1, 45, 16, 1, 16, 100, 20, {}, {}});
  check_swska_prefill<Backend, bf16>(be, {1, 40, 4, 1, 4, 32, 15, {0, 13, 40}, {7, 29}, 16});
}

} // namespace rodimus::test
