// SW-SKA on cpu<Arch>: the shared bodies (tests/cases/swska_cases.hpp: prefill, decode, ring
// store, chunked prefill then decode, shape errors) against the scalar reference, stamped for
// every instruction set this machine runs, with and without a thread pool.
//
// Host-backend-only cases (below): bad history arguments (history_len, slot), bad decode
// slots and positions (out of the pool, repeated, negative, past an unbounded ring) and bad
// ring-store slots and start positions go through the scalar reference and cpu<Arch> alike: the
// same status code and argument name, and the poisoned output and the rings left as they were.
// They are checks of the index arrays' CONTENTS, which the host backends read before writing
// anything; on CUDA those arrays are device memory the host cannot read, so the CUDA backend skips
// such rows instead of refusing the call (backend/cuda/swska.cuh; tests/cuda/test_swska.cu checks
// that behaviour).
#include "cases/swska_cases.hpp"
#include "support/primitive_support.hpp"
#include "test_cpu_support.hpp"

#include <cstring>

#include "rodimus/backend/cpu/swska.hpp"

using namespace rodimus;

namespace {

template <class Arch> cpu<Arch> backend(bool pool) {
  return cpu<Arch>{pool ? &test::test_pool() : nullptr};
}

// Index arrays of the bad history cases below (two packed sequences, rings P = 3, W = 4; static
// so that the cases can be plain functions).
const std::int64_t kNegativeFirstLen[2] = {-1, 3};
const std::int64_t kNegativeSecondLen[2] = {2, -1};
const std::int64_t kLongLen[2] = {2, 5};      // 5 > W = 4
const std::int32_t kSlotPastPool[2] = {0, 3}; // P = 3
const std::int32_t kSlotMinus2[2] = {-2, 1};  // only -1 is padding (primitives/slots.hpp)
const std::int32_t kSlotMinus5[2] = {0, -5};
const std::int64_t kNoSecondHistory[2] = {2, 0};    // sequence 1 reads no ring, yet ...
const std::int32_t kUnusedSlotPastPool[2] = {2, 9}; // ... its slot must be a valid one
const std::int32_t kFirstPadding[2] = {-1, 0};      // sequence 0 (tokens 0..2) is padding

} // namespace

TEST_CASE_TEMPLATE("cpu swska_prefill matches the scalar reference", Arch, RODIMUS_TEST_CPU_ARCHS) {
  if (!test::arch_runs_here<Arch>()) return;
  for (bool pool : {false, true}) {
    CAPTURE(pool);
    test::check_swska_prefill_all(backend<Arch>(pool));
  }
}

TEST_CASE_TEMPLATE("cpu swska_decode matches the scalar reference", Arch, RODIMUS_TEST_CPU_ARCHS) {
  if (!test::arch_runs_here<Arch>()) return;
  for (bool pool : {false, true}) {
    CAPTURE(pool);
    test::check_swska_decode_all(backend<Arch>(pool));
  }
}

TEST_CASE_TEMPLATE("cpu swska_ring_store and chunked prefill then decode match the scalar "
                   "reference",
                   Arch, RODIMUS_TEST_CPU_ARCHS) {
  if (!test::arch_runs_here<Arch>()) return;
  for (bool pool : {false, true}) {
    CAPTURE(pool);
    test::check_swska_ring_store_all(backend<Arch>(pool));
  }
}

