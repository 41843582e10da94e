// swska_prefill on cpu<Arch> against the scalar reference on fresh random inputs with poisoned
// outputs: batched and packed (cu_seqlens, with an empty sequence) inputs, windows smaller and
// larger than T and unbounded, key blocks crossed, Hq / Hk / Hv tilings, history rings (bounded
// and unbounded), bf16 activations and head dimensions off the SIMD path.
//
// swska_decode on cpu<Arch> against the scalar reference: several decode steps over ring pools on
// fresh random inputs (the rings start random too), with padding rows, distinct slots, bounded
// windows that wrap around the ring, unbounded attention, shared and per-head keys/values, and
// head dimensions on and off the SIMD path.
//
// Tolerances, relative to max|o|: prefill f32 1e-5 (online softmax in f32); decode f32 2e-5 (scores
// of D products accumulated in f32 and an f32 exp against the double reference; the weights are <=
// 1 and sum to 1, so the error stays at a few f32 ulps of the largest value). bf16 / f16 outputs:
// one rounding step of the output, 2^-7 / 2^-10. The rings are copies of the inputs: exact.
//
// Bad history arguments (history_len, history_slot, the rings) go through the scalar reference and
// cpu<Arch> alike: the same status code and argument name, and the poisoned output left as it was.
// So do bad decode slots and positions (out of the pool, repeated, negative, past an unbounded
// ring), which must leave the rings and the output untouched.
#include "support/primitive_support.hpp"
#include "test_cpu_support.hpp"

#include <cstring>

#include "rodimus/backend/cpu/swska.hpp"

using namespace rodimus;

