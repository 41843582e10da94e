// mixer_decode (the fused decode step of the Rodimus mixer's memory) on scalar and cpu<Arch> (with
// and without the test pool) against the scalar reference: the shared body in
// tests/cases/mixer_decode_cases.hpp (tolerances explained there); the host-only slot checks (a
// slot outside the pool, two rows on one state: bad_argument "slot" before anything is written);
// the scalar reference against the four scalar primitives called one after the other by hand; and
// its low-rank form against the u_preact form fed with h . ch_gate_up^T summed here (f64, then
// rounded to f32 as the scalar linear: bit for bit).
#include "test_cpu_support.hpp"

#include "cases/mixer_decode_cases.hpp"

#include "rodimus/backend/cpu/mixer_decode.hpp"

using namespace rodimus;

namespace {

template <class Arch> cpu<Arch> backend(bool pool) {
  return cpu<Arch>{pool ? &test::test_pool() : nullptr};
}

/// Bad slot contents are refused before anything is written (o still poisoned, the pool as it was).
template <class Backend> void check_bad_slots(const Backend& be) {
  const index_t M = 3, N = 8, E = 12, P = 4;
  auto g = test::rng(41);
  const auto rows_e = test::uniform<float>(g, std::size_t(M * E));
  const auto rows_n = test::uniform<float>(g, std::size_t(M * N));
  const auto rows_2n = test::uniform<float>(g, std::size_t(M * 2 * N));
  const auto vec_e = test::uniform<float>(g, std::size_t(E));
  const auto pool0 = test::uniform<float>(g, std::size_t(P * N * E));
  std::vector<float> o(rows_e.size()), pool = pool0;
  test::poison(o);
  for (const std::vector<std::int32_t>& slots :
       {std::vector<std::int32_t>{0, 4, 1}, std::vector<std::int32_t>{2, -2, 1},
        std::vector<std::int32_t>{3, -1, 3}}) {
    mixer_decode_args a;
    a.x = make_view<const float>(rows_e.data(), M, E);
    a.u_preact = a.x;
    a.c = a.x;
    a.ch_gate_bias = make_view<const float>(vec_e.data(), E);
    a.residual_weight = a.ch_gate_bias;
    a.r = make_view<const float>(rows_n.data(), M, N);
    a.k = a.r;
    a.psi = make_view<const float>(rows_2n.data(), M, 2 * N);
    a.o = make_view(o.data(), M, E);
    a.state = make_view(pool.data(), P, index_t(1), N, E);
    a.slot = slots.data();
    test::workspace_buffer ws(mixer_decode_workspace_bytes(be, a));
    test::check_status(mixer_decode(be, a, ws.get()), status_code::bad_argument, "slot");
    CHECK(test::all_nan(o));
    CHECK(pool == pool0);
  }
}

} // namespace

TEST_CASE("scalar mixer_decode is the composition of channel_gate, ddts, gla_decode, scale_add") {
  // Written out here with the primitives' own entry points and separate buffers, one row padding.
  const index_t M = 3, N = 16, E = 40, P = 5;
  auto g = test::rng(43);
  const auto x = test::uniform<float>(g, std::size_t(M * E), -3, 3);
  const auto u = test::uniform<float>(g, std::size_t(M * E), -6, 6);
  const auto cv = test::uniform<float>(g, std::size_t(M * E), -2, 2);
  const auto b1 = test::uniform<float>(g, std::size_t(E));
  const auto rw = test::uniform<float>(g, std::size_t(E));
  const auto r = test::uniform<float>(g, std::size_t(M * N));
  const auto k = test::uniform<float>(g, std::size_t(M * N));
  const auto psi = test::uniform<float>(g, std::size_t(M * 2 * N), -4, 6);
  const auto b2 = test::uniform<float>(g, std::size_t(2 * N));
  const auto pool0 = test::uniform<float>(g, std::size_t(P * N * E));
  const std::vector<std::int32_t> slot = {3, -1, 0};

  mixer_decode_args a;
  std::vector<float> o(std::size_t(M * E)), pool = pool0;
  test::poison(o);
  a.x = make_view<const float>(x.data(), M, E);
  a.u_preact = make_view<const float>(u.data(), M, E);
  a.ch_gate_bias = make_view<const float>(b1.data(), E);
  a.c = make_view<const float>(cv.data(), M, E);
  a.residual_weight = make_view<const float>(rw.data(), E);
  a.r = make_view<const float>(r.data(), M, N);
  a.k = make_view<const float>(k.data(), M, N);
  a.psi = make_view<const float>(psi.data(), M, 2 * N);
  a.mem_gate_bias = make_view<const float>(b2.data(), 2 * N);
  a.o = make_view(o.data(), M, E);
  a.state = make_view(pool.data(), P, index_t(1), N, E);
  a.slot = slot.data();
  a.scale = 0.25f;
  a.normalize_eps = 1e-5f;
  test::workspace_buffer ws(mixer_decode_workspace_bytes(scalar{}, a));
  REQUIRE(mixer_decode(scalar{}, a, ws.get()).ok());

  std::vector<float> gated = u, k_hat(std::size_t(M * N)), decay(k_hat.size()), o_want(o.size()),
                     pool_want = pool0;
  test::poison(o_want);
  REQUIRE(
      channel_gate(scalar{}, channel_gate_args{make_view(gated.data(), M, E), a.ch_gate_bias, a.x})
          .ok());
  ddts_args<float> d;
  d.gate_preact = a.psi;
  d.gate_bias = a.mem_gate_bias;
  d.k = a.k;
  d.k_hat = make_view(k_hat.data(), M, N);
  d.log_decay = make_view(decay.data(), M, N);
  d.normalize_eps = a.normalize_eps;
  REQUIRE(ddts(scalar{}, d).ok());
  gla_decode_args<float, float, float> ga;
  ga.q = make_view<const float>(r.data(), M, index_t(1), N);
  ga.k = make_view<const float>(k_hat.data(), M, index_t(1), N);
  ga.v = make_view<const float>(gated.data(), M, index_t(1), E);
  ga.g = make_view<const float>(decay.data(), M, index_t(1), N);
  ga.o = make_view(o_want.data(), M, index_t(1), E);
  ga.state = make_view(pool_want.data(), P, index_t(1), N, E);
  ga.slot = slot.data();
  ga.scale = a.scale;
  test::workspace_buffer gws(gla_decode_workspace_bytes(scalar{}, ga));
  REQUIRE(gla_decode(scalar{}, ga, gws.get()).ok());
  for (index_t m : {index_t(0), index_t(2)}) // row 1 is padding
    REQUIRE(
        scale_add(scalar{}, scale_add_args{make_view(o_want.data() + m * E, 1, E),
                                           make_view(cv.data() + m * E, 1, E), a.residual_weight})
            .ok());
  CHECK(std::memcmp(o.data(), o_want.data(), o.size() * sizeof(float)) == 0); // NaN row included
  CHECK(pool == pool_want);
}

