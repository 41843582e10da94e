// gla_scan, gla_chunked and gla_decode on cpu<Arch> against the scalar reference, on fresh random
// inputs with poisoned outputs. The sequence forms run the shared body (tests/cases/gla_cases.hpp:
// odd lengths, K and V that are not multiples of the SIMD width, segment boundaries (T > 256),
// packed sequences, initial and final states, every chunk size, extreme gates, state-slot pools,
// the invariants and the bad arguments), with and without the thread pool; decode steps over a
// slot pool with padding rows are checked here.
//
// Decode tolerances, relative to max|want|: f32 outputs and states 1e-5 (f32 against f64
// arithmetic, decays bounded by 1 so errors do not grow). bf16 outputs (q, v, o in bf16; k, g in
// f32 as in the Rodimus mixer): inputs are exact bf16 values for both sides, so the only
// difference beyond f32 rounding is the final rounding of o to bf16, at most one step: 2^-8.
// States stay f32: 1e-5.
#include "test_cpu_support.hpp"

#include "cases/gla_cases.hpp"

#include "rodimus/backend/cpu/gla.hpp"

using namespace rodimus;

namespace {

/// Log-decays spanning weak to strong gates: g = -exp(U(-8, 1.5)) in [-4.5, -3e-4].
std::vector<float> log_decays(std::mt19937_64& g, std::size_t n) {
  std::uniform_real_distribution<double> d(-8.0, 1.5);
  std::vector<float> out(n);
  for (auto& x : out)
    x = float(-std::exp(d(g)));
  return out;
}

template <class Act> double act_tolerance() {
  return std::is_same_v<Act, float> ? 1e-5 : 1.0 / 256;
}

template <class Arch> cpu<Arch> backend(bool pool) {
  return cpu<Arch>{pool ? &test::test_pool() : nullptr};
}

} // namespace

TEST_CASE_TEMPLATE("cpu gla_scan and gla_chunked match the scalar reference", Arch,
                   RODIMUS_TEST_CPU_ARCHS) {
  if (!test::arch_runs_here<Arch>()) return;
  for (bool pool : {false, true})
    test::check_gla_all(backend<Arch>(pool));
}

TEST_CASE_TEMPLATE("cpu gla: chunked == scan, split prefill, packed == separate", Arch,
                   RODIMUS_TEST_CPU_ARCHS) {
  if (!test::arch_runs_here<Arch>()) return;
  test::check_gla_invariants(backend<Arch>(true));
}

TEST_CASE_TEMPLATE("cpu gla: slot pools, in place and with padding sequences", Arch,
                   RODIMUS_TEST_CPU_ARCHS) {
  if (!test::arch_runs_here<Arch>()) return;
  for (bool pool : {false, true})
    test::check_gla_slots(backend<Arch>(pool));
}

TEST_CASE_TEMPLATE("cpu gla: bad arguments", Arch, RODIMUS_TEST_CPU_ARCHS) {
  if (!test::arch_runs_here<Arch>()) return;
  test::check_gla_bad_arguments(backend<Arch>(true));
}

TEST_CASE("cpu gla_chunked rejects an unsupported chunk size") {
  std::vector<float> x(64);
  gla_args<float> a;
  a.q = a.k = a.g = make_view<const float>(x.data(), 1, 1, 2, 4);
  a.v = make_view<const float>(x.data(), 1, 1, 2, 4);
  a.o = make_view(x.data() + 32, 1, 1, 2, 4);
  const status s = gla_chunked(cpu<>{}, a, 24, workspace{});
  CHECK(s.code == status_code::unsupported);
  CHECK(std::string(s.what) == "chunk_size");
}

namespace {

template <class Arch, class Act>
void check_decode(index_t B, index_t P, index_t H, index_t K, index_t V, bool with_slots,
                  bool use_pool) {
  CAPTURE(B);
  CAPTURE(K);
  CAPTURE(V);
  CAPTURE(with_slots);
  auto g = test::rng(std::uint64_t(B * 131 + K * 17 + V));
  auto pool = test::uniform<float>(g, std::size_t(P * H * K * V));
  auto pool_ref = pool;
  std::vector<std::int32_t> slots(static_cast<std::size_t>(B));
  for (index_t b = 0; b < B; ++b)
    slots[std::size_t(b)] = std::int32_t((b * 3 + 1) % P);
  if (B > 1) slots[1] = -1; // a padding row
  cpu<Arch> be{use_pool ? &test::test_pool() : nullptr};
  for (int step = 0; step < 3; ++step) {
    CAPTURE(step);
    auto q = test::uniform<Act>(g, std::size_t(B * H * K));
    auto k = test::uniform<float>(g, std::size_t(B * H * K));
    auto v = test::uniform<Act>(g, std::size_t(B * H * V));
    auto gate = log_decays(g, std::size_t(B * H * K));
    std::vector<Act> o(std::size_t(B * H * V)), o_ref(o.size());
    test::poison(o);
    test::poison(o_ref);
    gla_decode_args<Act, float, float> a;
    a.q = make_view<const Act>(q.data(), B, H, K);
    a.k = make_view<const float>(k.data(), B, H, K);
    a.v = make_view<const Act>(v.data(), B, H, V);
    a.g = make_view<const float>(gate.data(), B, H, K);
    a.slot = with_slots ? slots.data() : nullptr;
    a.scale = 0.125f;
    a.o = make_view(o.data(), B, H, V);
    a.state = make_view(pool.data(), P, H, K, V);
    test::workspace_buffer ws(gla_decode_workspace_bytes(be, a));
    REQUIRE(gla_decode(be, a, ws.get()).ok());
    a.o = make_view(o_ref.data(), B, H, V);
    a.state = make_view(pool_ref.data(), P, H, K, V);
    test::workspace_buffer ws_ref(gla_decode_workspace_bytes(scalar{}, a));
    REQUIRE(gla_decode(scalar{}, a, ws_ref.get()).ok());
    std::vector<bool> skip(static_cast<std::size_t>(B), false); // padding rows stay poisoned
    for (index_t b = 0; b < B; ++b)
      skip[std::size_t(b)] = with_slots && is_padding_slot(slots[std::size_t(b)]);
    test::check_skipped_rows(o, o_ref, std::size_t(H * V), skip);
    test::check_close(o, o_ref, act_tolerance<Act>(), 0.0, "o");
    test::check_close(pool, pool_ref, 1e-5, 0.0, "state");
  }
}

} // namespace

TEST_CASE_TEMPLATE("cpu gla_decode matches the scalar reference", Arch, RODIMUS_TEST_CPU_ARCHS) {
  if (!test::arch_runs_here<Arch>()) return;
  check_decode<Arch, float>(4, 5, 2, 64, 300, true, true);
  check_decode<Arch, float>(3, 3, 1, 13, 4100, false, true);
  check_decode<Arch, float>(1, 1, 1, 64, 4096, false, false);
  check_decode<Arch, bf16>(4, 7, 1, 64, 2500, true, true);
  check_decode<Arch, f16>(2, 2, 1, 24, 77, false, true);
}
