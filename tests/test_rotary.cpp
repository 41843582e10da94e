// Rotary embedding (NeoX rotate-half), scalar reference: pairs rotate by p * theta_j, offsets
// compose, rotary_dim 0 and partial rotary leave the right channels alone, 16-bit dtypes stay close
// to f64.
#include "support/primitive_support.hpp"
#include "support/test_support.hpp"

#include <complex>
#include <cstring>

#include "rodimus/backend/scalar/rotary.hpp"

using namespace rodimus;

namespace {

template <class A>
status run(std::vector<A>& x, index_t B, index_t T, index_t H, index_t D, int rotary_dim,
           const std::int64_t* offset = nullptr, float base = 10000.0f,
           const std::int64_t* cu = nullptr, std::int64_t num_seqs = 0) {
  rotary_args<A> a;
  a.x = make_view(x.data(), B, T, H, D);
  a.position_offset = offset;
  a.rotary_dim = rotary_dim;
  a.base = base;
  a.cu_seqlens = cu;
  a.num_seqs = num_seqs;
  return rotary(scalar{}, a);
}

template <class A> bool same_bits(const std::vector<A>& a, const std::vector<A>& b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(A)) == 0);
}

} // namespace

TEST_CASE(
    "rotary (f64): each pair (j, j + r/2) is multiplied by exp(i p theta_j), norms preserved") {
  auto g = test::rng(21);
  const index_t B = 2, T = 7, H = 3, D = 12;
  const std::int64_t offset[2] = {0, 1000};
  for (int r : {-1, 12, 8, 2}) {
    CAPTURE(r);
    const index_t rr = r < 0 ? D : r, half = rr / 2;
    const auto x0 = test::uniform<double>(g, std::size_t(B * T * H * D));
    auto x = x0;
    REQUIRE(run(x, B, T, H, D, r, offset, 500.0f).ok());
    double max_err = 0, max_norm_err = 0;
    for (index_t b = 0; b < B; ++b)
      for (index_t t = 0; t < T; ++t)
        for (index_t h = 0; h < H; ++h) {
          const std::size_t row = std::size_t(((b * T + t) * H + h) * D);
          for (index_t j = 0; j < half; ++j) {
            const double angle =
                double(offset[b] + t) * std::pow(500.0, -2.0 * double(j) / double(rr));
            const std::complex<double> before(x0[row + j], x0[row + j + half]);
            const std::complex<double> after(x[row + j], x[row + j + half]);
            const std::complex<double> want = before * std::polar(1.0, angle);
            max_err = std::max(max_err, std::abs(after - want));
            max_norm_err = std::max(max_norm_err, std::fabs(std::abs(after) - std::abs(before)));
          }
          for (index_t j = rr; j < D; ++j)
            CHECK(x[row + j] == x0[row + j]);
        }
    // Angles up to ~1000 rad: the double angle itself carries ~1e-13 of error.
    CHECK(max_err < 1e-11);
    CHECK(max_norm_err < 1e-14);
    CHECK(test::max_abs_diff(x, x0) > 0.1); // it did rotate
  }
}

TEST_CASE("rotary: offset p then token t equals offset 0 at token p + t; packed varlen equals per "
          "sequence") {
  auto g = test::rng(22);
  const index_t T = 5, H = 2, D = 8;
  const std::int64_t p = 37;
  // A long sequence at offset 0 whose last T tokens are the short one's.
  const auto xl0 = test::uniform<float>(g, std::size_t((p + T) * H * D));
  auto xl = xl0;
  REQUIRE(run(xl, 1, p + T, H, D, -1).ok());
  std::vector<float> xs(xl0.end() - T * H * D, xl0.end());
  REQUIRE(run(xs, 1, T, H, D, -1, &p).ok());
  CHECK(same_bits(xs, std::vector<float>(xl.end() - T * H * D, xl.end())));

  // Packed: three sequences with their own offsets.
  const std::int64_t cu[4] = {0, 4, 4, 9};
  const std::int64_t offs[3] = {3, 11, 250};
  const auto xp0 = test::uniform<bf16>(g, std::size_t(9 * H * D));
  auto xp = xp0;
  REQUIRE(run(xp, 1, 9, H, D, 6, offs, 10000.0f, cu, 3).ok());
  for (int n = 0; n < 3; ++n) {
    std::vector<bf16> one(xp0.begin() + cu[n] * H * D, xp0.begin() + cu[n + 1] * H * D);
    REQUIRE(run(one, 1, cu[n + 1] - cu[n], H, D, 6, &offs[n]).ok());
    CHECK(same_bits(one,
                    std::vector<bf16>(xp.begin() + cu[n] * H * D, xp.begin() + cu[n + 1] * H * D)));
  }
  // Batched rows with offsets equal per-row calls too.
  const std::int64_t boffs[2] = {0, 9};
  const auto xb0 = test::uniform<f16>(g, std::size_t(2 * T * H * D));
  auto xb = xb0;
  REQUIRE(run(xb, 2, T, H, D, -1, boffs).ok());
  for (int b = 0; b < 2; ++b) {
    std::vector<f16> one(xb0.begin() + b * T * H * D, xb0.begin() + (b + 1) * T * H * D);
    REQUIRE(run(one, 1, T, H, D, -1, &boffs[b]).ok());
    CHECK(same_bits(
        one, std::vector<f16>(xb.begin() + b * T * H * D, xb.begin() + (b + 1) * T * H * D)));
  }
}

