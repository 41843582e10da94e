// linear() on cpu<Arch> against the scalar reference: the shared bodies of
// tests/cases/linear_cases.hpp (tolerances explained there), with and without the thread pool.
// check_linear_kernel_shapes reaches the decode kernels (M <= 4: f32/f16 and bf16 matrix-vector
// kernels, the paired bf16 path, tails) and the prefill GEMM (tiles with remainders in M, N, K);
// check_linear_all adds the sizes every backend runs (M up to 300, odd K and N, padded and
// transposed views) and the bad arguments.
#include "test_cpu_support.hpp"

#include "cases/linear_cases.hpp"

#include "rodimus/backend/cpu/linear.hpp"

using namespace rodimus;

TEST_CASE_TEMPLATE("cpu linear matches the scalar reference", Arch, RODIMUS_TEST_CPU_ARCHS) {
  if (!test::arch_runs_here<Arch>()) return;
  for (bool pool : {false, true}) {
    CAPTURE(pool);
    test::check_linear_kernel_shapes(cpu<Arch>{pool ? &test::test_pool() : nullptr});
  }
  test::check_linear_all(cpu<Arch>{&test::test_pool()});
}

TEST_CASE("cpu linear rejects bad shapes naming the argument") {
  std::vector<float> x(8), w(8), y(8);
  linear_args<float, float> a;
  a.x = make_view<const float>(x.data(), 2, 4);
  a.w = make_view<const float>(w.data(), 2, 3);
  a.y = make_view(y.data(), 2, 2);
  const status s = linear(cpu<>{}, a);
  CHECK(s.code == status_code::bad_shape);
  CHECK(std::string(s.what) == "w");
}

TEST_CASE("cpu and scalar linear need no workspace and take one") {
  std::vector<float> x(8, 1.0f), w(8, 0.5f), y(4), y_ref(4);
  linear_args<float, float> a;
  a.x = make_view<const float>(x.data(), 2, 4);
  a.w = make_view<const float>(w.data(), 2, 4);
  a.y = make_view(y.data(), 2, 2);
  CHECK(linear_workspace_bytes(cpu<>{}, a) == 0);
  CHECK(linear_workspace_bytes(scalar{}, a) == 0);
  REQUIRE(linear(cpu<>{}, a, workspace{}).ok());
  a.y = make_view(y_ref.data(), 2, 2);
  REQUIRE(linear(scalar{}, a, workspace{}).ok());
  for (std::size_t i = 0; i < y.size(); ++i) {
    CHECK(y[i] == 2.0f);
    CHECK(y_ref[i] == 2.0f);
  }
}
