// falls_back_to_scalar(cpu<Arch>, args): the signal that a cpu<Arch> call runs the scalar reference
// instead of its own kernel (docs/ARCHITECTURE.md "Fallbacks"; the benchmarks refuse to time such a
// call). For each primitive: contiguous f32 arguments take the kernel; a non-unit inner stride (or
// an activation type the kernel does not vectorise) takes the fallback, and the result is then the
// scalar reference's, bit for bit (fresh random inputs; outputs poisoned with NaN first).
#include "test_cpu_support.hpp"

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "rodimus/backend/cpu/all.hpp"

using namespace rodimus;

namespace {

constexpr float kPoison = std::numeric_limits<float>::quiet_NaN();

/// Bit-for-bit equality (NaN == NaN), so a fallback is proven to be the scalar call itself.
void check_identical(const std::vector<float>& got, const std::vector<float>& want) {
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    CAPTURE(i);
    CHECK(std::memcmp(&got[i], &want[i], sizeof(float)) == 0);
  }
}

} // namespace

TEST_CASE_TEMPLATE("cpu rmsnorm: the fallback signal matches what the call runs", Arch,
                   RODIMUS_TEST_CPU_ARCHS) {
  if (!test::arch_runs_here<Arch>()) return;
  const cpu<Arch> be{&test::test_pool()};
  auto g = test::rng(1);
  const index_t M = 3, D = 40;
  const auto x = test::uniform<float>(g, std::size_t(M * D * 2));
  const auto w = test::uniform<float>(g, std::size_t(D), 0.5, 1.5);
  std::vector<float> y(std::size_t(M * D), kPoison), y_ref(y);
  rmsnorm_args<float> a;
  a.x = make_view<const float>(x.data(), M, D);
  a.weight = make_view<const float>(w.data(), D);
  a.y = make_view(y.data(), M, D);
  CHECK_FALSE(falls_back_to_scalar(be, a));
  // Every other element of a row: inner stride 2.
  a.x = tensor_view<const float, 2>::strided(x.data(), {M, D}, {2 * D, 2});
  CHECK(falls_back_to_scalar(be, a));
  REQUIRE(rmsnorm(be, a).ok());
  a.y = make_view(y_ref.data(), M, D);
  REQUIRE(rmsnorm(scalar{}, a).ok());
  check_identical(y, y_ref);
  // f64 activations have no kernel.
  std::vector<double> xd(std::size_t(M * D), 0.5), yd(std::size_t(M * D));
  rmsnorm_args<double> ad;
  ad.x = make_view<const double>(xd.data(), M, D);
  ad.weight = make_view<const float>(w.data(), D);
  ad.y = make_view(yd.data(), M, D);
  CHECK(falls_back_to_scalar(be, ad));
}

TEST_CASE_TEMPLATE("cpu swiglu and scale_add: the fallback signal matches what the call runs", Arch,
                   RODIMUS_TEST_CPU_ARCHS) {
  if (!test::arch_runs_here<Arch>()) return;
  const cpu<Arch> be{&test::test_pool()};
  auto g = test::rng(2);
  const index_t M = 2, F = 37;
  const auto fc = test::uniform<float>(g, std::size_t(M * 2 * F * 2));
  std::vector<float> y(std::size_t(M * F), kPoison), y_ref(y);
  swiglu_args<float> s{make_view<const float>(fc.data(), M, 2 * F), make_view(y.data(), M, F)};
  CHECK_FALSE(falls_back_to_scalar(be, s));
  s.fc = tensor_view<const float, 2>::strided(fc.data(), {M, 2 * F}, {4 * F, 2});
  CHECK(falls_back_to_scalar(be, s));
  REQUIRE(swiglu(be, s).ok());
  s.y = make_view(y_ref.data(), M, F);
  REQUIRE(swiglu(scalar{}, s).ok());
  check_identical(y, y_ref);

  const index_t E = 29;
  const auto c = test::uniform<float>(g, std::size_t(M * E * 2));
  const auto w = test::uniform<float>(g, std::size_t(E));
  const auto o0 = test::uniform<float>(g, std::size_t(M * E));
  std::vector<float> o = o0, o_ref = o0;
  scale_add_args sa;
  sa.o = make_view(o.data(), M, E);
  sa.c = make_view<const float>(c.data(), M, E);
  sa.w = make_view<const float>(w.data(), E);
  CHECK_FALSE(falls_back_to_scalar(be, sa));
  sa.c = tensor_view<const float, 2>::strided(c.data(), {M, E}, {2 * E, 2});
  CHECK(falls_back_to_scalar(be, sa));
  REQUIRE(scale_add(be, sa).ok());
  sa.o = make_view(o_ref.data(), M, E);
  REQUIRE(scale_add(scalar{}, sa).ok());
  check_identical(o, o_ref);
}