TEST_CASE_TEMPLATE("cpu swska: shape errors give the reference's status", Arch,
                   RODIMUS_TEST_CPU_ARCHS) {
  if (!test::arch_runs_here<Arch>()) return;
  for (bool pool : {false, true})
    test::check_swska_bad_shapes(backend<Arch>(pool));
}

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
  const std::vector<std::int32_t> slot = {2, 0};
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
  valid.slot = slot.data();
  valid.history_len = history_len.data();

  cpu<Arch> no_pool{nullptr}, with_pool{&test::test_pool()};
  test::workspace_buffer ws(std::max({swska_prefill_workspace_bytes(scalar{}, valid),
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
    swska_args<float> a = valid; // a padding sequence is skipped: its o rows stay poisoned
    a.slot = kFirstPadding;
    on_every_backend(a, [&](status s) {
      REQUIRE(s.ok());
      const std::size_t row = std::size_t(Hq * D), first = 3 * row; // tokens 0..2 are padding
      CHECK(test::all_nan(std::vector<float>(o.begin(), o.begin() + std::ptrdiff_t(first))));
      CHECK(test::max_abs(std::vector<float>(o.begin() + std::ptrdiff_t(first), o.end())) < 2.0);
    });
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
      {"slot[1] = P", [](swska_args<float>& a) { a.slot = kSlotPastPool; },
       status_code::bad_argument, "slot"},
      {"slot[0] = -2", [](swska_args<float>& a) { a.slot = kSlotMinus2; },
       status_code::bad_argument, "slot"},
      {"slot[1] = -5", [](swska_args<float>& a) { a.slot = kSlotMinus5; },
       status_code::bad_argument, "slot"},
      {"slot[1] = 9 on a sequence without history",
       [](swska_args<float>& a) {
         a.history_len = kNoSecondHistory;
         a.slot = kUnusedSlotPastPool;
       },
       status_code::bad_argument, "slot"},
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
      {"slot -2", {-2, 1}, {0, 0}, 3, "slot"},
      {"slot -5", {0, -5}, {0, 0}, 3, "slot"},
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
      test::workspace_buffer ws(swska_decode_workspace_bytes(simd, a));
      const status s =
          be == 0 ? swska_decode(scalar{}, a, ws.get()) : swska_decode(simd, a, ws.get());
      test::check_status(s, status_code::bad_argument, c.name);
      CHECK(std::memcmp(rk.data(), rk0.data(), rk.size() * 4) == 0);
      CHECK(std::memcmp(rv.data(), rv0.data(), rv.size() * 4) == 0);
      CHECK(std::memcmp(o.data(), o_before.data(), o.size() * 4) == 0);
    }
  }
}

TEST_CASE_TEMPLATE("cpu swska_ring_store refuses bad slots and start positions like the reference, "
                   "before writing",
                   Arch, RODIMUS_TEST_CPU_ARCHS) {
  if (!test::arch_runs_here<Arch>()) return;
  // Two packed sequences into a pool of P = 2 rings of W = 4 positions.
  auto g = test::rng(37);
  const auto k = test::uniform<float>(g, 5 * 8), v = test::uniform<float>(g, 5 * 8);
  const auto rk0 = test::uniform<float>(g, 2 * 4 * 8), rv0 = test::uniform<float>(g, 2 * 4 * 8);
  const std::int64_t cu[3] = {0, 2, 5};
  struct bad_case {
    const char* what;
    std::int32_t slot[2];
    std::int64_t start[2];
    const char* name;
  };
  const bad_case cases[] = {
      {"slot = P", {0, 2}, {0, 0}, "slot"},
      {"slot -2", {-2, 0}, {0, 0}, "slot"},
      {"slot -5", {1, -5}, {0, 0}, "slot"},
      {"negative start position", {1, 0}, {3, -1}, "start_position"},
  };
  for (const auto& c : cases) {
    INFO(c.what);
    for (int be = 0; be < 3; ++be) {
      INFO("backend " << (be == 0 ? "scalar" : be == 1 ? "cpu" : "cpu + pool"));
      std::vector<float> rk = rk0, rv = rv0;
      swska_ring_store_args<float> a;
      a.k = make_view<const float>(k.data(), 1, 5, 1, 8);
      a.v = make_view<const float>(v.data(), 1, 5, 1, 8);
      a.ring_k = make_view(rk.data(), 2, 4, 1, 8);
      a.ring_v = make_view(rv.data(), 2, 4, 1, 8);
      a.cu_seqlens = cu;
      a.num_seqs = 2;
      a.slot = c.slot;
      a.start_position = c.start;
      const status s =
          be == 0 ? swska_ring_store(scalar{}, a) : swska_ring_store(backend<Arch>(be == 2), a);
      test::check_status(s, status_code::bad_argument, c.name);
      CHECK(std::memcmp(rk.data(), rk0.data(), rk.size() * 4) == 0);
      CHECK(std::memcmp(rv.data(), rv0.data(), rv.size() * 4) == 0);
    }
  }
}
