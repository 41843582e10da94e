// rmsnorm_linear on any backend against the scalar reference (rmsnorm or gated_rmsnorm, then
// linear, on the scalar backend): the three prologues (x alone, x + residual with and without the
// stream kept in sum_out, x * silu(gate)); batch-1 and small-batch rows (the CUDA GEMV with its
// fused prologue, split and unsplit K), rows past the GEMV (M = 9, the composed path), widths that
// are not a whole number of 16-byte pieces (composed on CUDA), f32 / bf16 / f16 weights; no rows;
// every bad argument (the same status as the reference, nothing written).
//
// Tolerance per element, with n = the normed row and S = sum_k |n_k w[n, k]|:
//   |y - y_ref| <= (K + 8) 2^-22 S
// The backends sum K f32 products in their own order ((K + 2) 2^-23 S, as linear_cases.hpp) and
// compute rsqrt(mean(s^2) + eps) from an f32 sum of K squares (relative K 2^-24 + a few ulp), which
// a fused kernel applies after the products: together below (K + 8) 2^-22 S. A wrong norm weight,
// a missing gate or a wrong rsqrt are relative errors of order 1, far above it. sum_out is exact:
// s = x + residual is one f32 addition on every backend.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "cases/causal_conv_cases.hpp"
#include "rodimus/backend/scalar/causal_conv.hpp"
#include "rodimus/backend/scalar/gated_rmsnorm.hpp"
#include "rodimus/backend/scalar/linear.hpp"
#include "rodimus/backend/scalar/rmsnorm.hpp"
#include "rodimus/primitives/rmsnorm_linear.hpp"
#include "support/backend_support.hpp"
#include "support/primitive_support.hpp"

namespace rodimus::test {

/// What goes in front of the norm.
enum class norm_input { plain, residual, residual_kept, gated };

/// y against the reference's y_ref within the bound at the top of this file.
template <class Weight>
void check_rmsnorm_linear_y(const std::vector<float>& y, const std::vector<float>& y_ref,
                            const std::vector<float>& x, const std::vector<float>& residual,
                            const std::vector<float>& gate, const std::vector<float>& nw,
                            const std::vector<Weight>& w, index_t M, index_t K, index_t N,
                            norm_input in) {
  const bool with_residual = in == norm_input::residual || in == norm_input::residual_kept;
  // The normed rows, for the bound: n = s * rsqrt(mean(s^2) + eps) * nw (f64).
  std::vector<double> n(std::size_t(M * K));
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
      const double bound = double(K + 8) * std::ldexp(1.0, -22) * S + 1e-30;
      const double diff =
          std::fabs(double(y[std::size_t(m * N + j)]) - y_ref[std::size_t(m * N + j)]);
      worst = std::max(worst, diff / bound);
      if (!(diff <= bound)) ++bad; // NaN counts as bad
    }
  INFO("max |y - y_ref| / bound = " << worst);
  CHECK(bad == 0);
}

template <class Backend, class Weight>
void check_rmsnorm_linear(const Backend& be, index_t M, index_t K, index_t N, norm_input in) {
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

  check_rmsnorm_linear_y<Weight>(y, y_ref, x, residual, gate, nw, w, M, K, N, in);
  if (keep)
    check_close(sum, sum_ref, 0.0, 0.0, "sum_out");
  else
    CHECK(all_nan(sum)); // not asked for: never written
}

/// run(label, change, code, what): rmsnorm_linear on `valid` after `change` (which, unlike
/// check_bad_cases' changes, may capture: the cases that point into other buffers) gives `code`
/// naming `what`.
template <class Backend, class Weight, class Ws>
auto bad_case_runner(const Backend& be, const rmsnorm_linear_args<Weight>& valid, Ws& ws) {
  return [&be, &valid, &ws](const char* label, auto change, status_code code, const char* what) {
    CAPTURE(std::string(label));
    rmsnorm_linear_args<Weight> a = valid;
    change(a);
    check_status(rmsnorm_linear(be, a, ws.get()), code, what);
  };
}