namespace {

template <class T> double out_tolerance() {
  if (std::is_same_v<T, bf16>) return 1.0 / 128;
  if (std::is_same_v<T, f16>) return 1.0 / 1024;
  return 2e-5;
}

template <class Arch, class Act>
void check_decode(index_t B, index_t P, index_t W, index_t Hq, index_t Hk, index_t Hv, index_t D,
                  int window_left, bool pool) {
  CAPTURE(B);
  CAPTURE(W);
  CAPTURE(Hq);
  CAPTURE(Hk);
  CAPTURE(Hv);
  CAPTURE(D);
  CAPTURE(window_left);
  CAPTURE(pool);
  auto g = test::rng(std::uint64_t(B * 7919 + W * 131 + Hq * 17 + Hk * 5 + D));
  auto rk = test::uniform<Act>(g, std::size_t(P * W * Hk * D));
  auto rv = test::uniform<Act>(g, std::size_t(P * W * Hv * D));
  auto rk_ref = rk, rv_ref = rv;
  std::vector<std::int32_t> slot;
  std::vector<std::int64_t> position;
  for (index_t b = 0; b < B; ++b) {
    slot.push_back(b == 1 ? -1 : std::int32_t(P - 1 - b)); // row 1 is padding
    // Unbounded attention needs position < W; bounded windows start past the ring length.
    position.push_back(window_left < 0 ? b : std::int64_t(W + 3 * b));
  }
  cpu<Arch> be{pool ? &test::test_pool() : nullptr};
  for (int step = 0; step < 4; ++step) {
    auto q = test::uniform<Act>(g, std::size_t(B * Hq * D), -2.0, 2.0);
    auto k = test::uniform<Act>(g, std::size_t(B * Hk * D), -2.0, 2.0);
    auto v = test::uniform<Act>(g, std::size_t(B * Hv * D));
    std::vector<Act> o(std::size_t(B * Hq * D)), o_ref(o.size());
    test::poison(o);
    test::poison(o_ref);
    swska_decode_args<Act> a;
    a.q = make_view<const Act>(q.data(), B, Hq, D);
    a.k = make_view<const Act>(k.data(), B, Hk, D);
    a.v = make_view<const Act>(v.data(), B, Hv, D);
    a.o = make_view(o.data(), B, Hq, D);
    a.ring_k = make_view(rk.data(), P, W, Hk, D);
    a.ring_v = make_view(rv.data(), P, W, Hv, D);
    a.slot = slot.data();
    a.position = position.data();
    a.window_left = window_left;
    test::test_workspace ws(swska_decode_workspace_bytes(be, a));
    REQUIRE(swska_decode(be, a, ws.get()).ok());
    a.o = make_view(o_ref.data(), B, Hq, D);
    a.ring_k = make_view(rk_ref.data(), P, W, Hk, D);
    a.ring_v = make_view(rv_ref.data(), P, W, Hv, D);
    test::test_workspace ws_ref(swska_decode_workspace_bytes(scalar{}, a));
    REQUIRE(swska_decode(scalar{}, a, ws_ref.get()).ok());
    test::check_close(o, o_ref, out_tolerance<Act>(), 0.0, "o");
    test::check_close(rk, rk_ref, 0.0, 0.0, "ring_k");
    test::check_close(rv, rv_ref, 0.0, 0.0, "ring_v");
    for (auto& p : position)
      ++p;
  }
}

template <class T> double prefill_tolerance() {
  if (std::is_same_v<T, bf16>) return 1.0 / 128;
  if (std::is_same_v<T, f16>) return 1.0 / 1024;
  return 1e-5;
}

struct prefill_case {
  index_t B, T, Hq, Hk, Hv, D;
  int window_left;
  std::vector<std::int64_t> cu_seqlens;  // empty: batched
  std::vector<std::int64_t> history_len; // empty: no history
  index_t W = 0;                         // history ring length
};

template <class Arch, class Act> void check_prefill(const prefill_case& c, bool pool) {
  CAPTURE(c.B);
  CAPTURE(c.T);
  CAPTURE(c.Hq);
  CAPTURE(c.Hk);
  CAPTURE(c.Hv);
  CAPTURE(c.D);
  CAPTURE(c.window_left);
  CAPTURE(c.cu_seqlens.size());
  CAPTURE(c.history_len.size());
  CAPTURE(pool);
  const index_t B = c.B, T = c.T, Hq = c.Hq, Hk = c.Hk, Hv = c.Hv, D = c.D;
  auto g = test::rng(std::uint64_t(B * 7919 + T * 131 + Hq * 17 + Hk * 5 + D + c.window_left));
  auto q = test::uniform<Act>(g, std::size_t(B * T * Hq * D), -2.0, 2.0);
  auto k = test::uniform<Act>(g, std::size_t(B * T * Hk * D), -2.0, 2.0);
  auto v = test::uniform<Act>(g, std::size_t(B * T * Hv * D));
  std::vector<Act> o(std::size_t(B * T * Hq * D)), o_ref(o.size());
  test::poison(o);
  test::poison(o_ref);
  swska_args<Act> a;
  a.q = make_view<const Act>(q.data(), B, T, Hq, D);
  a.k = make_view<const Act>(k.data(), B, T, Hk, D);
  a.v = make_view<const Act>(v.data(), B, T, Hv, D);
  a.o = make_view(o.data(), B, T, Hq, D);
  a.window_left = c.window_left;
  if (!c.cu_seqlens.empty()) {
    a.cu_seqlens = c.cu_seqlens.data();
    a.num_seqs = std::int64_t(c.cu_seqlens.size()) - 1;
  }
  const index_t N = index_t(c.history_len.size()), P = N + 1;
  auto hk = test::uniform<Act>(g, std::size_t(P * c.W * Hk * D), -2.0, 2.0);
  auto hv = test::uniform<Act>(g, std::size_t(P * c.W * Hv * D));
  std::vector<std::int32_t> hslot;
  for (index_t n = 0; n < N; ++n)
    hslot.push_back(std::int32_t(P - 1 - n)); // reversed: slots differ from sequence numbers
  if (N > 0) {
    a.history_k = make_view<const Act>(hk.data(), P, c.W, Hk, D);
    a.history_v = make_view<const Act>(hv.data(), P, c.W, Hv, D);
    a.history_slot = hslot.data();
    a.history_len = c.history_len.data();
  }
  cpu<Arch> be{pool ? &test::test_pool() : nullptr};
  test::test_workspace ws(swska_prefill_workspace_bytes(be, a));
  REQUIRE(swska_prefill(be, a, ws.get()).ok());
  a.o = make_view(o_ref.data(), B, T, Hq, D);
  test::test_workspace ws_ref(swska_prefill_workspace_bytes(scalar{}, a));
  REQUIRE(swska_prefill(scalar{}, a, ws_ref.get()).ok());
  test::check_close(o, o_ref, prefill_tolerance<Act>(), 0.0, "o");
}

// Index arrays of the bad history cases below (two packed sequences, rings P = 3, W = 4; static
// so that the cases can be plain functions).
const std::int64_t kNegativeFirstLen[2] = {-1, 3};
const std::int64_t kNegativeSecondLen[2] = {2, -1};
const std::int64_t kLongLen[2] = {2, 5};            // 5 > W = 4
const std::int32_t kSlotPastPool[2] = {0, 3};       // P = 3
const std::int32_t kNegativeSlot[2] = {-1, 1};      // with history_len[0] = 2 > 0
const std::int64_t kNoSecondHistory[2] = {2, 0};    // sequence 1 reads no ring ...
const std::int32_t kUnusedSlotPastPool[2] = {2, 9}; // ... so its slot is never looked at

} // namespace

