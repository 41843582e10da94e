// RMSNorm with fused residual add and the gated RMSNorm, scalar reference, against straightforward
// double formulas (docs/MODEL.md §1.2, §2.3 step 12), in every dtype, with aliasing and bad
// arguments.
#include "support/primitive_support.hpp"
#include "support/test_support.hpp"

#include "rodimus/backend/scalar/gated_rmsnorm.hpp"
#include "rodimus/backend/scalar/rmsnorm.hpp"

using namespace rodimus;

namespace {

/// docs/MODEL.md §1.2: s = f32(x) + residual (f32 add), y = s / sqrt(mean(s^2) + eps) * w, in
/// double.
void rms_formula(const std::vector<double>& x, const std::vector<float>* residual,
                 const std::vector<float>& w, index_t M, index_t D, double eps,
                 std::vector<double>& y, std::vector<float>& s) {
  y.resize(std::size_t(M * D));
  s.resize(std::size_t(M * D));
  for (index_t m = 0; m < M; ++m) {
    double ss = 0;
    for (index_t d = 0; d < D; ++d) {
      const std::size_t i = std::size_t(m * D + d);
      s[i] = float(x[i]) + (residual ? (*residual)[i] : 0.0f);
      ss += double(s[i]) * double(s[i]);
    }
    for (index_t d = 0; d < D; ++d) {
      const std::size_t i = std::size_t(m * D + d);
      y[i] = double(s[i]) / std::sqrt(ss / double(D) + eps) * double(w[std::size_t(d)]);
    }
  }
}

template <class A>
status rms(const std::vector<A>& x, const std::vector<float>* residual,
           std::vector<float>* residual_out, const std::vector<float>& w, index_t M, index_t D,
           std::vector<A>& y, float eps = 1e-5f) {
  y.assign(std::size_t(M * D), A{});
  test::poison(y);
  rmsnorm_args<A> a;
  a.x = make_view(x.data(), M, D);
  if (residual) a.residual = make_view<const float>(residual->data(), M, D);
  if (residual_out) a.residual_out = make_view(residual_out->data(), M, D);
  a.weight = make_view(w.data(), D);
  a.y = make_view(y.data(), M, D);
  a.eps = eps;
  return rmsnorm(scalar{}, a);
}

} // namespace

TEST_CASE(
    "rmsnorm equals the formula with and without a residual; residual_out may alias residual") {
  auto g = test::rng(41);
  const index_t M = 5, D = 24;
  const auto x = test::uniform<double>(g, std::size_t(M * D), -3, 3);
  const auto res = test::uniform<float>(g, std::size_t(M * D), -3, 3);
  const auto w = test::uniform<float>(g, std::size_t(D), 0.5, 1.5);
  for (float eps : {1e-5f, 0.5f}) {
    CAPTURE(eps);
    // First layer: no residual, the stream is f32(x).
    std::vector<double> y_want, y;
    std::vector<float> s_want, s_out(std::size_t(M * D));
    test::poison(s_out);
    rms_formula(x, nullptr, w, M, D, double(eps), y_want, s_want);
    REQUIRE(rms(x, nullptr, &s_out, w, M, D, y, eps).ok());
    test::check_close(y, y_want, 1e-14, 1.0, "y, no residual");
    CHECK(test::max_abs_diff(s_out, s_want) == 0.0);
    // With a residual, kept in a separate buffer, not kept, and updated in place.
    rms_formula(x, &res, w, M, D, double(eps), y_want, s_want);
    test::poison(s_out);
    REQUIRE(rms(x, &res, &s_out, w, M, D, y, eps).ok());
    test::check_close(y, y_want, 1e-14, 1.0, "y, residual");
    CHECK(test::max_abs_diff(s_out, s_want) == 0.0);
    REQUIRE(rms(x, &res, nullptr, w, M, D, y, eps).ok());
    test::check_close(y, y_want, 1e-14, 1.0, "y, residual not kept");
    auto stream = res;
    REQUIRE(rms(x, &stream, &stream, w, M, D, y, eps).ok());
    test::check_close(y, y_want, 1e-14, 1.0, "y, in place");
    CHECK(test::max_abs_diff(stream, s_want) == 0.0);
  }
}

