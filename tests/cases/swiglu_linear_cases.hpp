// swiglu_linear on any backend against the scalar reference (swiglu, then linear, on the scalar
// backend): batch-1 and small-batch rows (the CUDA GEMV with the gate applied on its way in, split
// and unsplit K, staged in shared memory at one or two rows up to its size limit), rows past the
// GEMV (from 3 rows on CUDA: cuBLAS's operand written by the prologue; here M >= 9), widths
// that are not a whole number of 16-byte pieces (composed on CUDA), f32 / bf16 / f16 weights; no
// rows; every bad argument.
//
// Tolerance per element, with h = silu(gate) * value and S = sum_f |h_f w[n, f]|:
//   |y - y_ref| <= (F + 8) 2^-22 S
// (the f32 products and sums in the backend's order, (F + 2) 2^-23 S as in linear_cases.hpp, and
// h in f32 against the reference's h rounded from f64: a few ulp per element). A gate on the wrong
// half or a missing SiLU is an error of order S. A backend that rounds h once to the weight's
// 16-bit dtype (`rounded`) adds u S (operand_unit_roundoff, rmsnorm_linear_cases.hpp).
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "cases/rmsnorm_linear_cases.hpp" // operand_unit_roundoff
#include "rodimus/backend/scalar/linear.hpp"
#include "rodimus/backend/scalar/swiglu.hpp"
#include "rodimus/primitives/swiglu_linear.hpp"
#include "support/backend_support.hpp"
#include "support/primitive_support.hpp"