TEST_CASE_TEMPLATE("cpu swska_prefill refuses bad history arguments like the reference, before "
                   "writing o",
                   Arch, RODIMUS_TEST_CPU_ARCHS) {
  if (!test::arch_runs_here<Arch>()) return;
  // f32, D = 32 and unit strides: the cpu backend takes its SIMD path (AVX2 and AVX-512), so its
  // own host-side checks run rather than the scalar fallback's.
  const index_t T = 8, Hq = 2, Hk = 1, Hv = 2, D = 32, P = 3, W = 4;
  auto g = test::rng(4099);
  auto q = test::uniform<float>(g, std::size_t(T * Hq * D));
  auto k = test::uniform<float>(g, std::size_t(T * Hk * D));
  auto v = test::uniform<float>(g, std::size_t(T * Hv * D));
  auto rk = test::uniform<float>(g, std::size_t(P * W * Hk * D));
  auto rv = test::uniform<float>(g, std::size_t(P * W * Hv * D));
  std::vector<float> o(std::size_t(T * Hq * D));
  const std::vector<std::int64_t> cu = {0, 3, 8};
  const std::vector<std::int64_t> history_len = {2, 3};
  const std::vector<std::int32_t> history_slot = {2, 0};
  swska_args<float> valid;
  valid.q = make_view<const float>(q.data(), 1, T, Hq, D);
  valid.k = make_view<const float>(k.data(), 1, T, Hk, D);
  valid.v = make_view<const float>(v.data(), 1, T, Hv, D);
  valid.o = make_view(o.data(), 1, T, Hq, D);
  valid.window_left = 3; // needs W >= min(3, history_len)
  valid.cu_seqlens = cu.data();
  valid.num_seqs = 2;
  valid.history_k = make_view<const float>(rk.data(), P, W, Hk, D);
  valid.history_v = make_view<const float>(rv.data(), P, W, Hv, D);
  valid.history_slot = history_slot.data();
  valid.history_len = history_len.data();

  cpu<Arch> no_pool{nullptr}, with_pool{&test::test_pool()};
  test::test_workspace ws(std::max({swska_prefill_workspace_bytes(scalar{}, valid),
                                    swska_prefill_workspace_bytes(no_pool, valid),
                                    swska_prefill_workspace_bytes(with_pool, valid)}));
  // Runs `a` on every backend with o poisoned first; `check(status)` judges each result.
  auto on_every_backend = [&](const swska_args<float>& a, auto check) {
    const char* names[3] = {"scalar", "cpu", "cpu with pool"};
    for (int b = 0; b < 3; ++b) {
      CAPTURE(std::string(names[b]));
      test::poison(o);
      const status s = b == 0   ? swska_prefill(scalar{}, a, ws.get())
                       : b == 1 ? swska_prefill(no_pool, a, ws.get())
                                : swska_prefill(with_pool, a, ws.get());
      check(s);
    }
  };
  auto accepted = [&](status s) {
    INFO("status: " << to_string(s.code) << " '" << s.what << "'");
    CHECK(s.ok());
    CHECK(test::max_abs(o) < 2.0); // every output written (a NaN would make it infinite)
  };
  on_every_backend(valid, accepted);
  {
    swska_args<float> a = valid; // a sequence without history may carry any slot
    a.history_len = kNoSecondHistory;
    a.history_slot = kUnusedSlotPastPool;
    on_every_backend(a, accepted);
  }

  using bad = test::bad_case<swska_args<float>>;
  const bad cases[] = {
      {"history_len[0] = -1", [](swska_args<float>& a) { a.history_len = kNegativeFirstLen; },
       status_code::bad_argument, "history_len"},
      {"history_len[1] = -1", [](swska_args<float>& a) { a.history_len = kNegativeSecondLen; },
       status_code::bad_argument, "history_len"},
      {"history_len without rings",
       [](swska_args<float>& a) {
         a.history_k = {};
         a.history_v = {};
       },
       status_code::null_pointer, "history_k"},
      {"history_v = nullptr", [](swska_args<float>& a) { a.history_v.data = nullptr; },
       status_code::null_pointer, "history_v"},
      {"history_len = nullptr", [](swska_args<float>& a) { a.history_len = nullptr; },
       status_code::null_pointer, "history_len"},
      {"history_k.shape[3] = 16", [](swska_args<float>& a) { a.history_k.shape[3] = 16; },
       status_code::bad_shape, "history_k"},
      {"history_len 5 > W = 4, unbounded",
       [](swska_args<float>& a) {
         a.history_len = kLongLen;
         a.window_left = -1;
       },
       status_code::bad_argument, "history_len"},
      {"history_len 5, window_left 5 > W = 4",
       [](swska_args<float>& a) {
         a.history_len = kLongLen;
         a.window_left = 5;
       },
       status_code::bad_argument, "history_len"},
      {"history_slot[1] = P", [](swska_args<float>& a) { a.history_slot = kSlotPastPool; },
       status_code::bad_argument, "history_slot"},
      {"history_slot[0] = -1", [](swska_args<float>& a) { a.history_slot = kNegativeSlot; },
       status_code::bad_argument, "history_slot"},
  };
  for (const bad& c : cases) {
    CAPTURE(std::string(c.label));
    swska_args<float> a = valid;
    c.mutate(a);
    on_every_backend(a, [&](status s) {
      test::check_status(s, c.code, c.what);
      CHECK(test::all_nan(o));
    });
  }
  {
    swska_args<float> a = valid; // the same ring length is enough for a window of 4
    a.history_len = kLongLen;
    a.window_left = 4;
    on_every_backend(a, accepted);
  }
}