TEST_CASE_TEMPLATE("cpu linear: the fallback signal matches what the call runs", Arch,
                   RODIMUS_TEST_CPU_ARCHS) {
  if (!test::arch_runs_here<Arch>()) return;
  const cpu<Arch> be{&test::test_pool()};
  auto g = test::rng(3);
  const index_t M = 3, N = 5, K = 24;
  const auto x = test::uniform<float>(g, std::size_t(M * K));
  const auto w = test::uniform<float>(g, std::size_t(N * K));
  std::vector<float> y(std::size_t(M * N), kPoison), y_ref(y);
  linear_args<float, float> a{make_view<const float>(x.data(), M, K),
                              make_view<const float>(w.data(), N, K), make_view(y.data(), M, N)};
  CHECK_FALSE(falls_back_to_scalar(be, a));
  a.x = tensor_view<const float, 2>::strided(x.data(), {M, K}, {1, M}); // x transposed
  CHECK(falls_back_to_scalar(be, a));
  REQUIRE(linear(be, a).ok());
  a.y = make_view(y_ref.data(), M, N);
  REQUIRE(linear(scalar{}, a).ok());
  check_identical(y, y_ref);
  // An empty output runs nothing at all: no fallback either.
  a.x = tensor_view<const float, 2>::strided(x.data(), {0, K}, {1, M});
  a.y = make_view(y.data(), 0, N);
  CHECK_FALSE(falls_back_to_scalar(be, a));
}

TEST_CASE_TEMPLATE("cpu gla_decode: the fallback signal matches what the call runs", Arch,
                   RODIMUS_TEST_CPU_ARCHS) {
  if (!test::arch_runs_here<Arch>()) return;
  const cpu<Arch> be{&test::test_pool()};
  auto g = test::rng(4);
  const index_t B = 2, H = 1, K = 16, V = 24;
  const auto q = test::uniform<float>(g, std::size_t(B * H * K * 2));
  const auto k = test::uniform<float>(g, std::size_t(B * H * K), -0.2, 0.2);
  const auto gg = test::uniform<float>(g, std::size_t(B * H * K), -0.1, -0.001);
  const auto v = test::uniform<float>(g, std::size_t(B * H * V));
  const auto s0 = test::uniform<float>(g, std::size_t(B * H * K * V));
  std::vector<float> o(std::size_t(B * H * V), kPoison), o_ref(o), s = s0, s_ref = s0;
  gla_decode_args<float, float, float> a;
  a.q = make_view<const float>(q.data(), B, H, K);
  a.k = make_view<const float>(k.data(), B, H, K);
  a.g = make_view<const float>(gg.data(), B, H, K);
  a.v = make_view<const float>(v.data(), B, H, V);
  a.o = make_view(o.data(), B, H, V);
  a.state = make_view(s.data(), B, H, K, V);
  a.scale = 0.25f;
  CHECK_FALSE(falls_back_to_scalar(be, a));
  a.q = tensor_view<const float, 3>::strided(q.data(), {B, H, K}, {2 * H * K, 2 * K, 2});
  CHECK(falls_back_to_scalar(be, a));
  test::workspace_buffer ws(gla_decode_workspace_bytes(be, a));
  REQUIRE(gla_decode(be, a, ws.get()).ok());
  a.o = make_view(o_ref.data(), B, H, V);
  a.state = make_view(s_ref.data(), B, H, K, V);
  test::workspace_buffer ws_ref(gla_decode_workspace_bytes(scalar{}, a));
  REQUIRE(gla_decode(scalar{}, a, ws_ref.get()).ok());
  check_identical(o, o_ref);
  check_identical(s, s_ref);
}