TEST_CASE("rotary: rotary_dim 0 is the identity; partial rotary equals a narrower head and passes "
          "the rest") {
  auto g = test::rng(23);
  const index_t B = 2, T = 6, H = 2, D = 16, r = 6;
  const std::int64_t off[2] = {5, 70};
  const auto x0 = test::uniform<float>(g, std::size_t(B * T * H * D));
  auto x = x0;
  REQUIRE(run(x, B, T, H, D, 0, off).ok());
  CHECK(same_bits(x, x0));

  REQUIRE(run(x, B, T, H, D, int(r), off).ok());
  // The first r channels of every row, as a head of size r rotated in full.
  std::vector<float> narrow, narrow_rot;
  for (index_t row = 0; row < B * T * H; ++row)
    narrow.insert(narrow.end(), x0.begin() + row * D, x0.begin() + row * D + r);
  REQUIRE(run(narrow, B, T, H, r, -1, off).ok());
  for (index_t row = 0; row < B * T * H; ++row) {
    narrow_rot.insert(narrow_rot.end(), x.begin() + row * D, x.begin() + row * D + r);
    for (index_t j = r; j < D; ++j)
      CHECK(x[std::size_t(row * D + j)] == x0[std::size_t(row * D + j)]);
  }
  CHECK(same_bits(narrow_rot, narrow));
  CHECK(test::max_abs_diff(narrow, std::vector<float>(narrow.size(), 0.f)) > 0);
}

TEST_CASE("rotary in f32, bf16 and f16 stays within tolerance of f64") {
  auto g = test::rng(24);
  const index_t B = 2, T = 9, H = 2, D = 32;
  const std::int64_t off[2] = {0, 190}; // positions < 200: the f32 angle is good to ~2e-5
  const auto x0 = test::uniform<double>(g, std::size_t(B * T * H * D));
  auto check = [&](auto tag, double rel, const char* what) {
    using A = decltype(tag);
    auto x = test::convert<A>(x0);
    std::vector<double> want = test::widen(x);
    REQUIRE(run(want, B, T, H, D, -1, off).ok());
    REQUIRE(run(x, B, T, H, D, -1, off).ok());
    test::check_close(x, want, rel, 0.0, what);
  };
  check(float{}, 1e-4, "f32");
  check(bf16{}, 2e-2, "bf16"); // tables and output rounded to bf16
  check(f16{}, 3e-3, "f16");
}

TEST_CASE("rotary (bf16): the cos/sin tables are rounded to bf16 before the f32 rotation, like the "
          "reference") {
  auto g = test::rng(25);
  const index_t T = 64, H = 1, D = 64;
  const std::int64_t off = 1000;
  const auto x0 = test::uniform<bf16>(g, std::size_t(T * H * D));
  auto x = x0;
  REQUIRE(run(x, 1, T, H, D, -1, &off).ok());
  // The rule of docs/MODEL.md §5.2 spelled out, with and without rounding the tables.
  std::size_t same_rounded = 0, same_unrounded = 0, n = 0;
  for (index_t t = 0; t < T; ++t)
    for (index_t j = 0; j < D / 2; ++j) {
      const float angle = float(off + t) * (1.0f / std::pow(10000.0f, float(2 * j) / float(D)));
      const float c = std::cos(angle), s = std::sin(angle);
      const float cr = float(bf16(c)), sr = float(bf16(s));
      const float v0 = float(x0[std::size_t(t * D + j)]),
                  v1 = float(x0[std::size_t(t * D + j + D / 2)]);
      const bf16 got0 = x[std::size_t(t * D + j)], got1 = x[std::size_t(t * D + j + D / 2)];
      same_rounded +=
          (bf16(v0 * cr - v1 * sr).bits == got0.bits) + (bf16(v0 * sr + v1 * cr).bits == got1.bits);
      same_unrounded +=
          (bf16(v0 * c - v1 * s).bits == got0.bits) + (bf16(v0 * s + v1 * c).bits == got1.bits);
      n += 2;
    }
  CAPTURE(same_rounded);
  CAPTURE(same_unrounded);
  CHECK(same_rounded >= n * 97 / 100);
  CHECK(same_unrounded <= n * 90 / 100);
}

TEST_CASE("rotary: bad arguments return a status naming the argument") {
  std::vector<float> x(2 * 3 * 2 * 8);
  CHECK(run(x, 2, 3, 2, 8, -1).ok());
  test::check_status(run(x, 2, 3, 2, 8, 5), status_code::bad_argument, "rotary_dim");
  test::check_status(run(x, 2, 3, 2, 8, 10), status_code::bad_argument, "rotary_dim");
  test::check_status(run(x, 2, 3, 2, 8, -2), status_code::bad_argument, "rotary_dim");
  test::check_status(run(x, 2, 3, 2, 8, -1, nullptr, 0.0f), status_code::bad_argument, "base");
  test::check_status(run(x, 2, 3, 2, 0, -1), status_code::bad_shape, "x");
  test::check_status(run(x, -1, 3, 2, 8, -1), status_code::bad_shape, "x");
  const std::int64_t cu[3] = {0, 1, 3};
  test::check_status(run(x, 2, 3, 2, 8, -1, nullptr, 1e4f, cu, 2), status_code::bad_shape,
                     "cu_seqlens");
  const std::int64_t bad_cu[3] = {0, 1, 4};
  test::check_status(run(x, 1, 3, 2, 8, -1, nullptr, 1e4f, bad_cu, 2), status_code::bad_argument,
                     "cu_seqlens");
  rotary_args<float> a;
  a.x = make_view(static_cast<float*>(nullptr), 1, 1, 1, 8);
  test::check_status(rotary(scalar{}, a), status_code::null_pointer, "x");
  // A negative offset (tokens seen before) is rejected before x is touched.
  test::poison(x);
  const std::int64_t offs[2] = {4, -1};
  test::check_status(run(x, 2, 3, 2, 8, -1, offs), status_code::bad_argument, "position_offset");
  for (float v : x)
    CHECK(std::isnan(v));
}