TEST_CASE("scalar mixer_decode's low-rank form is the u_preact form of h . ch_gate_up^T") {
  const index_t M = 3, N = 8, E = 24, P = 4, R = 5;
  auto g = test::rng(47);
  const auto x = test::uniform<float>(g, std::size_t(M * E), -3, 3);
  const auto h = test::uniform<float>(g, std::size_t(M * R), -2, 2);
  const auto up = test::uniform<bf16>(g, std::size_t(E * R));
  const auto cv = test::uniform<float>(g, std::size_t(M * E), -2, 2);
  const auto vec_e = test::uniform<float>(g, std::size_t(E));
  const auto r = test::uniform<float>(g, std::size_t(M * N));
  const auto k = test::uniform<float>(g, std::size_t(M * N));
  const auto psi = test::uniform<float>(g, std::size_t(M * 2 * N), -4, 6);
  const auto pool0 = test::uniform<float>(g, std::size_t(P * N * E));
  const std::vector<std::int32_t> slot = {2, -1, 0};
  std::vector<float> u(std::size_t(M * E));
  for (index_t m = 0; m < M; ++m)
    for (index_t e = 0; e < E; ++e) {
      double acc = 0.0;
      for (index_t i = 0; i < R; ++i)
        acc += double(h[std::size_t(m * R + i)]) * double(float(up[std::size_t(e * R + i)]));
      u[std::size_t(m * E + e)] = float(acc);
    }

  std::vector<float> o_low(std::size_t(M * E)), o_pre(o_low.size()), pool_low = pool0,
                                                                     pool_pre = pool0;
  test::poison(o_low);
  test::poison(o_pre);
  mixer_decode_args<bf16> low;
  low.x = make_view<const float>(x.data(), M, E);
  low.h = make_view<const float>(h.data(), M, R);
  low.ch_gate_up = make_view<const bf16>(up.data(), E, R);
  low.ch_gate_bias = make_view<const float>(vec_e.data(), E);
  low.c = make_view<const float>(cv.data(), M, E);
  low.residual_weight = low.ch_gate_bias;
  low.r = make_view<const float>(r.data(), M, N);
  low.k = make_view<const float>(k.data(), M, N);
  low.psi = make_view<const float>(psi.data(), M, 2 * N);
  low.o = make_view(o_low.data(), M, E);
  low.state = make_view(pool_low.data(), P, index_t(1), N, E);
  low.slot = slot.data();
  test::workspace_buffer ws_low(mixer_decode_workspace_bytes(scalar{}, low));
  REQUIRE(mixer_decode(scalar{}, low, ws_low.get()).ok());

  mixer_decode_args<> pre;
  pre.x = low.x;
  pre.u_preact = make_view<const float>(u.data(), M, E);
  pre.ch_gate_bias = low.ch_gate_bias;
  pre.c = low.c;
  pre.residual_weight = low.residual_weight;
  pre.r = low.r;
  pre.k = low.k;
  pre.psi = low.psi;
  pre.o = make_view(o_pre.data(), M, E);
  pre.state = make_view(pool_pre.data(), P, index_t(1), N, E);
  pre.slot = slot.data();
  test::workspace_buffer ws_pre(mixer_decode_workspace_bytes(scalar{}, pre));
  REQUIRE(mixer_decode(scalar{}, pre, ws_pre.get()).ok());

  CHECK(std::memcmp(o_low.data(), o_pre.data(), o_low.size() * sizeof(float)) == 0);
  CHECK(pool_low == pool_pre);
  CHECK(pool_low != pool0); // the step ran
}

TEST_CASE("scalar mixer_decode passes the shared cases and refuses bad slots") {
  test::check_mixer_decode_all(scalar{});
  check_bad_slots(scalar{});
}

TEST_CASE_TEMPLATE("cpu mixer_decode matches the scalar reference", Arch, RODIMUS_TEST_CPU_ARCHS) {
  if (!test::arch_runs_here<Arch>()) return;
  for (bool pool : {false, true}) {
    CAPTURE(pool);
    test::check_mixer_decode_all(backend<Arch>(pool));
    check_bad_slots(backend<Arch>(pool));
  }
}