TEST_CASE(
    "rmsnorm: the sum is rounded to the f32 stream before the norm; a f64 stream keeps it exact") {
  // x = 1 + 2^-30 does not survive the f32 add; with Residual = double it does.
  const index_t M = 1, D = 2;
  const std::vector<double> x = {1.0 + std::ldexp(1.0, -30), -3.0};
  const std::vector<float> res = {0.0f, 0.0f};
  const std::vector<float> w = {1.0f, 1.0f};
  std::vector<double> y;
  std::vector<float> s(2);
  REQUIRE(rms(x, &res, &s, w, M, D, y).ok());
  CHECK(s[0] == 1.0f);
  std::vector<double> s64(2), res64 = {0.0, 0.0}, y64(2);
  rmsnorm_args<double, double> a;
  a.x = make_view(x.data(), M, D);
  a.residual = make_view<const double>(res64.data(), M, D);
  a.residual_out = make_view(s64.data(), M, D);
  a.weight = make_view(w.data(), D);
  a.y = make_view(y64.data(), M, D);
  REQUIRE(rmsnorm(scalar{}, a).ok());
  CHECK(s64[0] == x[0]);
  const double rstd = 1.0 / std::sqrt((x[0] * x[0] + 9.0) / 2.0 + double(1e-5f));
  CHECK(std::fabs(y64[0] - x[0] * rstd) < 1e-15);
}

TEST_CASE("rmsnorm in f32, bf16 and f16 stays within rounding of f64 on the same inputs") {
  auto g = test::rng(42);
  const index_t M = 7, D = 64;
  const auto x0 = test::uniform<double>(g, std::size_t(M * D), -3, 3);
  const auto res = test::uniform<float>(g, std::size_t(M * D), -3, 3);
  const auto w = test::uniform<float>(g, std::size_t(D), 0.5, 1.5);
  auto check = [&](auto tag, double rel, const char* what) {
    using A = decltype(tag);
    const auto x = test::convert<A>(x0);
    std::vector<double> yd;
    std::vector<A> y;
    std::vector<float> sd(std::size_t(M * D)), s(std::size_t(M * D));
    REQUIRE(rms(test::widen(x), &res, &sd, w, M, D, yd).ok());
    REQUIRE(rms(x, &res, &s, w, M, D, y).ok());
    test::check_close(y, yd, rel, 0.0, what);
    CHECK(test::max_abs_diff(s, sd) == 0.0);
  };
  check(float{}, 1e-7, "f32");
  check(bf16{}, 1.0 / 256, "bf16");
  check(f16{}, 1.0 / 2048, "f16");
}

TEST_CASE("gated_rmsnorm equals norm(x * silu(gate)) * w (gate before the norm), in every dtype") {
  auto g = test::rng(43);
  const index_t M = 4, E = 40;
  const auto x0 = test::uniform<double>(g, std::size_t(M * E), -3, 3);
  const auto gate0 = test::uniform<double>(g, std::size_t(M * E), -6, 6);
  const auto w = test::uniform<float>(g, std::size_t(E), 0.5, 1.5);
  auto formula = [&](const std::vector<double>& x, const std::vector<double>& gt, double eps) {
    std::vector<double> y(x.size());
    for (index_t m = 0; m < M; ++m) {
      std::vector<double> z(static_cast<std::size_t>(E));
      double ss = 0;
      for (index_t e = 0; e < E; ++e) {
        const std::size_t i = std::size_t(m * E + e);
        z[std::size_t(e)] = x[i] * gt[i] / (1.0 + std::exp(-gt[i]));
        ss += z[std::size_t(e)] * z[std::size_t(e)];
      }
      for (index_t e = 0; e < E; ++e)
        y[std::size_t(m * E + e)] =
            z[std::size_t(e)] / std::sqrt(ss / double(E) + eps) * double(w[std::size_t(e)]);
    }
    return y;
  };
  auto check = [&](auto tag, double rel, const char* what) {
    using A = decltype(tag);
    const auto x = test::convert<A>(x0), gate = test::convert<A>(gate0);
    std::vector<A> y(x.size());
    test::poison(y);
    gated_rmsnorm_args<A> a;
    a.x = make_view(x.data(), M, E);
    a.gate = make_view(gate.data(), M, E);
    a.weight = make_view(w.data(), E);
    a.y = make_view(y.data(), M, E);
    REQUIRE(gated_rmsnorm(scalar{}, a).ok());
    test::check_close(y, formula(test::widen(x), test::widen(gate), double(1e-5f)), rel, 0.0, what);
    // In place over x gives the same.
    auto xy = x;
    a.x = make_view<const A>(xy.data(), M, E);
    a.y = make_view(xy.data(), M, E);
    REQUIRE(gated_rmsnorm(scalar{}, a).ok());
    CHECK(test::max_abs_diff(xy, y) == 0.0);
  };
  check(double{}, 1e-14, "f64");
  check(float{}, 1e-7, "f32");
  check(bf16{}, 1.0 / 256, "bf16");
  check(f16{}, 1.0 / 2048, "f16");
}