TEST_CASE_TEMPLATE("cpu swska_prefill matches the scalar reference", Arch, RODIMUS_TEST_CPU_ARCHS) {
  if (!test::arch_runs_here<Arch>()) return;
  for (bool pool : {false, true}) {
    // Rodimus+ tiling (one key head), windows smaller and larger than T, unbounded; T = 150
    // crosses key blocks and query blocks.
    for (int wl : {7, 70, 400, -1})
      check_prefill<Arch, float>({2, 150, 4, 1, 4, 128, wl, {}, {}}, pool);
    // Several key heads, shared values.
    check_prefill<Arch, float>({2, 37, 4, 2, 1, 64, 9, {}, {}}, pool);
    check_prefill<Arch, float>({1, 33, 6, 3, 2, 32, -1, {}, {}}, pool);
    // Packed sequences (one empty), bounded and unbounded.
    check_prefill<Arch, float>({1, 90, 4, 1, 4, 64, 10, {0, 3, 3, 20, 90}, {}}, pool);
    check_prefill<Arch, float>({1, 90, 2, 1, 2, 64, -1, {0, 41, 41, 90}, {}}, pool);
    // History rings: bounded window (W = window_left + 1) and unbounded (W = capacity).
    check_prefill<Arch, float>({2, 30, 4, 1, 4, 64, 11, {}, {5, 40}, 12}, pool);
    check_prefill<Arch, float>({1, 50, 4, 1, 4, 32, 20, {0, 17, 50}, {0, 77}, 21}, pool);
    check_prefill<Arch, float>({2, 20, 2, 1, 2, 64, -1, {}, {9, 3}, 12}, pool);
    // 16-bit activations.
    check_prefill<Arch, bf16>({2, 70, 4, 1, 4, 128, 33, {}, {}}, pool);
    check_prefill<Arch, f16>({1, 40, 2, 1, 2, 16, -1, {}, {}}, pool);
    // Head dimensions off the SIMD path: the scalar reference runs.
    check_prefill<Arch, float>({1, 20, 3, 1, 3, 48, 8, {}, {}}, pool);
  }
}

