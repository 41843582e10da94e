// rmsnorm_linear on any backend against the scalar reference (rmsnorm or gated_rmsnorm, then
// linear, on the scalar backend): the three prologues (x alone, x + residual with and without the
// stream kept in sum_out, x * silu(gate)); batch-1 and small-batch rows (the CUDA GEMV with its
// fused prologue staged in shared memory at one or two rows up to its size limit, split and
// unsplit K; composed past that limit), rows past the GEMV (from 3 rows on CUDA: cuBLAS's operand
// written by the prologue; M >= 9 in both matmul modes), widths that are not a whole
// number of 16-byte pieces (composed on CUDA), f32 / bf16 / f16 weights; no rows;
// every bad argument (the same status as the reference, nothing written).
//
// Tolerance per element, with n = the normed row and S = sum_k |n_k w[n, k]|:
//   |y - y_ref| <= (K + 8) 2^-22 S
// The backends sum K f32 products in their own order ((K + 2) 2^-23 S, as linear_cases.hpp) and
// compute rsqrt(mean(s^2) + eps) from an f32 sum of K squares (relative K 2^-24 + a few ulp), which
// a fused kernel applies after the products: together below (K + 8) 2^-22 S. A wrong norm weight,
// a missing gate or a wrong rsqrt are relative errors of order 1, far above it. sum_out is exact:
// s = x + residual is one f32 addition on every backend. A backend that rounds n once to the
// weight's 16-bit dtype before the products (CUDA's cuda_matmul::rounded past the GEMV) adds
// u S, u the dtype's unit roundoff (operand_u: bf16 2^-8, f16 2^-11, 0 for f32 weights).
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "rodimus/backend/scalar/gated_rmsnorm.hpp"
#include "rodimus/backend/scalar/linear.hpp"
#include "rodimus/backend/scalar/rmsnorm.hpp"
#include "rodimus/primitives/rmsnorm_linear.hpp"
#include "support/backend_support.hpp"
#include "support/primitive_support.hpp"

