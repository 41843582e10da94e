// RMSNorm with the fused residual add on any backend against the scalar reference (one body,
// stamped per backend: see support/backend_support.hpp): with and without the residual,
// residual_out kept, not kept, or aliasing residual; short rows (a warp per row on CUDA) and long
// ones (a CTA per row), widths that are not multiples of any SIMD width or warp, more rows than one
// CUDA grid holds (grid-stride), no rows; f32, bf16 and f16 activations; and every bad argument
// (the same status as the reference, nothing written).
//
// Tolerances, relative to max|want|:
//   y, f32: 1e-5. The reference sums s^2 in f64; a backend sums in f32 in its own order (SIMD
//     lanes, warp and CTA trees): for D <= 4096 positive terms that is within ~D^(1/2) * 2^-24 in
//     practice and at most log2(D) * 2^-24 ~ 1e-6 for a tree, halved by the square root.
//   y, 16-bit: 2^-7. Both sides round nearly equal f32 values once; they may land one step
//     apart, and one step of v is up to 2^-7 v (v just above a power of two).
//   residual_out: 1e-6 (it is s = x + residual, one f32 add on every backend: equal in practice;
//     1e-6 leaves room for a backend that fuses it differently).
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "rodimus/backend/scalar/rmsnorm.hpp"
#include "support/backend_support.hpp"
#include "support/primitive_support.hpp"

