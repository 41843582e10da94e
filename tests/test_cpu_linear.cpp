// linear() on cpu<Arch> against the scalar reference: decode (M <= 4, matrix-vector kernel) and
// prefill (Eigen GEMM) shapes, f32 / bf16 / f16 weights and activations, odd sizes, strided rows.
//
// Tolerances: f32 outputs 1e-5 relative to max|y| (f32 against f64 accumulation). 16-bit outputs:
// the products of 16-bit inputs are exact in f32 and the sums differ from the f64 reference only by
// f32 rounding, but the final rounding to bf16 (f16) can then land one step apart: 2^-8 (2^-11)
// relative to max|y| allows exactly that one step.
#include "test_cpu_support.hpp"

#include "rodimus/backend/cpu/linear.hpp"

using namespace rodimus;

namespace {

template <class T> double out_tolerance() {
  if (std::is_same_v<T, bf16>) return 1.0 / 256;
  if (std::is_same_v<T, f16>) return 1.0 / 2048;
  return 1e-5;
}

template <class Arch, class Act, class Weight>
void check_linear(index_t M, index_t K, index_t N, index_t x_pad, bool use_pool) {
  CAPTURE(M);
  CAPTURE(K);
  CAPTURE(N);
  CAPTURE(x_pad);
  CAPTURE(use_pool);
  auto g = test::rng(std::uint64_t(M * 1000003 + K * 101 + N));
  const index_t ldx = K + x_pad;
  auto x = test::uniform<Act>(g, std::size_t(M * ldx));
  auto w = test::uniform<Weight>(g, std::size_t(N * K), -0.5, 0.5);
  std::vector<Act> y(std::size_t(M * N)), y_ref(std::size_t(M * N));
  test::poison(y);
  test::poison(y_ref);
  linear_args<Act, Weight> a;
  a.x = tensor_view<const Act, 2>::strided(x.data(), {M, K}, {ldx, 1});
  a.w = make_view<const Weight>(w.data(), N, K);
  a.y = make_view(y.data(), M, N);
  cpu<Arch> be{use_pool ? &test::test_pool() : nullptr};
  REQUIRE(linear(be, a).ok());
  a.y = make_view(y_ref.data(), M, N);
  REQUIRE(linear(scalar{}, a).ok());
  test::check_close(y, y_ref, out_tolerance<Act>(), 0.0, "y");
}

} // namespace

TEST_CASE_TEMPLATE("cpu linear matches the scalar reference", Arch, RODIMUS_TEST_CPU_ARCHS) {
  if (!test::arch_runs_here<Arch>()) return;
  for (bool pool : {false, true}) {
    // Decode shapes (matrix-vector kernel), including K and N that are not multiples of the width.
    for (index_t M : {1, 2, 3, 4}) {
      check_linear<Arch, float, float>(M, 256, 67, 0, pool);
      check_linear<Arch, float, bf16>(M, 300, 45, 3, pool);
      check_linear<Arch, bf16, bf16>(M, 2048, 33, 0, pool);
      check_linear<Arch, bf16, f16>(M, 37, 9, 1, pool);
      check_linear<Arch, f16, f16>(M, 129, 17, 0, pool);
      // bf16 weights: K below one even/odd pair of vectors (generic loads only), K with a pair
      // tail, and a long K over many rows (prefetch, several chunks per thread).
      check_linear<Arch, float, bf16>(M, 21, 13, 0, pool);
      check_linear<Arch, float, bf16>(M, 5472 + 7, 70, 2, pool);
    }
    // Prefill shapes (Eigen GEMM, tiles with remainders in M, N and K).
    check_linear<Arch, float, float>(5, 300, 140, 2, pool);
    check_linear<Arch, float, bf16>(70, 520, 131, 0, pool);
    check_linear<Arch, bf16, bf16>(67, 257, 260, 5, pool);
    check_linear<Arch, f16, f16>(9, 64, 33, 0, pool);
  }
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