namespace rodimus::test {

/// What goes in front of the norm.
enum class norm_input { plain, residual, residual_kept, gated };

/// The unit roundoff of one rounding to Weight (0 for f32: never rounded).
template <class Weight> double operand_unit_roundoff() {
  if constexpr (std::is_same_v<Weight, bf16>)
    return std::ldexp(1.0, -8);
  else if constexpr (std::is_same_v<Weight, f16>)
    return std::ldexp(1.0, -11);
  else
    return 0.0;
}

template <class Backend, class Weight>
void check_rmsnorm_linear(const Backend& be, index_t M, index_t K, index_t N, norm_input in,
                          bool rounded = false) {
  CAPTURE(M);
  CAPTURE(K);
  CAPTURE(N);
  CAPTURE(int(in));
  CAPTURE(sizeof(Weight));
  auto g = rng(std::uint64_t(M * 7919 + K * 31 + N * 3 + int(in)));
  const auto MK = std::size_t(M * K);
  auto x = uniform<float>(g, MK, -2, 2);
  auto residual = uniform<float>(g, MK, -3, 3);
  auto gate = uniform<float>(g, MK, -20, 8);
  auto nw = uniform<float>(g, std::size_t(K), 0.5, 1.5);
  auto w = uniform<Weight>(g, std::size_t(N * K), -0.1, 0.1);
  std::vector<float> y(std::size_t(M * N)), sum(MK), y_ref(y.size()), sum_ref(MK);
  poison(y);
  poison(sum);
  poison(y_ref);
  poison(sum_ref);
  const bool with_residual = in == norm_input::residual || in == norm_input::residual_kept;
  const bool keep = in == norm_input::residual_kept;

  // Two argument sets over two memories, the same views otherwise.
  auto args = [&](const float* dx, const float* dr, const float* dg, float* ds, const float* dnw,
                  const Weight* dw, float* dy) {
    rmsnorm_linear_args<Weight> a;
    a.x = make_view(dx, M, K);
    if (with_residual) a.residual = make_view(dr, M, K);
    if (in == norm_input::gated) a.gate = make_view(dg, M, K);
    if (keep) a.sum_out = make_view(ds, M, K);
    a.norm_weight = make_view(dnw, K);
    a.eps = 1e-5f;
    a.w = make_view(dw, N, K);
    a.y = make_view(dy, M, N);
    a.w_constant = true;
    return a;
  };
  backend_arrays<Backend> mem(be);
  float* d_y = mem.put(y);
  float* d_sum = mem.put(sum);
  const auto a =
      args(mem.put(x), mem.put(residual), mem.put(gate), d_sum, mem.put(nw), mem.put(w), d_y);
  backend_workspace<Backend> ws(be, rmsnorm_linear_workspace_bytes(be, a));
  REQUIRE(rmsnorm_linear(be, a, ws.get()).ok());
  mem.get(y, d_y);
  mem.get(sum, d_sum);

  const auto r = args(x.data(), residual.data(), gate.data(), sum_ref.data(), nw.data(), w.data(),
                      y_ref.data());
  std::vector<unsigned char> host_ws(rmsnorm_linear_workspace_bytes(scalar{}, r) + 64);
  REQUIRE(rmsnorm_linear(scalar{}, r, workspace{host_ws.data(), host_ws.size(), 0}).ok());

  // The normed rows, for the bound: n = s * rsqrt(mean(s^2) + eps) * nw (f64).
  std::vector<double> n(MK);
  for (index_t m = 0; m < M; ++m) {
    double ss = 0.0;
    for (index_t k = 0; k < K; ++k) {
      const auto i = std::size_t(m * K + k);
      double s = x[i];
      if (with_residual) s = double(x[i] + residual[i]); // the f32 stream
      if (in == norm_input::gated) s *= double(gate[i]) / (1.0 + std::exp(-double(gate[i])));
      n[i] = s;
      ss += s * s;
    }
    const double rs = 1.0 / std::sqrt(ss / double(K) + 1e-5);
    for (index_t k = 0; k < K; ++k)
      n[std::size_t(m * K + k)] *= rs * nw[std::size_t(k)];
  }
  std::size_t bad = 0;
  double worst = 0.0;
  for (index_t m = 0; m < M; ++m)
    for (index_t j = 0; j < N; ++j) {
      double S = 0.0;
      for (index_t k = 0; k < K; ++k)
        S += std::fabs(n[std::size_t(m * K + k)] * to_double(w[std::size_t(j * K + k)]));
      const double u = rounded ? operand_unit_roundoff<Weight>() : 0.0;
      const double bound = (double(K + 8) * std::ldexp(1.0, -22) + u) * S + 1e-30;
      const double diff =
          std::fabs(double(y[std::size_t(m * N + j)]) - y_ref[std::size_t(m * N + j)]);
      worst = std::max(worst, diff / bound);
      if (!(diff <= bound)) ++bad; // NaN counts as bad
    }
  INFO("max |y - y_ref| / bound = " << worst);
  CHECK(bad == 0);
  if (keep)
    check_close(sum, sum_ref, 0.0, 0.0, "sum_out");
  else
    CHECK(all_nan(sum)); // not asked for: never written
}

/// Rows past CUDA's GEMV (M >= 3 since linear_policy::gemv_max_m is 2): with 16-bit weights the
/// prologue written straight as cuBLAS's operand (one pass of registers up to K = 4096, two passes
/// above, every prologue on both), f32 weights and K % 4 != 0 composed; decode batches of 3..8
/// rows, whose exact products are one stacked GEMM where 8 M <= K and two GEMMs where it is not;
/// `rounded`: the backend rounds n once to the weight's dtype (operand_u in the bound).
template <class Backend> void check_rmsnorm_linear_past_gemv(const Backend& be, bool rounded) {
  check_rmsnorm_linear<Backend, bf16>(be, 3, 2048, 40, norm_input::residual_kept, rounded);
  check_rmsnorm_linear<Backend, bf16>(be, 8, 4096, 24, norm_input::gated, rounded);
  check_rmsnorm_linear<Backend, f16>(be, 5, 130, 20, norm_input::plain, rounded);
  check_rmsnorm_linear<Backend, bf16>(be, 8, 48, 16, norm_input::residual, rounded);
  check_rmsnorm_linear<Backend, bf16>(be, 9, 128, 65, norm_input::residual_kept, rounded);
  check_rmsnorm_linear<Backend, bf16>(be, 33, 2048, 96, norm_input::residual_kept, rounded);
  check_rmsnorm_linear<Backend, bf16>(be, 20, 4096, 40, norm_input::gated, rounded);
  check_rmsnorm_linear<Backend, bf16>(be, 12, 4104, 24, norm_input::plain, rounded);
  check_rmsnorm_linear<Backend, f16>(be, 17, 6000, 20, norm_input::residual, rounded);
  check_rmsnorm_linear<Backend, bf16>(be, 9, 6000, 16, norm_input::residual_kept, rounded);
  check_rmsnorm_linear<Backend, bf16>(be, 10, 4104, 16, norm_input::gated, rounded);
  check_rmsnorm_linear<Backend, f16>(be, 10, 516, 300, norm_input::gated, rounded);
  check_rmsnorm_linear<Backend, float>(be, 11, 256, 30, norm_input::residual_kept, rounded);
  check_rmsnorm_linear<Backend, bf16>(be, 10, 130, 20, norm_input::residual_kept, rounded);
}

/// Every bad argument gives the backend the same status as the reference, and writes nothing.
template <class Backend> void check_rmsnorm_linear_bad_arguments(const Backend& be) {
  std::vector<float> x(12, 1.0f), r(12, 1.0f), gate(12, 1.0f), nw(4, 1.0f), w(20, 0.5f);
  std::vector<float> y(15), sum(12);
  poison(y);
  poison(sum);
  backend_arrays<Backend> mem(be);
  float* d_y = mem.put(y);
  float* d_sum = mem.put(sum);
  float* d_x = mem.put(x);
  rmsnorm_linear_args<float> valid;
  valid.x = make_view<const float>(d_x, 3, 4);
  valid.residual = make_view<const float>(mem.put(r), 3, 4);
  valid.sum_out = make_view(d_sum, 3, 4);
  valid.norm_weight = make_view<const float>(mem.put(nw), 4);
  valid.w = make_view<const float>(mem.put(w), 5, 4);
  valid.y = make_view(d_y, 3, 5);
  const float* d_gate = mem.put(gate);
  float* d_big = mem.put(std::vector<float>(20, 0.0f)); // for overlapping outputs
  using A = rmsnorm_linear_args<float>;
  backend_workspace<Backend> ws(be, 4096);
  check_bad_cases(
      valid, [&](const A& a) { return rmsnorm_linear(be, a, ws.get()); },
      {
          {"x.data = nullptr", [](A& a) { a.x.data = nullptr; }, status_code::null_pointer, "x"},
          {"w.data = nullptr", [](A& a) { a.w.data = nullptr; }, status_code::null_pointer, "w"},
          {"y.data = nullptr", [](A& a) { a.y.data = nullptr; }, status_code::null_pointer, "y"},
          {"norm_weight.data = nullptr", [](A& a) { a.norm_weight.data = nullptr; },
           status_code::null_pointer, "norm_weight"},
          {"x.shape[1] = 0", [](A& a) { a.x.shape[1] = 0; }, status_code::bad_shape, "x"},
          {"norm_weight.shape[0] = 5", [](A& a) { a.norm_weight.shape[0] = 5; },
           status_code::bad_shape, "norm_weight"},
          {"residual.shape[0] = 2", [](A& a) { a.residual.shape[0] = 2; }, status_code::bad_shape,
           "residual"},
          {"sum_out.shape[1] = 3", [](A& a) { a.sum_out.shape[1] = 3; }, status_code::bad_shape,
           "sum_out"},
          {"w.shape[1] = 3", [](A& a) { a.w.shape[1] = 3; }, status_code::bad_shape, "w"},
          {"y.shape[1] = 4", [](A& a) { a.y.shape[1] = 4; }, status_code::bad_shape, "y"},
          {"eps = NAN", [](A& a) { a.eps = NAN; }, status_code::bad_argument, "eps"},
      });
  // The cases that point into other buffers (check_bad_cases takes changes without captures).
  const auto run = [&](const char* label, auto change, status_code code, const char* what) {
    CAPTURE(std::string(label));
    A a = valid;
    change(a);
    check_status(rmsnorm_linear(be, a, ws.get()), code, what);
  };
  run(
      "residual and gate", [&](A& a) { a.gate = make_view(d_gate, 3, 4); },
      status_code::bad_argument, "gate");
  run(
      "gate and sum_out",
      [&](A& a) {
        a.residual = {};
        a.gate = make_view(d_gate, 3, 4);
      },
      status_code::bad_argument, "sum_out");
  run(
      "sum_out over x", [&](A& a) { a.sum_out = make_view(d_x, 3, 4); }, status_code::bad_argument,
      "sum_out");
  run(
      "y over sum_out",
      [&](A& a) {
        a.y = make_view(d_big, 3, 5);
        a.sum_out = make_view(d_big + 3, 3, 4);
      },
      status_code::bad_argument, "y");
  mem.get(y, d_y);
  mem.get(sum, d_sum);
  CHECK(all_nan(y)); // a rejected call writes nothing
  CHECK(all_nan(sum));
}

/// The cases every backend runs.
template <class Backend> void check_rmsnorm_linear_all(const Backend& be) {
  // Batch-1 decode at the 1.6B widths: split K (N < 2048 row groups) and unsplit.
  check_rmsnorm_linear<Backend, bf16>(be, 1, 2048, 2048, norm_input::residual_kept);
  check_rmsnorm_linear<Backend, bf16>(be, 1, 2048, 8192, norm_input::plain);
  check_rmsnorm_linear<Backend, bf16>(be, 1, 4096, 2048, norm_input::gated);
  check_rmsnorm_linear<Backend, bf16>(be, 1, 2048, 4224, norm_input::residual);
  // Small batches (2, 3, 4..8 rows per pass), odd row counts, f32 and f16 weights.
  check_rmsnorm_linear<Backend, bf16>(be, 2, 512, 37, norm_input::residual_kept);
  check_rmsnorm_linear<Backend, f16>(be, 3, 1024, 300, norm_input::gated);
  check_rmsnorm_linear<Backend, float>(be, 5, 256, 1, norm_input::residual_kept);
  check_rmsnorm_linear<Backend, float>(be, 8, 64, 4100, norm_input::plain);
  // One and two rows on CUDA stage the prologue in shared memory (linear_gemv_stages: K f32 rows
  // within 32 KiB): at the limit (K = 8192 at one row, 4096 at two) and just past it (composed
  // again); K / 4 not a multiple of the CTA's 128 or 256 threads; split K with more
  // row groups than CTAs (N = 2048: 1024 groups, 528 CTAs) and unsplit (N >= 4096); sum_out of
  // two rows; f32 and f16 weights (4- and 8-value pieces).
  check_rmsnorm_linear<Backend, bf16>(be, 1, 8192, 300, norm_input::residual_kept);
  check_rmsnorm_linear<Backend, bf16>(be, 1, 8200, 300, norm_input::gated);
  check_rmsnorm_linear<Backend, bf16>(be, 2, 4096, 4100, norm_input::gated);
  check_rmsnorm_linear<Backend, bf16>(be, 2, 4104, 64, norm_input::residual_kept);
  check_rmsnorm_linear<Backend, bf16>(be, 2, 2056, 2048, norm_input::residual_kept);
  check_rmsnorm_linear<Backend, bf16>(be, 2, 2056, 4224, norm_input::residual);
  check_rmsnorm_linear<Backend, float>(be, 1, 1028, 4100, norm_input::residual_kept);
  check_rmsnorm_linear<Backend, f16>(be, 2, 1000, 45, norm_input::plain);
  check_rmsnorm_linear_past_gemv(be, false);
  // Widths that are not whole 16-byte pieces (composed on CUDA).
  check_rmsnorm_linear<Backend, bf16>(be, 2, 100, 33, norm_input::gated);
  check_rmsnorm_linear<Backend, float>(be, 1, 45, 7, norm_input::residual);
  check_rmsnorm_linear<Backend, bf16>(be, 0, 64, 16, norm_input::residual_kept);
  check_rmsnorm_linear_bad_arguments(be);
}

} // namespace rodimus::test