namespace rodimus::test {

template <class Act> double rmsnorm_tol() { return std::is_same_v<Act, float> ? 1e-5 : 1.0 / 128; }

/// Where the stream s goes: nowhere, a separate residual_out, or back into residual.
enum class rmsnorm_out { none, separate, aliased };

template <class Backend, class Act>
void check_rmsnorm(const Backend& be, index_t M, index_t D, bool with_residual, rmsnorm_out out) {
  CAPTURE(M);
  CAPTURE(D);
  CAPTURE(with_residual);
  CAPTURE(int(out));
  REQUIRE((with_residual || out != rmsnorm_out::aliased));
  auto g = rng(std::uint64_t(M * 97 + D));
  auto x = uniform<Act>(g, std::size_t(M * D), -3, 3);
  auto res = uniform<float>(g, std::size_t(M * D), -3, 3);
  auto w = uniform<float>(g, std::size_t(D), 0.5, 1.5);
  std::vector<Act> y(std::size_t(M * D)), y_ref(y.size());
  std::vector<float> ro(std::size_t(M * D)), ro_ref(ro.size());
  poison(y);
  poison(y_ref);
  poison(ro);
  poison(ro_ref);

  backend_arrays<Backend> mem(be);
  float* d_res = mem.put(res);
  float* d_ro = mem.put(ro);
  Act* d_y = mem.put(y);
  rmsnorm_args<Act, float> a;
  a.x = make_view<const Act>(mem.put(x), M, D);
  a.weight = make_view<const float>(mem.put(w), D);
  if (with_residual) a.residual = make_view<const float>(d_res, M, D);
  if (out == rmsnorm_out::separate) a.residual_out = make_view(d_ro, M, D);
  if (out == rmsnorm_out::aliased) a.residual_out = make_view(d_res, M, D);
  a.y = make_view(d_y, M, D);
  REQUIRE(rmsnorm(be, a).ok());
  std::vector<float> res_got(res.size());
  mem.get(y, d_y);
  mem.get(ro, d_ro);
  mem.get(res_got, d_res);

  auto res_ref = res;
  a.x = make_view<const Act>(x.data(), M, D);
  a.weight = make_view<const float>(w.data(), D);
  if (with_residual) a.residual = make_view<const float>(res_ref.data(), M, D);
  if (out == rmsnorm_out::separate) a.residual_out = make_view(ro_ref.data(), M, D);
  if (out == rmsnorm_out::aliased) a.residual_out = make_view(res_ref.data(), M, D);
  a.y = make_view(y_ref.data(), M, D);
  REQUIRE(rmsnorm(scalar{}, a).ok());

  check_close(y, y_ref, rmsnorm_tol<Act>(), 0.0, "y");
  if (out == rmsnorm_out::aliased) {
    check_close(res_got, res_ref, 1e-6, 0.0, "residual_out (aliased)");
  } else {
    CHECK(res_got == res); // residual is read only
  }
  if (out == rmsnorm_out::separate)
    check_close(ro, ro_ref, 1e-6, 0.0, "residual_out");
  else
    CHECK(all_nan(ro)); // an unused buffer stays untouched
}

/// Every bad argument gives the backend the same status as the reference, and writes nothing.
template <class Backend> void check_rmsnorm_bad_arguments(const Backend& be) {
  std::vector<float> x(12, 1.0f), r(12, 1.0f), y(12), w(4, 1.0f);
  poison(y);
  backend_arrays<Backend> mem(be);
  float* d_r = mem.put(r);
  float* d_y = mem.put(y);
  rmsnorm_args<float> valid;
  valid.x = make_view<const float>(mem.put(x), 3, 4);
  valid.residual = make_view<const float>(d_r, 3, 4);
  valid.residual_out = make_view(d_r, 3, 4);
  valid.weight = make_view<const float>(mem.put(w), 4);
  valid.y = make_view(d_y, 3, 4);
  using A = rmsnorm_args<float>;
  check_bad_cases(
      valid, [&](const A& a) { return rmsnorm(be, a); },
      {
          {"x.data = nullptr", [](A& a) { a.x.data = nullptr; }, status_code::null_pointer, "x"},
          {"weight.data = nullptr", [](A& a) { a.weight.data = nullptr; },
           status_code::null_pointer, "weight"},
          {"y.data = nullptr", [](A& a) { a.y.data = nullptr; }, status_code::null_pointer, "y"},
          {"weight.shape[0] = 3", [](A& a) { a.weight.shape[0] = 3; }, status_code::bad_shape,
           "weight"},
          {"residual.shape[0] = 2", [](A& a) { a.residual.shape[0] = 2; }, status_code::bad_shape,
           "residual"},
          {"residual_out.shape[1] = 5", [](A& a) { a.residual_out.shape[1] = 5; },
           status_code::bad_shape, "residual_out"},
          {"y.shape[0] = 4", [](A& a) { a.y.shape[0] = 4; }, status_code::bad_shape, "y"},
          {"x.shape[0] = -3", [](A& a) { a.x.shape[0] = -3; }, status_code::bad_shape, "x"},
          {"x.shape[1] = 0", [](A& a) { a.x.shape[1] = 0; }, status_code::bad_shape, "x"},
          {"eps = -1.0f", [](A& a) { a.eps = -1.0f; }, status_code::bad_argument, "eps"},
          {"eps = NAN", [](A& a) { a.eps = NAN; }, status_code::bad_argument, "eps"},
      });
  mem.get(y, d_y);
  CHECK(all_nan(y)); // a rejected call writes nothing
  std::vector<float> r_after(r.size());
  mem.get(r_after, d_r);
  CHECK(r_after == r);
}

/// The cases every backend runs.
template <class Backend> void check_rmsnorm_all(const Backend& be) {
  check_rmsnorm<Backend, float>(be, 3, 2048, true, rmsnorm_out::separate);
  check_rmsnorm<Backend, float>(be, 40, 1000, true, rmsnorm_out::aliased);
  check_rmsnorm<Backend, float>(be, 5, 77, false, rmsnorm_out::separate);
  check_rmsnorm<Backend, bf16>(be, 9, 130, true, rmsnorm_out::separate);
  check_rmsnorm<Backend, float>(be, 17, 513, true, rmsnorm_out::none);
  check_rmsnorm<Backend, float>(be, 6, 512, false, rmsnorm_out::none);
  check_rmsnorm<Backend, bf16>(be, 33, 4096, true, rmsnorm_out::aliased);
  check_rmsnorm<Backend, f16>(be, 11, 31, true, rmsnorm_out::aliased);
  check_rmsnorm<Backend, f16>(be, 2, 1030, false, rmsnorm_out::separate);
  // More rows than one CUDA grid of 8-row CTAs holds: the grid-stride loop.
  check_rmsnorm<Backend, float>(be, 8 * 65536 + 9, 3, true, rmsnorm_out::aliased);
  check_rmsnorm<Backend, float>(be, 0, 64, true, rmsnorm_out::separate);
  check_rmsnorm_bad_arguments(be);
}

} // namespace rodimus::test
