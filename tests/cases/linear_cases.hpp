// linear() on any backend against the scalar reference (one body, stamped per backend: see
// support/backend_support.hpp): fresh random inputs, poisoned outputs (padding columns of y must
// stay poisoned), odd and large K and N, M from 0 (nothing to do) through decode sizes to prefill
// sizes, f32 / bf16 / f16 weights with f32 activations (the model's case), 16-bit activations,
// padded and transposed (inner stride != 1) views, and the bad arguments.
//
// Tolerances. Two checks on every output:
//   1. max|y - y_ref| <= rel * max|y_ref| with rel = 1e-5 for f32 y (f32 against f64
//      accumulation), 2^-8 for bf16 and 2^-11 for f16 y (the products of 16-bit inputs are exact in
//      f32 and the sums differ from the f64 reference only by f32 rounding, but the final rounding
//      to bf16 (f16) can land one step apart). These are the CPU tests' historical bounds. Where
//      the backend splits x into two parts in the weight's dtype (CUDA's cuBLAS path with f32 x
//      and 16-bit weights: linear_rounds_x), y_ref is computed from hi + lo, which is what the
//      two GEMMs actually multiply.
//   2. per element, against the reference on the exact x, the bound derived for the backend's
//      arithmetic (S = sum_k |x[m, k] w[n, k]|, u_t the unit roundoff of dtype t: f32 2^-24, bf16
//      2^-8, f16 2^-11):
//        E = (u_x + (K + 2) 2^-23) S + t_x
//          u_x = u_w^2 when x is split into hi + lo in the weight's dtype (u_w when only hi is
//          kept: CUDA's cuda_matmul::rounded), else 0; t_x = 2^-25
//          sum_k |w[n, k]| when the parts are f16 (lo below 2^-14 is subnormal there: an absolute
//          error of up to 2^-25), else 0; (K + 2) 2^-23 S bounds the f32 products and sums,
//          rounding or truncating, in any order
//        |y - y_ref| <= (1 + u_y) (E + 2 u_y |y_ref|) + 2 tiny_y
//      (both y and y_ref are rounded to the output dtype: u_y |y| each; tiny_y = half the smallest
//      subnormal step of f16, 2^-25, covers gradual underflow; negligible for f32 and bf16).
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "rodimus/backend/scalar/linear.hpp"
#include "support/backend_support.hpp"
#include "support/primitive_support.hpp"