/// rmsnorm_linear with the conv step after it (the Rodimus mixer's fc at decode: the stream's norm,
/// then the conv on y's first C columns). y within the bound above against the scalar call without
/// the conv; the conv's output and the state pool against scalar causal_conv_step run on the
/// backend's own y (the conv's arithmetic alone differs: conv_tol; the state holds y's values
/// exactly). Two steps over a pool of M + 1 rows, row m on slot M - m, row 1 padding (-1) when
/// M > 1: its conv row stays NaN and its state row as it was.
template <class Backend, class Weight>
void check_rmsnorm_linear_conv(const Backend& be, index_t M, index_t K, index_t N, index_t C,
                               index_t W) {
  CAPTURE(M);
  CAPTURE(K);
  CAPTURE(N);
  CAPTURE(C);
  CAPTURE(W);
  auto g = rng(std::uint64_t(M * 131 + K * 7 + N + C * 3 + W));
  const index_t P = M + 1;
  const auto MK = std::size_t(M * K);
  auto nw = uniform<float>(g, std::size_t(K), 0.5, 1.5);
  auto w = uniform<Weight>(g, std::size_t(N * K), -0.1, 0.1);
  auto conv_w = uniform<float>(g, std::size_t(C * W), -0.5, 0.5);
  auto conv_b = uniform<float>(g, std::size_t(C), -0.5, 0.5);
  auto st = uniform<float>(g, std::size_t(P * C * W), -2, 2);
  auto st_ref = st;
  std::vector<std::int32_t> slots;
  for (index_t m = 0; m < M; ++m)
    slots.push_back(m == 1 ? -1 : std::int32_t(P - 1 - m));
  backend_arrays<Backend> mem(be);
  const float* d_nw = mem.put(nw);
  const Weight* d_w = mem.put(w);
  const float* d_cw = mem.put(conv_w);
  const float* d_cb = mem.put(conv_b);
  float* d_st = mem.put(st);
  const std::int32_t* d_slots = mem.put(slots);
  for (int step = 0; step < 2; ++step) {
    CAPTURE(step);
    auto x = uniform<float>(g, MK, -2, 2);
    auto residual = uniform<float>(g, MK, -3, 3);
    std::vector<float> y(std::size_t(M * N)), c(std::size_t(M * C)), sum(MK);
    poison(y);
    poison(c);
    poison(sum);
    float* d_y = mem.put(y);
    float* d_c = mem.put(c);
    float* d_sum = mem.put(sum);
    rmsnorm_linear_args<Weight> a;
    a.x = make_view<const float>(mem.put(x), M, K);
    a.residual = make_view<const float>(mem.put(residual), M, K);
    a.sum_out = make_view(d_sum, M, K);
    a.norm_weight = make_view(d_nw, K);
    a.w = make_view(d_w, N, K);
    a.y = make_view(d_y, M, N);
    a.w_constant = true;
    a.conv.weight = make_view(d_cw, C, W);
    a.conv.bias = make_view(d_cb, C);
    a.conv.state = make_view(d_st, P, C, W);
    a.conv.slot = d_slots;
    a.conv.y = make_view(d_c, M, C);
    backend_workspace<Backend> ws(be, rmsnorm_linear_workspace_bytes(be, a));
    REQUIRE(rmsnorm_linear(be, a, ws.get()).ok());
    mem.get(y, d_y);
    mem.get(c, d_c);
    mem.get(sum, d_sum);
    mem.get(st, d_st);

    // y: the scalar call without the conv.
    std::vector<float> y_ref(y.size()), sum_ref(MK);
    rmsnorm_linear_args<Weight> r;
    r.x = make_view<const float>(x.data(), M, K);
    r.residual = make_view<const float>(residual.data(), M, K);
    r.sum_out = make_view(sum_ref.data(), M, K);
    r.norm_weight = make_view<const float>(nw.data(), K);
    r.w = make_view<const Weight>(w.data(), N, K);
    r.y = make_view(y_ref.data(), M, N);
    std::vector<unsigned char> host_ws(rmsnorm_linear_workspace_bytes(scalar{}, r) + 64);
    REQUIRE(rmsnorm_linear(scalar{}, r, workspace{host_ws.data(), host_ws.size(), 0}).ok());
    check_rmsnorm_linear_y<Weight>(y, y_ref, x, residual, {}, nw, w, M, K, N,
                                   norm_input::residual_kept);
    check_close(sum, sum_ref, 0.0, 0.0, "sum_out");

    // The conv: scalar causal_conv_step on the backend's y.
    std::vector<float> c_ref(c.size());
    poison(c_ref);
    causal_conv_step_args<float> ca;
    ca.x = tensor_view<const float, 2>::strided(y.data(), {M, C}, {N, 1});
    ca.weight = make_view<const float>(conv_w.data(), C, W);
    ca.bias = make_view<const float>(conv_b.data(), C);
    ca.state = make_view(st_ref.data(), P, C, W);
    ca.slot = slots.data();
    ca.y = make_view(c_ref.data(), M, C);
    REQUIRE(causal_conv_step(scalar{}, ca).ok());
    std::vector<bool> skip(std::size_t(M), false);
    if (M > 1) skip[1] = true;
    check_skipped_rows(c, c_ref, std::size_t(C), skip);
    check_close(c, c_ref, conv_tol<float>(), 0.0, "conv.y");
    check_close(st, st_ref, 0.0, 0.0, "conv.state");
  }
}