namespace rodimus::test {

template <class Backend, class Weight>
void check_swiglu_linear(const Backend& be, index_t M, index_t F, index_t N, bool rounded = false) {
  CAPTURE(M);
  CAPTURE(F);
  CAPTURE(N);
  CAPTURE(sizeof(Weight));
  auto g = rng(std::uint64_t(M * 104729 + F * 37 + N));
  auto fc = uniform<float>(g, std::size_t(M * 2 * F), -6, 4);
  auto w = uniform<Weight>(g, std::size_t(N * F), -0.1, 0.1);
  std::vector<float> y(std::size_t(M * N)), y_ref(y.size());
  poison(y);
  poison(y_ref);

  backend_arrays<Backend> mem(be);
  float* d_y = mem.put(y);
  swiglu_linear_args<Weight> a{make_view<const float>(mem.put(fc), M, 2 * F),
                               make_view<const Weight>(mem.put(w), N, F), make_view(d_y, M, N),
                               true};
  backend_workspace<Backend> ws(be, swiglu_linear_workspace_bytes(be, a));
  REQUIRE(swiglu_linear(be, a, ws.get()).ok());
  mem.get(y, d_y);

  swiglu_linear_args<Weight> r{make_view<const float>(fc.data(), M, 2 * F),
                               make_view<const Weight>(w.data(), N, F),
                               make_view(y_ref.data(), M, N), true};
  std::vector<unsigned char> host_ws(swiglu_linear_workspace_bytes(scalar{}, r) + 64);
  REQUIRE(swiglu_linear(scalar{}, r, workspace{host_ws.data(), host_ws.size(), 0}).ok());

  std::size_t bad = 0;
  double worst = 0.0;
  for (index_t m = 0; m < M; ++m)
    for (index_t n = 0; n < N; ++n) {
      double S = 0.0;
      for (index_t f = 0; f < F; ++f) {
        const double v = fc[std::size_t(m * 2 * F + f)], gt = fc[std::size_t(m * 2 * F + F + f)];
        S += std::fabs(v * gt / (1.0 + std::exp(-gt)) * to_double(w[std::size_t(n * F + f)]));
      }
      const double u = rounded ? operand_unit_roundoff<Weight>() : 0.0;
      const double bound = (double(F + 8) * std::ldexp(1.0, -22) + u) * S + 1e-30;
      const double diff =
          std::fabs(double(y[std::size_t(m * N + n)]) - y_ref[std::size_t(m * N + n)]);
      worst = std::max(worst, diff / bound);
      if (!(diff <= bound)) ++bad; // NaN counts as bad
    }
  INFO("max |y - y_ref| / bound = " << worst);
  CHECK(bad == 0);
}

/// Rows past CUDA's GEMV (M >= 3 since linear_policy::gemv_max_m is 2): with 16-bit weights the
/// gated values written straight as cuBLAS's operand (no norm: one pass over any F), f32 weights
/// and F % 4 != 0 composed; decode batches of 3..8 rows (stacked exact products where 8 M <= F).
template <class Backend> void check_swiglu_linear_past_gemv(const Backend& be, bool rounded) {
  check_swiglu_linear<Backend, bf16>(be, 3, 2728, 40, rounded);
  check_swiglu_linear<Backend, bf16>(be, 8, 48, 33, rounded);
  check_swiglu_linear<Backend, bf16>(be, 9, 64, 33, rounded);
  check_swiglu_linear<Backend, bf16>(be, 40, 2728, 64, rounded); // the 1.6B FFN's F
  check_swiglu_linear<Backend, f16>(be, 13, 4104, 20, rounded);
  check_swiglu_linear<Backend, float>(be, 10, 128, 16, rounded);
  check_swiglu_linear<Backend, bf16>(be, 10, 98, 16, rounded);
}

/// Every bad argument gives the backend the same status as the reference, and writes nothing.
template <class Backend> void check_swiglu_linear_bad_arguments(const Backend& be) {
  std::vector<float> fc(24, 1.0f), w(20, 0.5f), y(15);
  poison(y);
  backend_arrays<Backend> mem(be);
  float* d_y = mem.put(y);
  float* d_fc = mem.put(fc);
  swiglu_linear_args<float> valid{make_view<const float>(d_fc, 3, 8),
                                  make_view<const float>(mem.put(w), 5, 4), make_view(d_y, 3, 5),
                                  true};
  using A = swiglu_linear_args<float>;
  backend_workspace<Backend> ws(be, 4096);
  check_bad_cases(
      valid, [&](const A& a) { return swiglu_linear(be, a, ws.get()); },
      {
          {"fc.data = nullptr", [](A& a) { a.fc.data = nullptr; }, status_code::null_pointer, "fc"},
          {"w.data = nullptr", [](A& a) { a.w.data = nullptr; }, status_code::null_pointer, "w"},
          {"y.data = nullptr", [](A& a) { a.y.data = nullptr; }, status_code::null_pointer, "y"},
          {"fc.shape[1] = 7", [](A& a) { a.fc.shape[1] = 7; }, status_code::bad_shape, "fc"},
          {"w.shape[1] = 3", [](A& a) { a.w.shape[1] = 3; }, status_code::bad_shape, "w"},
          {"y.shape[0] = 2", [](A& a) { a.y.shape[0] = 2; }, status_code::bad_shape, "y"},
      });
  A over = valid; // y over fc
  over.y = make_view(d_fc + 1, 3, 5);
  over.y.stride[0] = 5;
  check_status(swiglu_linear(be, over, ws.get()), status_code::bad_argument, "y");
  mem.get(y, d_y);
  CHECK(all_nan(y)); // a rejected call writes nothing
}

/// The cases every backend runs.
template <class Backend> void check_swiglu_linear_all(const Backend& be) {
  check_swiglu_linear<Backend, bf16>(be, 1, 2728, 2048); // the 1.6B FFN's down projection
  check_swiglu_linear<Backend, bf16>(be, 1, 512, 4100);  // unsplit K
  // CUDA stages the gated rows in shared memory at one or two rows of F f32 within 32 KiB
  // (linear_gemv_stages): two rows split (more row groups than CTAs) and unsplit, at the limit
  // (F = 8192 at one row, 4096 at two) and just past it (composed).
  check_swiglu_linear<Backend, bf16>(be, 2, 2728, 2048);
  check_swiglu_linear<Backend, bf16>(be, 2, 1000, 4100);
  check_swiglu_linear<Backend, bf16>(be, 1, 8192, 64);
  check_swiglu_linear<Backend, bf16>(be, 1, 8200, 64);
  check_swiglu_linear<Backend, bf16>(be, 2, 4096, 33);
  check_swiglu_linear<Backend, bf16>(be, 2, 4104, 33);
  check_swiglu_linear<Backend, f16>(be, 3, 256, 45);
  check_swiglu_linear<Backend, float>(be, 8, 64, 7);
  check_swiglu_linear_past_gemv(be, false);
  check_swiglu_linear<Backend, bf16>(be, 2, 100, 9); // not whole 16-byte pieces
  check_swiglu_linear<Backend, float>(be, 0, 64, 16);
  check_swiglu_linear_bad_arguments(be);
}

} // namespace rodimus::test
