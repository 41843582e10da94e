// quant_linear() on any backend against the scalar reference (one body, stamped per backend):
// fresh random f32 weights quantised to q8_0 / q4_0 (block scales spread over 2^-6 .. 2^2 so
// blocks differ), random x, poisoned y (its padding columns must stay poisoned), M from 0 through
// decode sizes (<= 4) to prefill sizes, K from one block to thousands, odd N, padded and
// transposed views, f32 and bf16 activations, and the bad arguments.
//
// Tolerance, per element, against the reference (f64 sums of x times the exactly dequantised
// weights; d q is exact in f32: 11 bits times at most 8): with S = sum_k |x[m, k] deq(w)[n, k]|,
//   E = (K + 4) 2^-23 S           f32 products, block sums, the block scale product and the row
//                                 sum, in any order (each rounding at most 2^-24 relative)
//   |y - y_ref| <= (1 + u_y) (E + 2 u_y |y_ref|)    u_y: unit roundoff of Act (f32 2^-24, bf16
//                                 2^-8): both y and y_ref are rounded to Act once.
// Where the backend multiplies x quantised per block of 32 to int8 (quant_linear_rounds_x: the CPU
// decode kernel on AVX-512 and AVX2; scale dx = max|x block| / 127, round to nearest), E also holds
//   sum over blocks of (dx / 2) (1 + 1e-5) sum_j |deq(w)[n, j]|
// (each x moves by at most half a step, plus the f32 rounding of x / dx near a half).
// A NaN (an unwritten output) is always outside it.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <type_traits>
#include <utility>
#include <vector>

#include "cases/linear_cases.hpp"
#include "rodimus/backend/scalar/quant_linear.hpp"
#include "support/backend_support.hpp"
#include "support/primitive_support.hpp"