namespace rodimus::test {

/// Relative tolerance of check 1 (see the top of this file).
template <class T> double linear_out_tolerance() {
  if (std::is_same_v<T, bf16>) return 1.0 / 256;
  if (std::is_same_v<T, f16>) return 1.0 / 2048;
  return 1e-5;
}

/// Unit roundoff (half the spacing of the values in [1, 2)).
template <class T> constexpr double unit_roundoff() {
  if constexpr (std::is_same_v<T, bf16>)
    return 1.0 / 256;
  else if constexpr (std::is_same_v<T, f16>)
    return 1.0 / 2048;
  else
    return 1.0 / 16777216;
}

/// Half the smallest subnormal step where gradual underflow matters (f16 only, see above).
template <class T> constexpr double underflow_step() {
  return std::is_same_v<T, f16> ? 1.0 / 33554432 : 0.0; // 2^-25
}

namespace linear_detail {
template <class Backend, class Args, class = void> struct has_rounds_x : std::false_type {};
template <class Backend, class Args>
struct has_rounds_x<Backend, Args,
                    std::void_t<decltype(linear_rounds_x(std::declval<const Backend&>(),
                                                         std::declval<const Args&>()))>>
    : std::true_type {};
} // namespace linear_detail

/// Whether `be` rounds x to the weight's dtype for these arguments: only a backend that provides
/// linear_rounds_x (CUDA's cuBLAS path) ever does.
template <class Backend, class Act, class Weight>
bool linear_x_rounded(const Backend& be, const linear_args<Act, Weight>& a) {
  if constexpr (linear_detail::has_rounds_x<Backend, linear_args<Act, Weight>>::value)
    return linear_rounds_x(be, a);
  else
    return false;
}

namespace linear_detail {
template <class Backend, class = void> struct has_matmul_mode : std::false_type {};
template <class Backend>
struct has_matmul_mode<Backend, std::void_t<decltype(std::declval<const Backend&>().matmul)>>
    : std::true_type {};
} // namespace linear_detail

/// Whether a backend that rounds x keeps only the first part (CUDA's cuda_matmul::rounded): x is
/// then multiplied as W(x) instead of hi + lo.
template <class Backend> bool linear_x_one_part(const Backend& be) {
  if constexpr (linear_detail::has_matmul_mode<Backend>::value)
    return be.matmul == decltype(be.matmul)::rounded;
  else
    return false;
}

/// The valid M x N outputs of a (M, ld) row-major block.
template <class T>
std::vector<T> linear_valid(const std::vector<T>& y, index_t M, index_t N, index_t ld) {
  std::vector<T> out(std::size_t(M * N));
  for (index_t m = 0; m < M; ++m)
    for (index_t n = 0; n < N; ++n)
      out[std::size_t(m * N + n)] = y[std::size_t(m * ld + n)];
  return out;
}

/// y = x w^T on `be` with x (M, K) at row stride K + x_pad (or transposed: inner stride M, when
/// x_transposed), w (N, K) at row stride K + w_pad, y (M, N) at row stride N + y_pad; compared
/// with the scalar reference by both checks above; y's padding columns must stay poisoned.
template <class Backend, class Act, class Weight>
void check_linear(const Backend& be, index_t M, index_t K, index_t N, index_t x_pad,
                  index_t w_pad = 0, index_t y_pad = 0, bool x_transposed = false) {
  CAPTURE(M);
  CAPTURE(K);
  CAPTURE(N);
  CAPTURE(x_pad);
  CAPTURE(w_pad);
  CAPTURE(y_pad);
  CAPTURE(x_transposed);
  INFO("act " << to_string(dtype_of<Act>::value) << ", weight "
              << to_string(dtype_of<Weight>::value));
  auto g = rng(std::uint64_t(M * 1000003 + K * 101 + N));
  const index_t ldx = K + x_pad, ldw = K + w_pad, ldy = N + y_pad;
  auto x = uniform<Act>(g, std::size_t(x_transposed ? K * M : M * ldx));
  auto w = uniform<Weight>(g, std::size_t(N * ldw), -0.5, 0.5);
  std::vector<Act> y(std::size_t(M * ldy)), y_ref(y.size());
  poison(y);
  poison(y_ref);
  const auto x_view = [&](const Act* p) {
    return x_transposed ? tensor_view<const Act, 2>::strided(p, {M, K}, {1, M})
                        : tensor_view<const Act, 2>::strided(p, {M, K}, {ldx, 1});
  };
  const auto w_view = [&](const Weight* p) {
    return tensor_view<const Weight, 2>::strided(p, {N, K}, {ldw, 1});
  };
  const auto y_view = [&](Act* p) { return tensor_view<Act, 2>::strided(p, {M, N}, {ldy, 1}); };

  backend_arrays<Backend> mem(be);
  Act* dy = mem.put(y);
  linear_args<Act, Weight> a;
  a.x = x_view(mem.put(x));
  a.w = w_view(mem.put(w));
  a.y = y_view(dy);
  // Half of the cases promise constant weights (the CUDA GEMV then loads them before its wait on
  // the previous kernel, launch.cuh); the result must not depend on it.
  a.w_constant = (M + K + N) % 2 == 0;
  CAPTURE(a.w_constant);
  backend_workspace<Backend> ws(be, linear_workspace_bytes(be, a));
  REQUIRE(linear(be, a, ws.get()).ok());
  const bool rounded = linear_x_rounded(be, a), one_part = rounded && linear_x_one_part(be);
  CAPTURE(rounded);
  CAPTURE(one_part);
  mem.get(y, dy);

  // Padding columns of y untouched.
  for (index_t m = 0; m < M; ++m)
    for (index_t n = N; n < ldy; ++n)
      REQUIRE(std::isnan(load_as<double>(y[std::size_t(m * ldy + n)])));

  // Check 1: against the reference on the x the backend multiplies.
  linear_args<Act, Weight> r;
  r.w = w_view(w.data());
  r.y = y_view(y_ref.data());
  std::vector<Act> x_used = x;
  if (rounded) // the backend multiplies x as hi + lo, two parts in the weight's dtype (or hi)
    for (auto& v : x_used) {
      const float f = load_as<float>(v), hi = load_as<float>(store_as<Weight>(f));
      v = store_as<Act>(one_part ? hi : hi + load_as<float>(store_as<Weight>(f - hi)));
    }
  r.x = x_view(x_used.data());
  REQUIRE(linear(scalar{}, r).ok());
  const std::vector<Act> got = linear_valid(y, M, N, ldy);
  check_close(got, linear_valid(y_ref, M, N, ldy), linear_out_tolerance<Act>(), 0.0, "y");

  // Check 2: the derived per-element bound against the reference on the exact x.
  if (rounded) {
    r.x = x_view(x.data());
    REQUIRE(linear(scalar{}, r).ok());
  }
  const std::vector<Act> want = linear_valid(y_ref, M, N, ldy);
  const tensor_view<const Act, 2> xv = x_view(x.data());
  const double u_x = !rounded   ? 0.0
                     : one_part ? unit_roundoff<Weight>()
                                : unit_roundoff<Weight>() * unit_roundoff<Weight>(),
               u_y = unit_roundoff<Act>();
  const double t_x = rounded ? underflow_step<Weight>() : 0.0;
  const double acc = double(K + 2) * std::ldexp(1.0, -23);
  index_t bad = 0;
  double worst = 0.0; // max |y - y_ref| / bound
  for (index_t m = 0; m < M; ++m)
    for (index_t n = 0; n < N; ++n) {
      double s = 0.0, sw = 0.0;
      for (index_t k = 0; k < K; ++k) {
        const double wk = std::fabs(load_as<double>(w[std::size_t(n * ldw + k)]));
        s += std::fabs(load_as<double>(xv(m, k))) * wk;
        sw += wk;
      }
      const double e = (u_x + acc) * s + t_x * sw;
      const double ref = load_as<double>(want[std::size_t(m * N + n)]);
      const double bound = (1 + u_y) * (e + 2 * u_y * std::fabs(ref)) + 2 * underflow_step<Act>();
      const double diff = std::fabs(load_as<double>(got[std::size_t(m * N + n)]) - ref);
      if (!(diff <= bound)) ++bad; // NaN counts as bad
      if (bound > 0 && diff / bound > worst) worst = diff / bound;
    }
  INFO("per-element bound: " << bad
                             << " outputs outside it, worst |y - y_ref| / bound = " << worst);
  CHECK(bad == 0);
}

/// Every bad argument gives the backend the same status as the reference (nothing is launched).
template <class Backend> void check_linear_bad_arguments(const Backend& be) {
  std::vector<float> x(8), w(8), y(8);
  backend_arrays<Backend> mem(be);
  linear_args<float, float> valid;
  valid.x = make_view<const float>(mem.put(x), 2, 4);
  valid.w = make_view<const float>(mem.put(w), 2, 4);
  valid.y = make_view(mem.put(y), 2, 2);
  const auto run = [&](const linear_args<float, float>& a) { return linear(be, a); };
  REQUIRE(run(valid).ok());
  check_bad_cases(valid, run,
                  {{"w columns", [](linear_args<float, float>& a) { a.w.shape[1] = 3; },
                    status_code::bad_shape, "w"},
                   {"y rows", [](linear_args<float, float>& a) { a.y.shape[0] = 3; },
                    status_code::bad_shape, "y"},
                   {"y columns", [](linear_args<float, float>& a) { a.y.shape[1] = 1; },
                    status_code::bad_shape, "y"},
                   {"negative M", [](linear_args<float, float>& a) { a.x.shape[0] = -1; },
                    status_code::bad_shape, "x"},
                   {"negative N",
                    [](linear_args<float, float>& a) {
                      a.w.shape[0] = -1;
                      a.y.shape[1] = -1;
                    },
                    status_code::bad_shape, "w"},
                   {"null x", [](linear_args<float, float>& a) { a.x.data = nullptr; },
                    status_code::null_pointer, "x"},
                   {"null w", [](linear_args<float, float>& a) { a.w.data = nullptr; },
                    status_code::null_pointer, "w"},
                   {"null y", [](linear_args<float, float>& a) { a.y.data = nullptr; },
                    status_code::null_pointer, "y"}});
  // Also with M large enough for a GEMM on every backend.
  std::vector<float> xl(64 * 4), yl(64 * 2);
  linear_args<float, float> large = valid;
  large.x = make_view<const float>(mem.put(xl), 64, 4);
  large.y = make_view(mem.put(yl), 64, 2);
  check_bad_cases(large, run,
                  {{"large: w columns", [](linear_args<float, float>& a) { a.w.shape[1] = 5; },
                    status_code::bad_shape, "w"},
                   {"large: null y", [](linear_args<float, float>& a) { a.y.data = nullptr; },
                    status_code::null_pointer, "y"}});
}

/// The shapes the CPU kernels were written against: decode (M <= 4, matrix-vector kernels) and
/// prefill (tiled GEMM with remainders in M, N and K), f32 / bf16 / f16 weights and activations.
template <class Backend> void check_linear_kernel_shapes(const Backend& be) {
  for (index_t M : {1, 2, 3, 4}) {
    check_linear<Backend, float, float>(be, M, 256, 67, 0);
    check_linear<Backend, float, bf16>(be, M, 300, 45, 3);
    check_linear<Backend, bf16, bf16>(be, M, 2048, 33, 0);
    check_linear<Backend, bf16, f16>(be, M, 37, 9, 1);
    check_linear<Backend, f16, f16>(be, M, 129, 17, 0);
    // bf16 weights: K below one even/odd pair of vectors (generic loads only), K with a pair
    // tail, and a long K over many rows (prefetch, several chunks per thread).
    check_linear<Backend, float, bf16>(be, M, 21, 13, 0);
    check_linear<Backend, float, bf16>(be, M, 5472 + 7, 70, 2);
  }
  check_linear<Backend, float, float>(be, 5, 300, 140, 2);
  check_linear<Backend, float, bf16>(be, 70, 520, 131, 0);
  check_linear<Backend, bf16, bf16>(be, 67, 257, 260, 5);
  check_linear<Backend, f16, f16>(be, 9, 64, 33, 0);
}

/// The cases every backend runs: M in {0, 1, 3, 8, 17, 64, 300} (decode sizes through prefill
/// sizes) with odd K and N (large where M is small), f32 x with f32 / bf16 / f16 weights, packed
/// rows (odd K: no aligned 16-byte pieces on CUDA), K a multiple of 8 (16-byte pieces), odd K in
/// rows padded to a multiple of 8 (pieces plus a tail), a padded y; 16-bit activations; x
/// transposed (inner stride != 1); and the bad arguments.
template <class Backend> void check_linear_all(const Backend& be) {
  for (index_t M : {0, 1, 3, 8, 17, 64, 300}) {
    const bool small = M <= 8;
    const index_t K = small ? 2049 : 517, N = small ? 1031 : 263;
    const index_t K8 = small ? 2056 : 520; // a multiple of 8
    const index_t Kt = small ? 1029 : 261; // odd, rows padded to a multiple of 8 below
    const index_t pad = (8 - Kt % 8) % 8;
    check_linear<Backend, float, float>(be, M, K, N, 0);
    check_linear<Backend, float, bf16>(be, M, K, N, 0);
    check_linear<Backend, float, f16>(be, M, K, N, 0, 0, 3);
    check_linear<Backend, float, float>(be, M, K8, N, 0);
    check_linear<Backend, float, bf16>(be, M, K8, N, 0, 0, 1);
    check_linear<Backend, float, f16>(be, M, K8, N, 0);
    check_linear<Backend, float, float>(be, M, Kt, N, pad, pad);
    check_linear<Backend, float, bf16>(be, M, Kt, N, pad, pad);
    check_linear<Backend, float, f16>(be, M, Kt, N, pad, pad, 5);
  }
  // 16-bit activations (decode with 16-byte pieces, prefill through a GEMM).
  check_linear<Backend, bf16, bf16>(be, 3, 1032, 257, 0);
  check_linear<Backend, bf16, bf16>(be, 64, 519, 131, 0, 0, 2);
  check_linear<Backend, f16, f16>(be, 17, 1031, 129, 0);
  check_linear<Backend, f16, f16>(be, 1, 1032, 257, 8, 8);
  // x transposed (inner stride M): element-wise loads, more x rows than one pass of the kernel.
  check_linear<Backend, float, bf16>(be, 17, 515, 131, 0, 0, 0, true);
  check_linear<Backend, float, float>(be, 3, 515, 131, 0, 0, 0, true);
  // More rows than one CUDA grid dimension holds (65535): the split of x loops over them.
  check_linear<Backend, float, bf16>(be, 70001, 8, 5, 0);
  check_linear_bad_arguments(be);
}

} // namespace rodimus::test
