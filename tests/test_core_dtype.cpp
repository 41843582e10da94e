// dtype conversions: round-to-nearest-even for bf16 and f16 against a double-precision oracle.
#include "support/test_support.hpp"

#include <cmath>
#include <cstdint>
#include <limits>

using namespace rodimus;

namespace {
// The nearest representable value to x among all 16-bit patterns (searched on |x| over the
// non-negative patterns, ties to the even pattern), with x's sign bit.
template <class H> std::uint16_t nearest_bits(float x) {
  const double ax = std::fabs(double(x));
  double best = INFINITY;
  std::uint16_t best_bits = 0;
  for (std::uint32_t b = 0; b < 0x8000u; ++b) {
    const float v = H::to_float(std::uint16_t(b));
    if (std::isnan(v)) continue;
    const double d = std::fabs(double(v) - ax);
    if (d < best || (d == best && (b & 1u) == 0)) {
      best = d;
      best_bits = std::uint16_t(b);
    }
  }
  return std::uint16_t(best_bits | (std::signbit(x) ? 0x8000u : 0u));
}
} // namespace

TEST_CASE("bf16 and f16 round to nearest even on random and edge values") {
  auto g = test::rng(1);
  std::vector<float> xs = {0.0f,
                           -0.0f,
                           1.0f,
                           -1.0f,
                           65504.0f,
                           65519.0f,
                           1e-8f,
                           6.1e-5f,
                           5.96e-8f,
                           3.0e-8f,
                           1.0f + 1.0f / 256.0f,
                           1.0f + 3.0f / 256.0f,
                           3.3895e38f};
  std::uniform_real_distribution<float> e(-30.0f, 30.0f);
  std::uniform_int_distribution<int> s(0, 1);
  for (int i = 0; i < 200; ++i)
    xs.push_back((s(g) ? -1.0f : 1.0f) * std::exp2(e(g)));
  for (float x : xs) {
    INFO("x = " << x);
    if (std::fabs(x) < 65504.0f) CHECK(f16(x).bits == nearest_bits<f16>(x));
    CHECK(bf16(x).bits == nearest_bits<bf16>(x));
  }
  CHECK(std::isinf(float(f16(70000.0f))));
  CHECK(std::isnan(float(f16(NAN))));
  CHECK(std::isnan(float(bf16(NAN))));
}

TEST_CASE("f16 and bf16: every finite pattern round-trips; overflow and underflow boundaries") {
  // Widening is exact, so narrowing the widened value must give the same pattern back: this
  // covers every subnormal, normal and signed zero of both formats.
  int f16_bad = 0, bf16_bad = 0;
  for (std::uint32_t b = 0; b < 0x10000u; ++b) {
    const auto bits = std::uint16_t(b);
    const float h = f16::to_float(bits), r = bf16::to_float(bits);
    if (!std::isnan(h) && f16::from_float(h) != bits) ++f16_bad;
    if (!std::isnan(r) && bf16::from_float(r) != bits) ++bf16_bad;
    // NaN stays NaN.
    if (std::isnan(h)) CHECK(std::isnan(f16::to_float(f16::from_float(h))));
    if (std::isnan(r)) CHECK(std::isnan(bf16::to_float(bf16::from_float(r))));
  }
  CHECK(f16_bad == 0);
  CHECK(bf16_bad == 0);
  // f16: 65504 is the largest finite value; 65520 is the midpoint to 65536 and ties to even (inf).
  CHECK(f16(std::nextafter(65520.0f, 0.0f)).bits == 0x7bffu);
  CHECK(f16(65520.0f).bits == 0x7c00u);
  CHECK(f16(-65520.0f).bits == 0xfc00u);
  CHECK(f16(INFINITY).bits == 0x7c00u);
  // f16 subnormals: 2^-24 is the smallest; 2^-25 is the midpoint to 0 and ties to even (0).
  CHECK(f16(std::ldexp(1.0f, -24)).bits == 0x0001u);
  CHECK(f16(std::ldexp(1.0f, -25)).bits == 0x0000u);
  CHECK(f16(std::nextafter(std::ldexp(1.0f, -25), 1.0f)).bits == 0x0001u);
  CHECK(f16(std::ldexp(3.0f, -25)).bits == 0x0002u);  // 1.5 x 2^-24 ties up to the even 2
  CHECK(f16(-std::ldexp(1.0f, -26)).bits == 0x8000u); // underflow keeps the sign
  // The largest subnormal rounds up into the smallest normal.
  CHECK(f16(std::ldexp(1.0f, -14) - std::ldexp(1.0f, -26)).bits == 0x0400u);
  // bf16: the largest float rounds to inf; the largest bf16 stays.
  CHECK(bf16(3.4028235e38f).bits == 0x7f80u);
  CHECK(bf16(bf16::to_float(0x7f7fu)).bits == 0x7f7fu);
  CHECK(bf16(std::numeric_limits<float>::denorm_min()).bits == 0x0000u);
}

TEST_CASE("safetensors round trip through the writer") {
  auto g = test::rng(2);
  auto a = test::uniform<float>(g, 6);
  std::vector<std::int64_t> ids = {3, 1, 4, 1, 5};
  auto bytes = io::to_safetensors_bytes(
      {{"a", dtype::f32, {2, 3}, a.data()}, {"ids", dtype::i64, {5}, ids.data()}});
  auto f = io::safetensors_file::from_bytes(bytes.data(), bytes.size());
  CHECK(f.read<float>("a") == a);
  CHECK(f.read<std::int64_t>("ids") == ids);
  CHECK(f.at("a").shape == std::vector<std::int64_t>{2, 3});
  CHECK_THROWS_AS(f.read<float>("ids"), rodimus::error);
  CHECK_THROWS_WITH_AS(f.at("missing"), doctest::Contains("missing"), rodimus::error);
}
