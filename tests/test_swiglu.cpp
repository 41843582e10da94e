// SwiGLU of the Rodimus+ FFN, scalar reference: y = silu(second half) * first half
// (docs/MODEL.md §1.6), against a straightforward double formula in every dtype, with bad
// arguments.
#include "support/primitive_support.hpp"
#include "support/test_support.hpp"

#include "rodimus/backend/scalar/swiglu.hpp"

using namespace rodimus;

TEST_CASE("swiglu equals silu(fc[:, F:]) * fc[:, :F] in every dtype") {
  auto g = test::rng(51);
  const index_t M = 5, F = 24;
  const auto fc0 = test::uniform<double>(g, std::size_t(M * 2 * F), -8, 8);
  auto check = [&](auto tag, double rel, const char* what) {
    using A = decltype(tag);
    const std::vector<A> fc = test::convert<A>(fc0);
    std::vector<double> want(std::size_t(M * F)), wrong(std::size_t(M * F));
    for (index_t m = 0; m < M; ++m)
      for (index_t f = 0; f < F; ++f) {
        const double v = load_as<double>(fc[std::size_t(m * 2 * F + f)]);
        const double gt = load_as<double>(fc[std::size_t(m * 2 * F + F + f)]);
        want[std::size_t(m * F + f)] = gt / (1.0 + std::exp(-gt)) * v;
        wrong[std::size_t(m * F + f)] = v / (1.0 + std::exp(-v)) * gt; // SiLU on the wrong half
      }
    std::vector<A> y(std::size_t(M * F));
    test::poison(y);
    swiglu_args<A> a;
    a.fc = make_view<const A>(fc.data(), M, 2 * F);
    a.y = make_view(y.data(), M, F);
    REQUIRE(swiglu(scalar{}, a).ok());
    test::check_close(y, want, rel, 0.0, what);
    CHECK(test::max_abs_diff(y, wrong) > 0.1);
  };
  check(double{}, 1e-15, "f64");
  check(float{}, 1e-7, "f32");
  check(bf16{}, 1.0 / 256, "bf16");
  check(f16{}, 1.0 / 2048, "f16");
}

TEST_CASE("swiglu works on strided views (fc rows with padding)") {
  auto g = test::rng(52);
  const index_t M = 3, F = 5, ld = 2 * F + 3;
  const auto fc = test::uniform<float>(g, std::size_t(M * ld), -4, 4);
  std::vector<float> y(std::size_t(M * F));
  test::poison(y);
  swiglu_args<float> a;
  a.fc = tensor_view<const float, 2>::strided(fc.data(), {M, 2 * F}, {ld, 1});
  a.y = make_view(y.data(), M, F);
  REQUIRE(swiglu(scalar{}, a).ok());
  for (index_t m = 0; m < M; ++m)
    for (index_t f = 0; f < F; ++f) {
      const double v = fc[std::size_t(m * ld + f)], gt = fc[std::size_t(m * ld + F + f)];
      CHECK(std::fabs(double(y[std::size_t(m * F + f)]) - gt / (1.0 + std::exp(-gt)) * v) <= 1e-6);
    }
}

TEST_CASE("swiglu: bad arguments return a status naming the argument") {
  std::vector<float> fc(3 * 8), y(3 * 4);
  auto base = [&] {
    swiglu_args<float> a;
    a.fc = make_view<const float>(fc.data(), 3, 8);
    a.y = make_view(y.data(), 3, 4);
    return a;
  };
  CHECK(swiglu(scalar{}, base()).ok());
  test::poison(y); // a rejected call writes nothing
  test::check_bad_cases(
      base(), [](const swiglu_args<float>& a) { return swiglu(scalar{}, a); },
      {
          {"fc.data = nullptr", [](swiglu_args<float>& a) { a.fc.data = nullptr; },
           status_code::null_pointer, "fc"},
          {"y.data = nullptr", [](swiglu_args<float>& a) { a.y.data = nullptr; },
           status_code::null_pointer, "y"},
          {"fc.shape[1] = 7", [](swiglu_args<float>& a) { a.fc.shape[1] = 7; },
           status_code::bad_shape, "fc"},
          {"fc.shape[0] = -1", [](swiglu_args<float>& a) { a.fc.shape[0] = -1; },
           status_code::bad_shape, "fc"},
          {"y.shape[1] = 3", [](swiglu_args<float>& a) { a.y.shape[1] = 3; },
           status_code::bad_shape, "y"},
          {"y.shape[0] = 2", [](swiglu_args<float>& a) { a.y.shape[0] = 2; },
           status_code::bad_shape, "y"},
      });
  CHECK(test::all_nan(y));
}
