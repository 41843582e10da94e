// The element-wise primitives on cpu<Arch> against the scalar reference: rmsnorm (with and without
// the residual, residual_out aliasing residual), gated_rmsnorm (y aliasing x), swiglu, ddts (weak
// and strong gates, tiny keys), rotary (offsets, packed, partial rotary_dim). Widths that are not
// multiples of the SIMD width cover the tails. causal_conv: tests/test_cpu_causal_conv.cpp.
//
// Tolerances, relative to max|want|: f32 1e-5 (f32 against f64 or f32 std:: functions; xsimd's
// exp/log are within a few ulp). 16-bit outputs 2^-7: both sides round the same inputs, results
// may land one bf16 step apart, and one step of a value v is up to 2^-7 v (v just above a power
// of two; 2^-8 was too tight: 396 vs 398 failed against 2^-8 x 396).
#include "test_cpu_support.hpp"

#include "cases/swiglu_cases.hpp"

#include "rodimus/backend/cpu/ddts.hpp"
#include "rodimus/backend/cpu/gated_rmsnorm.hpp"
#include "rodimus/backend/cpu/rmsnorm.hpp"
#include "rodimus/backend/cpu/rotary.hpp"
#include "rodimus/backend/cpu/swiglu.hpp"

using namespace rodimus;

namespace {

template <class T> double tol() { return std::is_same_v<T, float> ? 1e-5 : 1.0 / 128; }

template <class Arch> cpu<Arch> backend(bool pool) {
  return cpu<Arch>{pool ? &test::test_pool() : nullptr};
}

template <class Arch, class Act>
void check_rmsnorm(index_t M, index_t D, bool with_residual, bool alias, bool pool) {
  CAPTURE(M);
  CAPTURE(D);
  CAPTURE(with_residual);
  CAPTURE(alias);
  auto g = test::rng(std::uint64_t(M * 97 + D));
  auto x = test::uniform<Act>(g, std::size_t(M * D), -3, 3);
  auto res = test::uniform<float>(g, std::size_t(M * D), -3, 3);
  auto w = test::uniform<float>(g, std::size_t(D), 0.5, 1.5);
  auto res2 = res;
  std::vector<Act> y(std::size_t(M * D)), y_ref(y.size());
  std::vector<float> ro(std::size_t(M * D)), ro_ref(ro.size());
  test::poison(y);
  test::poison(y_ref);
  test::poison(ro);
  test::poison(ro_ref);
  rmsnorm_args<Act, float> a;
  a.x = make_view<const Act>(x.data(), M, D);
  a.weight = make_view<const float>(w.data(), D);
  if (with_residual) a.residual = make_view<const float>(res.data(), M, D);
  a.y = make_view(y.data(), M, D);
  a.residual_out = alias ? make_view(res.data(), M, D) : make_view(ro.data(), M, D);
  REQUIRE(rmsnorm(backend<Arch>(pool), a).ok());
  if (with_residual) a.residual = make_view<const float>(res2.data(), M, D);
  a.y = make_view(y_ref.data(), M, D);
  a.residual_out = alias ? make_view(res2.data(), M, D) : make_view(ro_ref.data(), M, D);
  REQUIRE(rmsnorm(scalar{}, a).ok());
  test::check_close(y, y_ref, tol<Act>(), 0.0, "y");
  if (alias)
    test::check_close(res, res2, 1e-6, 0.0, "residual_out (aliased)");
  else
    test::check_close(ro, ro_ref, 1e-6, 0.0, "residual_out");
}

template <class Arch, class Act> void check_gated(index_t M, index_t E, bool alias, bool pool) {
  CAPTURE(M);
  CAPTURE(E);
  auto g = test::rng(std::uint64_t(M * 13 + E));
  auto x = test::uniform<Act>(g, std::size_t(M * E), -3, 3);
  auto gate = test::uniform<Act>(g, std::size_t(M * E), -30, 10);
  auto w = test::uniform<float>(g, std::size_t(E), 0.5, 1.5);
  auto x2 = x;
  std::vector<Act> y(std::size_t(M * E)), y_ref(y.size());
  test::poison(y);
  test::poison(y_ref);
  gated_rmsnorm_args<Act> a;
  a.x = make_view<const Act>(x.data(), M, E);
  a.gate = make_view<const Act>(gate.data(), M, E);
  a.weight = make_view<const float>(w.data(), E);
  a.y = alias ? make_view(x.data(), M, E) : make_view(y.data(), M, E);
  REQUIRE(gated_rmsnorm(backend<Arch>(pool), a).ok());
  a.x = make_view<const Act>(x2.data(), M, E);
  a.y = make_view(y_ref.data(), M, E);
  REQUIRE(gated_rmsnorm(scalar{}, a).ok());
  test::check_close(alias ? x : y, y_ref, tol<Act>(), 0.0, "y");
}

template <class Arch, class Act> void check_ddts(index_t M, index_t N, float shift, bool pool) {
  CAPTURE(M);
  CAPTURE(N);
  CAPTURE(shift);
  auto g = test::rng(std::uint64_t(M * 11 + N) + std::uint64_t(shift + 100));
  auto pre = test::uniform<Act>(g, std::size_t(M * 2 * N), -4 + shift, 4 + shift);
  auto bias = test::uniform<float>(g, std::size_t(2 * N), -1, 1);
  auto k = test::uniform<Act>(g, std::size_t(M * N));
  if (M > 1) // one tiny key row: the eps clamp of the norm
    for (index_t n = 0; n < N; ++n)
      k[std::size_t(N + n)] = store_as<Act>(1e-14);
  std::vector<float> kh(std::size_t(M * N)), kh_ref(kh.size()), ld(kh.size()), ld_ref(kh.size());
  test::poison(kh);
  test::poison(kh_ref);
  test::poison(ld);
  test::poison(ld_ref);
  ddts_args<Act> a;
  a.gate_preact = make_view<const Act>(pre.data(), M, 2 * N);
  a.gate_bias = make_view<const float>(bias.data(), 2 * N);
  a.k = make_view<const Act>(k.data(), M, N);
  a.k_hat = make_view(kh.data(), M, N);
  a.log_decay = make_view(ld.data(), M, N);
  REQUIRE(ddts(backend<Arch>(pool), a).ok());
  a.k_hat = make_view(kh_ref.data(), M, N);
  a.log_decay = make_view(ld_ref.data(), M, N);
  REQUIRE(ddts(scalar{}, a).ok());
  test::check_close(kh, kh_ref, 1e-5, 0.0, "k_hat");
  test::check_close(ld, ld_ref, 1e-5, 0.0, "log_decay");
}

template <class Arch, class Act>
void check_rotary(index_t T, index_t H, index_t D, int rdim, std::vector<std::int64_t> cu,
                  bool pool) {
  CAPTURE(T);
  CAPTURE(D);
  CAPTURE(rdim);
  auto g = test::rng(std::uint64_t(T * 3 + H + D));
  const index_t B = cu.empty() ? 2 : 1;
  const index_t N = cu.empty() ? B : index_t(cu.size()) - 1;
  auto x = test::uniform<Act>(g, std::size_t(B * T * H * D));
  auto x_ref = x;
  std::vector<std::int64_t> off;
  for (index_t n = 0; n < N; ++n)
    off.push_back(n * 1000 + 7);
  rotary_args<Act> a;
  a.x = make_view(x.data(), B, T, H, D);
  a.position_offset = off.data();
  a.rotary_dim = rdim;
  if (!cu.empty()) {
    a.cu_seqlens = cu.data();
    a.num_seqs = N;
  }
  REQUIRE(rotary(backend<Arch>(pool), a).ok());
  a.x = make_view(x_ref.data(), B, T, H, D);
  REQUIRE(rotary(scalar{}, a).ok());
  test::check_close(x, x_ref, tol<Act>(), 0.0, "x");
}

} // namespace