/// The conv step's own bad arguments (the same status as the reference, nothing written).
template <class Backend> void check_rmsnorm_linear_conv_bad_arguments(const Backend& be) {
  const index_t M = 2, K = 8, N = 12, C = 6, W = 4, P = 3;
  std::vector<float> x(std::size_t(M * K), 1.0f), nw(std::size_t(K), 1.0f);
  std::vector<float> w(std::size_t(N * K), 0.5f), cw(std::size_t(C * W), 0.25f);
  std::vector<float> y(std::size_t(M * N)), c(std::size_t(M * C)), st(std::size_t(P * C * W));
  poison(y);
  poison(c);
  poison(st);
  const std::vector<std::int32_t> slots = {2, 0};
  backend_arrays<Backend> mem(be);
  float* d_y = mem.put(y);
  float* d_c = mem.put(c);
  float* d_st = mem.put(st);
  float* d_x = mem.put(x);
  rmsnorm_linear_args<float> valid;
  valid.x = make_view<const float>(d_x, M, K);
  valid.norm_weight = make_view<const float>(mem.put(nw), K);
  valid.w = make_view<const float>(mem.put(w), N, K);
  valid.y = make_view(d_y, M, N);
  valid.conv.weight = make_view<const float>(mem.put(cw), C, W);
  valid.conv.state = make_view(d_st, P, C, W);
  valid.conv.slot = mem.put(slots);
  valid.conv.y = make_view(d_c, M, C);
  using A = rmsnorm_linear_args<float>;
  backend_workspace<Backend> ws(be, 4096);
  check_bad_cases(
      valid, [&](const A& a) { return rmsnorm_linear(be, a, ws.get()); },
      {
          {"conv.x given", [](A& a) { a.conv.x = make_view<const float>(a.x.data, 2, 6); },
           status_code::bad_argument, "conv.x"},
          {"conv wider than y", [](A& a) { a.conv.weight.shape[0] = 13; }, status_code::bad_shape,
           "conv.weight"},
          {"conv.y rows", [](A& a) { a.conv.y.shape[0] = 1; }, status_code::bad_shape, "y"},
          {"conv.state width", [](A& a) { a.conv.state.shape[2] = 3; }, status_code::bad_shape,
           "state"},
          {"conv.y = nullptr", [](A& a) { a.conv.y.data = nullptr; }, status_code::null_pointer,
           "y"},
      });
  const auto run = bad_case_runner(be, valid, ws);
  run(
      "conv.y over y", [&](A& a) { a.conv.y = make_view(d_y, M, C); }, status_code::bad_argument,
      "conv.y");
  run(
      "conv.state over conv.y", [&](A& a) { a.conv.y = make_view(d_st + 4, M, C); },
      status_code::bad_argument, "conv.state");
  if constexpr (backend_reads_host_indices<Backend>) {
    const std::int32_t* d_twice = mem.put(std::vector<std::int32_t>{1, 1}); // one state, two rows
    run(
        "slot twice", [&](A& a) { a.conv.slot = d_twice; }, status_code::bad_argument, "slot");
  }
  mem.get(y, d_y);
  mem.get(c, d_c);
  mem.get(st, d_st);
  CHECK(all_nan(y)); // a rejected call writes nothing
  CHECK(all_nan(c));
  CHECK(all_nan(st));
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
  const auto run = bad_case_runner(be, valid, ws);
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
  // Past the GEMV (composed on CUDA), and widths that are not whole 16-byte pieces.
  check_rmsnorm_linear<Backend, bf16>(be, 9, 128, 65, norm_input::residual_kept);
  check_rmsnorm_linear<Backend, bf16>(be, 2, 100, 33, norm_input::gated);
  check_rmsnorm_linear<Backend, float>(be, 1, 45, 7, norm_input::residual);
  check_rmsnorm_linear<Backend, bf16>(be, 0, 64, 16, norm_input::residual_kept);
  check_rmsnorm_linear_bad_arguments(be);
  // The conv step after the product: the mixer's fc at the 1.6B widths (8192 rows, the first 4096
  // the conv's input; batch 1 and a batch of 5 with a padding row), a conv as wide as y, taps past
  // the register variant (W = 6), f32 weights; past the GEMV (composed on CUDA).
  check_rmsnorm_linear_conv<Backend, bf16>(be, 1, 2048, 8192, 4096, 4);
  check_rmsnorm_linear_conv<Backend, bf16>(be, 5, 512, 640, 320, 4);
  check_rmsnorm_linear_conv<Backend, f16>(be, 2, 256, 96, 96, 6);
  check_rmsnorm_linear_conv<Backend, float>(be, 3, 128, 40, 17, 3);
  check_rmsnorm_linear_conv<Backend, bf16>(be, 9, 64, 48, 24, 4);
  check_rmsnorm_linear_conv_bad_arguments(be);
}

} // namespace rodimus::test