namespace rodimus::test {

namespace quant_linear_detail {
template <class Backend, class Args, class = void> struct has_rounds_x : std::false_type {};
template <class Backend, class Args>
struct has_rounds_x<Backend, Args,
                    std::void_t<decltype(quant_linear_rounds_x(std::declval<const Backend&>(),
                                                               std::declval<const Args&>()))>>
    : std::true_type {};
} // namespace quant_linear_detail

/// Whether `be` quantises x for these arguments (only a backend with quant_linear_rounds_x does).
template <class Backend, class Act, class Block>
bool quant_linear_x_rounded(const Backend& be, const quant_linear_args<Act, Block>& a) {
  if constexpr (quant_linear_detail::has_rounds_x<Backend, quant_linear_args<Act, Block>>::value)
    return quant_linear_rounds_x(be, a);
  else
    return false;
}

/// N rows of K / 32 blocks (row stride ldb blocks) from random f32 weights.
template <class Block>
std::vector<Block> random_quant_rows(std::mt19937_64& g, index_t N, index_t K, index_t ldb) {
  std::uniform_real_distribution<double> u(-1.0, 1.0), e(-6.0, 2.0);
  std::vector<Block> w(std::size_t(N * ldb));
  std::vector<float> row(static_cast<std::size_t>(K));
  for (index_t n = 0; n < N; ++n) {
    for (index_t b = 0; b < K / kQuantGroup; ++b) {
      const double scale = std::exp2(e(g));
      for (index_t j = 0; j < kQuantGroup; ++j)
        row[std::size_t(b * kQuantGroup + j)] = float(u(g) * scale);
    }
    REQUIRE(quantise_row(row.data(), K, w.data() + n * ldb).ok());
  }
  return w;
}

/// y = x deq(w)^T on `be` with x (M, K) at row stride K + x_pad (or transposed), w (N, K / 32) at
/// row stride K / 32 + w_pad blocks, y (M, N) at row stride N + y_pad; compared with the scalar
/// reference within the bound above.
template <class Backend, class Act, class Block>
void check_quant_linear(const Backend& be, index_t M, index_t K, index_t N, index_t x_pad = 0,
                        index_t w_pad = 0, index_t y_pad = 0, bool x_transposed = false) {
  CAPTURE(M);
  CAPTURE(K);
  CAPTURE(N);
  CAPTURE(x_pad);
  CAPTURE(w_pad);
  CAPTURE(y_pad);
  CAPTURE(x_transposed);
  INFO("act " << to_string(dtype_of<Act>::value) << ", weight " << to_string(format_of<Block>()));
  auto g = rng(std::uint64_t(M * 1000003 + K * 101 + N + sizeof(Block)));
  const index_t ldx = K + x_pad, ldb = K / kQuantGroup + w_pad, ldy = N + y_pad;
  auto x = uniform<Act>(g, std::size_t(x_transposed ? K * M : M * ldx));
  const std::vector<Block> w = random_quant_rows<Block>(g, N, K, ldb);
  std::vector<Act> y(std::size_t(M * ldy)), y_ref(y.size());
  poison(y);
  poison(y_ref);
  const auto x_view = [&](const Act* p) {
    return x_transposed ? tensor_view<const Act, 2>::strided(p, {M, K}, {1, M})
                        : tensor_view<const Act, 2>::strided(p, {M, K}, {ldx, 1});
  };
  const auto w_view = [&](const Block* p) {
    return tensor_view<const Block, 2>::strided(p, {N, K / kQuantGroup}, {ldb, 1});
  };
  const auto y_view = [&](Act* p) { return tensor_view<Act, 2>::strided(p, {M, N}, {ldy, 1}); };

  backend_arrays<Backend> mem(be);
  Act* dy = mem.put(y);
  quant_linear_args<Act, Block> a{x_view(mem.put(x)), w_view(mem.put(w)), y_view(dy)};
  backend_workspace<Backend> ws(be, quant_linear_workspace_bytes(be, a));
  REQUIRE(quant_linear(be, a, ws.get()).ok());
  const bool rounded = quant_linear_x_rounded(be, a);
  CAPTURE(rounded);
  mem.get(y, dy);
  for (index_t m = 0; m < M; ++m)
    for (index_t n = N; n < ldy; ++n)
      REQUIRE(std::isnan(load_as<double>(y[std::size_t(m * ldy + n)])));

  quant_linear_args<Act, Block> r{x_view(x.data()), w_view(w.data()), y_view(y_ref.data())};
  REQUIRE(quant_linear(scalar{}, r).ok());
  const std::vector<Act> got = linear_valid(y, M, N, ldy), want = linear_valid(y_ref, M, N, ldy);
  const tensor_view<const Act, 2> xv = x_view(x.data());
  const double u_y = unit_roundoff<Act>(), acc = double(K + 4) * std::ldexp(1.0, -23);
  index_t bad = 0;
  double worst = 0.0;
  for (index_t m = 0; m < M; ++m)
    for (index_t n = 0; n < N; ++n) {
      double s = 0.0, ex = 0.0; // ex: the x-quantisation term (rounded only)
      for (index_t b = 0; b < K / kQuantGroup; ++b) {
        double amax = 0.0, sw = 0.0;
        for (index_t k = b * kQuantGroup; k < (b + 1) * kQuantGroup; ++k) {
          const double wk = std::fabs(
              double(dequantise(w[std::size_t(n * ldb + k / kQuantGroup)], int(k % kQuantGroup))));
          const double xk = std::fabs(load_as<double>(xv(m, k)));
          s += xk * wk;
          sw += wk;
          amax = std::max(amax, xk);
        }
        if (rounded) ex += amax / 127 / 2 * (1 + 1e-5) * sw;
      }
      const double ref = load_as<double>(want[std::size_t(m * N + n)]);
      const double bound = (1 + u_y) * (acc * (s + ex) + ex + 2 * u_y * std::fabs(ref));
      const double diff = std::fabs(load_as<double>(got[std::size_t(m * N + n)]) - ref);
      if (!(diff <= bound)) ++bad;
      if (bound > 0 && diff / bound > worst) worst = diff / bound;
    }
  INFO("per-element bound: " << bad
                             << " outputs outside it, worst |y - y_ref| / bound = " << worst);
  CHECK(bad == 0);
}

/// Every bad argument gives the backend the same status as the reference.
template <class Backend> void check_quant_linear_bad_arguments(const Backend& be) {
  std::vector<float> x(2 * 64), y(2 * 2);
  std::vector<q8_0_block> w(2 * 2);
  backend_arrays<Backend> mem(be);
  using args = quant_linear_args<float, q8_0_block>;
  args valid{make_view<const float>(mem.put(x), 2, 64),
             make_view<const q8_0_block>(mem.put(w), 2, 2), make_view(mem.put(y), 2, 2)};
  const auto run = [&](const args& a) { return quant_linear(be, a); };
  REQUIRE(run(valid).ok());
  check_bad_cases(
      valid, run,
      {{"K not a multiple of 32",
        [](args& a) {
          a.x.shape[1] = 48;
          a.w.shape[1] = 1;
        },
        status_code::bad_shape, "x (K not a multiple of 32)"},
       {"w blocks", [](args& a) { a.w.shape[1] = 1; }, status_code::bad_shape, "w"},
       {"y rows", [](args& a) { a.y.shape[0] = 3; }, status_code::bad_shape, "y"},
       {"y columns", [](args& a) { a.y.shape[1] = 1; }, status_code::bad_shape, "y"},
       {"negative M", [](args& a) { a.x.shape[0] = -1; }, status_code::bad_shape, "x"},
       {"negative N",
        [](args& a) {
          a.w.shape[0] = -1;
          a.y.shape[1] = -1;
        },
        status_code::bad_shape, "w"},
       {"null x", [](args& a) { a.x.data = nullptr; }, status_code::null_pointer, "x"},
       {"null w", [](args& a) { a.w.data = nullptr; }, status_code::null_pointer, "w"},
       {"null y", [](args& a) { a.y.data = nullptr; }, status_code::null_pointer, "y"}});
}

/// The cases every backend runs, for one block format.
template <class Backend, class Block> void check_quant_linear_format(const Backend& be) {
  for (index_t M : {0, 1, 2, 3, 4, 5, 17, 70}) {
    const bool small = M <= 4;
    check_quant_linear<Backend, float, Block>(be, M, 32, 7);
    check_quant_linear<Backend, float, Block>(be, M, small ? 2048 : 288, small ? 1031 : 131);
    check_quant_linear<Backend, float, Block>(be, M, 32 * 37, 67, 3, 2, 1);
    check_quant_linear<Backend, bf16, Block>(be, M, 96, 33, 0, 0, 2);
  }
  check_quant_linear<Backend, float, Block>(be, 3, 64 * 11, 45, 0, 0, 0, true); // transposed x
  check_quant_linear<Backend, float, Block>(be, 1, 5504, 70);                   // long rows
  check_quant_linear<Backend, float, Block>(be, 4, 4128, 37);  // M * K past the int8 copy of x
  check_quant_linear<Backend, float, Block>(be, 67, 576, 260); // GEMM remainders
}

template <class Backend> void check_quant_linear_all(const Backend& be) {
  check_quant_linear_format<Backend, q8_0_block>(be);
  check_quant_linear_format<Backend, q4_0_block>(be);
  check_quant_linear_bad_arguments(be);
}

} // namespace rodimus::test
