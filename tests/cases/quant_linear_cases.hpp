// quant_linear() on any backend against the scalar reference (one body, stamped per backend):
// fresh random f32 weights quantised to q8_0 / q4_0 (block scales spread over 2^-6 .. 2^2 so
// blocks differ), random x, poisoned y (its padding columns must stay poisoned), M from 0 through
// decode sizes (<= 4) to prefill sizes, K from one block to thousands, odd N, padded and
// transposed views, f32 and bf16 activations, and the bad arguments. K % 32 != 0 too (a partial
// last block in every weight row: K = 1, 17, 40, 100, 352, 2736, ...) on every kernel: the int8
// decode path, the f32 decode path (M * padded K past the int8 copy of x), and the prefill GEMM
// with a partial last K tile; x's rows are exactly K long where unpadded, so a read past K is out
// of the allocation (the sanitizer build finds it).
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
// (each x moves by at most half a step, plus the f32 rounding of x / dx near a half). A partial
// last block counts its k < K only: the padding of x is 0, which quantises exactly (and never
// raises dx), and the sum never includes the weights' padding.
// A NaN (an unwritten output) is always outside it.
//
// Extreme values (check_quant_linear_extremes; each kernel, both layouts): every weight integer at
// the top of its range (q4_0 nibble 15, q8_0 +127), the bottom (q4_0 0, q8_0 -127) or alternating
// along k, against every x at +a, -a or alternating (a = 3). They hold the bound E alone, without
// the x-rounding term: every x of a block has |x| = max|x| = a, so x / dx is 127 up to the f32
// roundings of dx = a / 127 and 1 / dx (3 * 2^-24 relative, nowhere near a rounding boundary),
// every x quantises to exactly +-127, and 127 dx = x (1 + d), |d| <= 2^-24: the integer path's one
// error, x's int8 rounding, is then a rounding of dx, which E counts. They also reach the ends of
// the integer ranges: no pair of products saturates int16 (q4_0 2 * 15 * 127, q8_0 2 * 127 * 127 <
// 2^15) and a block's dot product, with the group kernels' offsets, stays exact in f32 (<= 32 * 127
// * 127 < 2^24). The scalar backend on the decode layout equals it on the blocks bit for bit.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
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

/// Where the extreme cases put values (see the top of this file): none (random), the top of the
/// range, the bottom, or alternating bottom / top along k (x: +a, -a, alternating +a / -a).
enum class quant_extreme { none, top, bottom, alternating };
struct quant_extremes {
  quant_extreme w = quant_extreme::none;
  quant_extreme x = quant_extreme::none;
};

/// The sign of element k under e: +1 for top, -1 for bottom, alternating from -1 (k even).
inline int quant_extreme_sign(quant_extreme e, index_t k) noexcept {
  return e == quant_extreme::top ? 1 : e == quant_extreme::bottom ? -1 : k % 2 == 0 ? -1 : 1;
}

/// Element j of block b set to the stored integer v (q8_0: the value, -127 .. 127; q4_0: the
/// nibble, 0 .. 15), the block's other elements and scale kept.
template <class Block> void set_quant_int(Block& b, int j, int v) {
  if constexpr (std::is_same_v<Block, q8_0_block>) {
    b.q[j] = std::int8_t(v);
  } else {
    std::uint8_t& nib = b.nibbles[j % 16];
    nib = j < 16 ? std::uint8_t((nib & 0xf0) | v) : std::uint8_t((nib & 0x0f) | (v << 4));
  }
}

/// N rows of quant_blocks(K) blocks (row stride ldb blocks) from random f32 weights (a partial
/// last block quantised from the row's last K % 32 values, padded with zeros by quantise_row).
template <class Block>
std::vector<Block> random_quant_rows(std::mt19937_64& g, index_t N, index_t K, index_t ldb) {
  std::uniform_real_distribution<double> u(-1.0, 1.0), e(-6.0, 2.0);
  std::vector<Block> w(std::size_t(N * ldb));
  std::vector<float> row(static_cast<std::size_t>(K));
  for (index_t n = 0; n < N; ++n) {
    for (index_t b = 0; b < quant_blocks(K); ++b) {
      const double scale = std::exp2(e(g));
      for (index_t k = b * kQuantGroup; k < std::min(K, (b + 1) * kQuantGroup); ++k)
        row[std::size_t(k)] = float(u(g) * scale);
    }
    REQUIRE(quantise_row(row.data(), K, w.data() + n * ldb).ok());
  }
  return w;
}