TEST_CASE("rmsnorm and gated_rmsnorm: bad arguments return a status naming the argument") {
  std::vector<float> x(12), r(12), y(12), w(4);
  auto base = [&] {
    rmsnorm_args<float> a;
    a.x = make_view<const float>(x.data(), 3, 4);
    a.residual = make_view<const float>(r.data(), 3, 4);
    a.residual_out = make_view(r.data(), 3, 4);
    a.weight = make_view<const float>(w.data(), 4);
    a.y = make_view(y.data(), 3, 4);
    return a;
  };
  CHECK(rmsnorm(scalar{}, base()).ok());
  test::poison(y); // a rejected call writes nothing
  test::check_bad_cases(
      base(), [](const rmsnorm_args<float>& a) { return rmsnorm(scalar{}, a); },
      {
          {"x.data = nullptr", [](rmsnorm_args<float>& a) { a.x.data = nullptr; },
           status_code::null_pointer, "x"},
          {"weight.data = nullptr", [](rmsnorm_args<float>& a) { a.weight.data = nullptr; },
           status_code::null_pointer, "weight"},
          {"y.data = nullptr", [](rmsnorm_args<float>& a) { a.y.data = nullptr; },
           status_code::null_pointer, "y"},
          {"weight.shape[0] = 3", [](rmsnorm_args<float>& a) { a.weight.shape[0] = 3; },
           status_code::bad_shape, "weight"},
          {"residual.shape[0] = 2", [](rmsnorm_args<float>& a) { a.residual.shape[0] = 2; },
           status_code::bad_shape, "residual"},
          {"residual_out.shape[1] = 5", [](rmsnorm_args<float>& a) { a.residual_out.shape[1] = 5; },
           status_code::bad_shape, "residual_out"},
          {"y.shape[0] = 4", [](rmsnorm_args<float>& a) { a.y.shape[0] = 4; },
           status_code::bad_shape, "y"},
          {"x.shape[0] = -3", [](rmsnorm_args<float>& a) { a.x.shape[0] = -3; },
           status_code::bad_shape, "x"},
          {"x.shape[1] = 0", [](rmsnorm_args<float>& a) { a.x.shape[1] = 0; },
           status_code::bad_shape, "x"},
          {"eps = -1.0f", [](rmsnorm_args<float>& a) { a.eps = -1.0f; }, status_code::bad_argument,
           "eps"},
      });

  CHECK(test::all_nan(y));
  auto gbase = [&] {
    gated_rmsnorm_args<float> a;
    a.x = make_view<const float>(x.data(), 3, 4);
    a.gate = make_view<const float>(r.data(), 3, 4);
    a.weight = make_view<const float>(w.data(), 4);
    a.y = make_view(y.data(), 3, 4);
    return a;
  };
  CHECK(gated_rmsnorm(scalar{}, gbase()).ok());
  test::poison(y);
  test::check_bad_cases(
      gbase(), [](const gated_rmsnorm_args<float>& a) { return gated_rmsnorm(scalar{}, a); },
      {
          {"gate.data = nullptr", [](gated_rmsnorm_args<float>& a) { a.gate.data = nullptr; },
           status_code::null_pointer, "gate"},
          {"gate.shape[1] = 3", [](gated_rmsnorm_args<float>& a) { a.gate.shape[1] = 3; },
           status_code::bad_shape, "gate"},
          {"weight.shape[0] = 5", [](gated_rmsnorm_args<float>& a) { a.weight.shape[0] = 5; },
           status_code::bad_shape, "weight"},
          {"y.shape[1] = 2", [](gated_rmsnorm_args<float>& a) { a.y.shape[1] = 2; },
           status_code::bad_shape, "y"},
          {"x.shape[1] = 0", [](gated_rmsnorm_args<float>& a) { a.x.shape[1] = 0; },
           status_code::bad_shape, "x"},
          {"eps = NAN", [](gated_rmsnorm_args<float>& a) { a.eps = NAN; },
           status_code::bad_argument, "eps"},
      });
  CHECK(test::all_nan(y));
}