TEST_CASE_TEMPLATE("cpu swska_decode matches the scalar reference", Arch, RODIMUS_TEST_CPU_ARCHS) {
  if (!test::arch_runs_here<Arch>()) return;
  for (bool pool : {false, true}) {
    // Rodimus+ shape (one shared key head, one value head per query head), a bounded window
    // that wraps the ring, more keys than one phase-1 block.
    check_decode<Arch, float>(3, 4, 150, 8, 1, 8, 128, 149, pool);
    // Shared values too, several key heads, short window.
    check_decode<Arch, float>(2, 3, 6, 4, 2, 1, 64, 5, pool);
    // Unbounded attention (W = capacity).
    check_decode<Arch, float>(3, 3, 40, 4, 1, 4, 32, -1, pool);
    // 16-bit activations and rings.
    check_decode<Arch, bf16>(3, 4, 70, 4, 1, 4, 64, 66, pool);
    check_decode<Arch, f16>(2, 2, 9, 2, 1, 2, 16, 8, pool);
    // Head dimensions off the SIMD path (not 2^i SIMD widths): the scalar reference runs.
    check_decode<Arch, float>(2, 2, 9, 3, 1, 3, 48, 8, pool);
    check_decode<Arch, float>(2, 2, 9, 2, 1, 2, 12, 8, pool);
  }
}

TEST_CASE_TEMPLATE("cpu swska_decode refuses bad slots and positions like the reference, before "
                   "writing",
                   Arch, RODIMUS_TEST_CPU_ARCHS) {
  if (!test::arch_runs_here<Arch>()) return;
  // Two rows, pool of P = 2 rings of W = 4 positions, D = 16 (the SIMD path).
  auto g = test::rng(31);
  const auto q = test::uniform<float>(g, 2 * 16), k = test::uniform<float>(g, 2 * 16),
             v = test::uniform<float>(g, 2 * 16);
  const auto rk0 = test::uniform<float>(g, 2 * 4 * 16), rv0 = test::uniform<float>(g, 2 * 4 * 16);
  struct bad_case {
    const char* what;
    std::vector<std::int32_t> slot;
    std::vector<std::int64_t> position;
    int window_left;
    const char* name;
  };
  const bad_case cases[] = {
      {"slot = P", {0, 2}, {0, 0}, 3, "slot"},
      {"two rows on one slot", {1, 1}, {0, 0}, 3, "slot"},
      {"negative position", {0, 1}, {0, -1}, 3, "position"},
      {"unbounded window, position past the ring", {0, 1}, {4, 0}, -1, "position"},
  };
  thread_pool tp(2);
  for (const auto& c : cases) {
    INFO(c.what);
    for (int be = 0; be < 3; ++be) {
      INFO("backend " << (be == 0 ? "scalar" : be == 1 ? "cpu" : "cpu + pool"));
      std::vector<float> o(2 * 16), rk = rk0, rv = rv0;
      test::poison(o);
      const auto o_before = o;
      swska_decode_args<float> a;
      a.q = make_view<const float>(q.data(), 2, 1, 16);
      a.k = make_view<const float>(k.data(), 2, 1, 16);
      a.v = make_view<const float>(v.data(), 2, 1, 16);
      a.o = make_view(o.data(), 2, 1, 16);
      a.ring_k = make_view(rk.data(), 2, 4, 1, 16);
      a.ring_v = make_view(rv.data(), 2, 4, 1, 16);
      a.slot = c.slot.data();
      a.position = c.position.data();
      a.window_left = c.window_left;
      const cpu<Arch> simd{be == 2 ? &tp : nullptr};
      test::test_workspace ws(swska_decode_workspace_bytes(simd, a));
      const status s =
          be == 0 ? swska_decode(scalar{}, a, ws.get()) : swska_decode(simd, a, ws.get());
      test::check_status(s, status_code::bad_argument, c.name);
      CHECK(std::memcmp(rk.data(), rk0.data(), rk.size() * 4) == 0);
      CHECK(std::memcmp(rv.data(), rv0.data(), rv.size() * 4) == 0);
      CHECK(std::memcmp(o.data(), o_before.data(), o.size() * 4) == 0);
    }
  }
}