/// y = x deq(w)^T on `be` with x (M, K) at row stride K + x_pad (or transposed), w (N,
/// quant_blocks(K)) at row stride quant_blocks(K) + w_pad blocks, its rows in `layout` (packed from
/// the blocks), y (M, N) at row stride N + y_pad; compared with the scalar reference on the blocks
/// within the bound above; `ext`: x and the weights' integers at the ends of their ranges, held to
/// the bound without the x-rounding term.
template <class Backend, class Act, class Block>
void check_quant_linear(const Backend& be, index_t M, index_t K, index_t N, index_t x_pad = 0,
                        index_t w_pad = 0, index_t y_pad = 0, bool x_transposed = false,
                        quant_layout layout = quant_layout::blocks, quant_extremes ext = {}) {
  CAPTURE(M);
  CAPTURE(K);
  CAPTURE(N);
  CAPTURE(x_pad);
  CAPTURE(w_pad);
  CAPTURE(y_pad);
  CAPTURE(x_transposed);
  CAPTURE(quant_groups(quant_blocks(K), layout));
  CAPTURE(int(ext.w));
  CAPTURE(int(ext.x));
  INFO("act " << to_string(dtype_of<Act>::value) << ", weight " << to_string(format_of<Block>()));
  auto g = rng(std::uint64_t(M * 1000003 + K * 101 + N + sizeof(Block)));
  const index_t nb = quant_blocks(K), ldx = K + x_pad, ldb = nb + w_pad, ldy = N + y_pad;
  auto x = uniform<Act>(g, std::size_t(x_transposed ? K * M : M * ldx));
  std::vector<Block> w = random_quant_rows<Block>(g, N, K, ldb);
  if (ext.x != quant_extreme::none)
    for (index_t m = 0; m < M; ++m)
      for (index_t k = 0; k < K; ++k)
        x[std::size_t(x_transposed ? k * M + m : m * ldx + k)] =
            store_as<Act>(3.0f * float(quant_extreme_sign(ext.x, k)));
  constexpr int top = std::is_same_v<Block, q8_0_block> ? 127 : 15;
  constexpr int bottom = std::is_same_v<Block, q8_0_block> ? -127 : 0;
  if (ext.w != quant_extreme::none)
    for (index_t n = 0; n < N; ++n)
      for (index_t k = 0; k < K; ++k)
        set_quant_int(w[std::size_t(n * ldb + k / kQuantGroup)], int(k % kQuantGroup),
                      quant_extreme_sign(ext.w, k) > 0 ? top : bottom);
  // What no kernel may use: x past K in each row (NaN: times any weight, NaN), the blocks past a
  // row's quant_blocks(K) (NaN scales), and a partial last block's padding, filled here with
  // random values in place of quantise_row's zeros (the sum over k < K never includes them).
  if (!x_transposed)
    for (index_t m = 0; m < M; ++m)
      for (index_t k = K; k < ldx; ++k)
        x[std::size_t(m * ldx + k)] = store_as<Act>(std::numeric_limits<float>::quiet_NaN());
  std::uniform_int_distribution<int> byte(0, 255);
  for (index_t n = 0; n < N; ++n) {
    for (index_t b = nb; b < ldb; ++b)
      w[std::size_t(n * ldb + b)].scale = f16::from_bits(0x7E00); // NaN
    if (K % kQuantGroup == 0) continue;
    Block& last = w[std::size_t(n * ldb + nb - 1)];
    for (int j = int(K % kQuantGroup); j < 32; ++j)
      set_quant_int(last, j,
                    std::is_same_v<Block, q8_0_block> ? byte(g) % 255 - 127 : byte(g) & 0x0f);
  }
  std::vector<Block> w_laid = w; // what the backend reads: the rows in `layout`
  for (index_t n = 0; n < N; ++n)
    pack_quant_row(w_laid.data() + n * ldb, nb, layout);
  std::vector<Act> y(std::size_t(M * ldy)), y_ref(y.size());
  poison(y);
  poison(y_ref);
  const auto x_view = [&](const Act* p) {
    return x_transposed ? tensor_view<const Act, 2>::strided(p, {M, K}, {1, M})
                        : tensor_view<const Act, 2>::strided(p, {M, K}, {ldx, 1});
  };
  const auto w_view = [&](const Block* p) {
    return tensor_view<const Block, 2>::strided(p, {N, nb}, {ldb, 1});
  };
  const auto y_view = [&](Act* p) { return tensor_view<Act, 2>::strided(p, {M, N}, {ldy, 1}); };

  backend_arrays<Backend> mem(be);
  Act* dy = mem.put(y);
  quant_linear_args<Act, Block> a{x_view(mem.put(x)), w_view(mem.put(w_laid)), y_view(dy), layout};
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
  if constexpr (std::is_same_v<Backend, scalar>) { // the same f64 sums of the same blocks
    REQUIRE(got.size() == want.size());
    CHECK((got.empty() || std::memcmp(got.data(), want.data(), got.size() * sizeof(Act)) == 0));
  }
  const tensor_view<const Act, 2> xv = x_view(x.data());
  const double u_y = unit_roundoff<Act>(), acc = double(K + 4) * std::ldexp(1.0, -23);
  index_t bad = 0;
  double worst = 0.0;
  for (index_t m = 0; m < M; ++m)
    for (index_t n = 0; n < N; ++n) {
      double s = 0.0, ex = 0.0; // ex: the x-quantisation term (rounded only)
      for (index_t b = 0; b < nb; ++b) {
        double amax = 0.0, sw = 0.0;
        for (index_t k = b * kQuantGroup; k < std::min(K, (b + 1) * kQuantGroup); ++k) {
          const double wk = std::fabs(
              double(dequantise(w[std::size_t(n * ldb + k / kQuantGroup)], int(k % kQuantGroup))));
          const double xk = std::fabs(load_as<double>(xv(m, k)));
          s += xk * wk;
          sw += wk;
          amax = std::max(amax, xk);
        }
        if (rounded && ext.x == quant_extreme::none) ex += amax / 127 / 2 * (1 + 1e-5) * sw;
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
  check_bad_cases(valid, run,
                  {{"K = 48 with one block per row (it needs ceil(48 / 32) = 2)",
                    [](args& a) {
                      a.x.shape[1] = 48;
                      a.w.shape[1] = 1;
                    },
                    status_code::bad_shape, "w"},
                   {"K = 40 with three blocks per row (it needs 2)",
                    [](args& a) {
                      a.x.shape[1] = 40;
                      a.w.shape[1] = 3;
                    },
                    status_code::bad_shape, "w"},
                   {"w blocks", [](args& a) { a.w.shape[1] = 1; }, status_code::bad_shape, "w"},
                   {"K = 0 with two blocks per row", [](args& a) { a.x.shape[1] = 0; },
                    status_code::bad_shape, "w"},
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
                   {"null y", [](args& a) { a.y.data = nullptr; }, status_code::null_pointer, "y"},
                   {"decode layout with rows that overlap (not whole rows)",
                    [](args& a) {
                      a.layout = quant_layout::groups16;
                      a.w.stride[0] = 1;
                    },
                    status_code::bad_argument,
                    "w (the decode layout needs whole rows, each row's blocks contiguous)"}});
  // In the blocks layout, rows may overlap (each block is read where the view says).
  args overlapping = valid;
  overlapping.w.stride[0] = 1;
  CHECK(run(overlapping).ok());
}

/// The extreme cases (see the top of this file) on every kernel: the integer decode path (M <= 4,
/// with whole groups and a partial last block, and an odd N: the group kernels' single last row),
/// the f32 decode kernel (M * padded K past the int8 copy of x) and the prefill GEMM.
template <class Backend, class Block>
void check_quant_linear_extremes(const Backend& be, quant_layout layout) {
  constexpr quant_extreme values[] = {quant_extreme::top, quant_extreme::bottom,
                                      quant_extreme::alternating};
  for (const quant_extreme we : values)
    for (const quant_extreme xe : values) {
      const quant_extremes ext{we, xe};
      const auto f32 = [&](index_t M, index_t K, index_t N) {
        check_quant_linear<Backend, float, Block>(be, M, K, N, 0, 0, 0, false, layout, ext);
      };
      f32(1, 1008, 9);
      f32(2, 512, 5);
      f32(4, 520, 7);
      f32(4, 4128, 5);
      f32(17, 1008, 9);
      check_quant_linear<Backend, bf16, Block>(be, 3, 544, 7, 1, 1, 1, false, layout, ext);
    }
}

/// The cases every backend runs, for one block format and one layout of the weight rows (rows of
/// 16 blocks or more have whole groups in quant_layout::groups16: K from 512 on).
template <class Backend, class Block>
void check_quant_linear_format(const Backend& be, quant_layout layout) {
  const auto f32 = [&](index_t M, index_t K, index_t N, index_t x_pad = 0, index_t w_pad = 0,
                       index_t y_pad = 0, bool x_transposed = false) {
    check_quant_linear<Backend, float, Block>(be, M, K, N, x_pad, w_pad, y_pad, x_transposed,
                                              layout);
  };
  const auto b16 = [&](index_t M, index_t K, index_t N, index_t x_pad = 0, index_t w_pad = 0,
                       index_t y_pad = 0) {
    check_quant_linear<Backend, bf16, Block>(be, M, K, N, x_pad, w_pad, y_pad, false, layout);
  };
  for (index_t M : {0, 1, 2, 3, 4, 5, 17, 70}) {
    const bool small = M <= 4;
    f32(M, 32, 7);
    f32(M, small ? 2048 : 288, small ? 1031 : 131);
    f32(M, 32 * 37, 67, 3, 2, 1);
    b16(M, 96, 33, 0, 0, 2);
    // K % 32 != 0: a partial last block (decode: the int8 path; prefill: a partial last K tile of
    // the GEMM, after one or two whole 256-wide tiles for 300 and 520).
    f32(M, 1, 9);
    f32(M, 17, 5, 0, 0, 1);
    f32(M, small ? 100 : 300, small ? 33 : 131);
    f32(M, small ? 40 : 520, 29, 5, 1, 3);
    b16(M, 336 + 16, 19, 0, 0, 1);
    // Whole groups of the decode layout with a partial last block inside the last group (1008:
    // 32 blocks), and one group then a partial block (520: 17 blocks).
    f32(M, 1008, 23, 0, 1, 0);
    b16(M, 520, 11, 1, 2, 0);
  }
  f32(3, 64 * 11, 45, 0, 0, 0, true); // transposed x
  f32(3, 100, 45, 0, 0, 0, true);     // and K % 32 != 0
  f32(1, 5504, 70);                   // long rows
  f32(4, 4128, 37);                   // M * K past the int8 copy of x
  f32(67, 576, 260);                  // GEMM remainders
  // The FFN down projection's row length of rodimus-plus-1.6b (F = 2736: 85.5 blocks) at decode
  // sizes (int8 path) and in the GEMM (ten whole K tiles and one of 176 columns; two N tiles).
  f32(1, 2736, 70);
  b16(4, 2736, 33, 2, 1, 1);
  f32(67, 2736, 131);
  // The int8 copy of x holds rows padded to whole blocks: M * quant_blocks(K) * 32 <= 16384 (at
  // the bound for 4 x 4090), past it for 3 x 5450 (M * K fits, the padded rows do not) and for
  // 4 x 4100 and 1 x 16390 (M * K past it too): the f32 decode kernel with a partial block.
  f32(4, 4090, 37);
  f32(3, 5450, 37);
  f32(4, 4100, 21, 3, 0, 0);
  f32(1, 16390, 13);
}

template <class Backend> void check_quant_linear_all(const Backend& be) {
  for (const quant_layout layout : {quant_layout::blocks, quant_layout::groups16}) {
    check_quant_linear_format<Backend, q8_0_block>(be, layout);
    check_quant_linear_format<Backend, q4_0_block>(be, layout);
    check_quant_linear_extremes<Backend, q8_0_block>(be, layout);
    check_quant_linear_extremes<Backend, q4_0_block>(be, layout);
  }
  check_quant_linear_bad_arguments(be);
}

} // namespace rodimus::test
