// gla_scan, gla_chunked and gla_decode on cpu<Arch> against the scalar reference, on fresh random
// inputs with poisoned outputs: odd lengths, K and V that are not multiples of the SIMD width,
// segment boundaries (T > 256), packed sequences, initial and final states, every chunk size, and
// decode steps over a slot pool with padding rows.
//
// Tolerances, relative to max|want|: f32 outputs and states 1e-5 (f32 against f64 arithmetic,
// decays bounded by 1 so errors do not grow). bf16 outputs (q, v, o in bf16; k, g in f32 as in the
// Rodimus mixer): inputs are exact bf16 values for both sides, so the only difference beyond f32
// rounding is the final rounding of o to bf16, at most one step: 2^-8. States stay f32: 1e-5.
#include "test_cpu_support.hpp"

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

enum class gla_mode { scan, chunked };

template <class Arch, class Act>
void check_gla(gla_mode mode, int chunk, index_t B, index_t H, index_t T, index_t K, index_t V,
               std::vector<std::int64_t> cu, bool with_initial, bool use_pool) {
  CAPTURE(int(mode));
  CAPTURE(chunk);
  CAPTURE(T);
  CAPTURE(K);
  CAPTURE(V);
  CAPTURE(cu.size());
  CAPTURE(use_pool);
  auto g = test::rng(std::uint64_t(T * 7919 + K * 31 + V + chunk));
  const std::size_t nt = std::size_t(B * H * T);
  auto q = test::uniform<Act>(g, nt * std::size_t(K));
  auto k = test::uniform<float>(g, nt * std::size_t(K));
  auto v = test::uniform<Act>(g, nt * std::size_t(V));
  auto gate = log_decays(g, nt * std::size_t(K));
  const index_t N = cu.empty() ? B : index_t(cu.size()) - 1;
  const std::size_t ns = std::size_t(N * H * K * V);
  auto s0 = test::uniform<float>(g, ns);
  std::vector<Act> o(nt * std::size_t(V)), o_ref(o.size());
  std::vector<float> sf(ns), sf_ref(ns);
  test::poison(o);
  test::poison(o_ref);
  test::poison(sf);
  test::poison(sf_ref);

  gla_args<Act, float, float> a;
  a.q = make_view<const Act>(q.data(), B, H, T, K);
  a.k = make_view<const float>(k.data(), B, H, T, K);
  a.v = make_view<const Act>(v.data(), B, H, T, V);
  a.g = make_view<const float>(gate.data(), B, H, T, K);
  if (with_initial) a.initial_state = make_view<const float>(s0.data(), N, H, K, V);
  a.scale = 1.0f / std::sqrt(float(K));
  if (!cu.empty()) {
    a.cu_seqlens = cu.data();
    a.num_seqs = N;
  }
  cpu<Arch> be{use_pool ? &test::test_pool() : nullptr};

  a.o = make_view(o.data(), B, H, T, V);
  a.final_state = make_view(sf.data(), N, H, K, V);
  const std::size_t bytes = mode == gla_mode::scan ? gla_scan_workspace_bytes(be, a)
                                                   : gla_chunked_workspace_bytes(be, a, chunk);
  test::test_workspace ws(bytes);
  const status st =
      mode == gla_mode::scan ? gla_scan(be, a, ws.get()) : gla_chunked(be, a, chunk, ws.get());
  REQUIRE(st.ok());

  a.o = make_view(o_ref.data(), B, H, T, V);
  a.final_state = make_view(sf_ref.data(), N, H, K, V);
  test::test_workspace ws_ref(gla_scan_workspace_bytes(scalar{}, a));
  REQUIRE(gla_scan(scalar{}, a, ws_ref.get()).ok());

  test::check_close(o, o_ref, act_tolerance<Act>(), 0.0, "o");
  test::check_close(sf, sf_ref, 1e-5, 0.0, "final_state");
}

} // namespace

TEST_CASE_TEMPLATE("cpu gla_scan and gla_chunked match the scalar reference (f32)", Arch,
                   RODIMUS_TEST_CPU_ARCHS) {
  if (!test::arch_runs_here<Arch>()) return;
  for (gla_mode mode : {gla_mode::scan, gla_mode::chunked}) {
    const std::vector<int> chunks =
        mode == gla_mode::scan ? std::vector<int>{0} : std::vector<int>{16, 32, 64, 128};
    for (int c : chunks) {
      check_gla<Arch, float>(mode, c, 2, 2, 37, 22, 100, {}, true, true);
      check_gla<Arch, float>(mode, c, 1, 1, 300, 64, 4096, {}, true, c == 16 || c == 0);
      check_gla<Arch, float>(mode, c, 1, 2, 301, 64, 67, {0, 5, 5, 40, 301}, true, true);
      check_gla<Arch, float>(mode, c, 2, 1, 1, 7, 19, {}, false, false);
    }
  }
}

TEST_CASE_TEMPLATE("cpu gla_scan and gla_chunked match the scalar reference (bf16 activations)",
                   Arch, RODIMUS_TEST_CPU_ARCHS) {
  if (!test::arch_runs_here<Arch>()) return;
  check_gla<Arch, bf16>(gla_mode::scan, 0, 2, 1, 45, 64, 130, {}, true, true);
  check_gla<Arch, bf16>(gla_mode::chunked, 16, 2, 1, 45, 64, 130, {}, true, true);
  check_gla<Arch, bf16>(gla_mode::chunked, 64, 1, 1, 270, 64, 256, {0, 100, 270}, false, true);
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
    test::test_workspace ws(gla_decode_workspace_bytes(be, a));
    REQUIRE(gla_decode(be, a, ws.get()).ok());
    a.o = make_view(o_ref.data(), B, H, V);
    a.state = make_view(pool_ref.data(), P, H, K, V);
    test::test_workspace ws_ref(gla_decode_workspace_bytes(scalar{}, a));
    REQUIRE(gla_decode(scalar{}, a, ws_ref.get()).ok());
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