TEST_CASE_TEMPLATE("cpu rmsnorm, gated_rmsnorm and swiglu match the scalar reference", Arch,
                   RODIMUS_TEST_CPU_ARCHS) {
  if (!test::arch_runs_here<Arch>()) return;
  for (bool pool : {false, true}) {
    check_rmsnorm<Arch, float>(3, 2048, true, false, pool);
    check_rmsnorm<Arch, float>(40, 1000, true, true, pool);
    check_rmsnorm<Arch, float>(5, 77, false, false, pool);
    check_rmsnorm<Arch, bf16>(9, 130, true, false, pool);
    check_gated<Arch, float>(3, 4096, false, pool);
    check_gated<Arch, float>(17, 1001, true, pool);
    check_gated<Arch, bf16>(4, 300, false, pool);
    test::check_swiglu_all(backend<Arch>(pool));
  }
}

TEST_CASE_TEMPLATE("cpu ddts and rotary match the scalar reference", Arch, RODIMUS_TEST_CPU_ARCHS) {
  if (!test::arch_runs_here<Arch>()) return;
  for (bool pool : {false, true}) {
    for (float shift : {-5.0f, 0.0f, 5.0f, 22.0f})
      check_ddts<Arch, float>(7, 64, shift, pool);
    check_ddts<Arch, bf16>(5, 37, 0.0f, pool);
    check_rotary<Arch, float>(33, 3, 128, -1, {}, pool);
    check_rotary<Arch, float>(40, 2, 100, 60, {0, 5, 5, 40}, pool);
    check_rotary<Arch, bf16>(9, 4, 64, 32, {}, pool);
  }
}
