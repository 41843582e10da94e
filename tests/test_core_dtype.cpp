// dtype conversions: round-to-nearest-even for bf16 and f16 against a double-precision oracle.
#include "support/test_support.hpp"

#include <cmath>

using namespace rodimus;

namespace {
// The nearest representable value to x among all 16-bit patterns (searched on |x| over the
// non-negative patterns, ties to the even pattern), with x's sign bit.
template <class H>
std::uint16_t nearest_bits(float x) {
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
}  // namespace

TEST_CASE("bf16 and f16 round to nearest even on random and edge values") {
  auto g = test::rng(1);
  std::vector<float> xs = {0.0f, -0.0f, 1.0f, -1.0f, 65504.0f, 65519.0f, 1e-8f, 6.1e-5f, 5.96e-8f,
                           3.0e-8f, 1.0f + 1.0f / 256.0f, 1.0f + 3.0f / 256.0f, 3.3895e38f};
  std::uniform_real_distribution<float> e(-30.0f, 30.0f);
  std::uniform_int_distribution<int> s(0, 1);
  for (int i = 0; i < 200; ++i) xs.push_back((s(g) ? -1.0f : 1.0f) * std::exp2(e(g)));
  for (float x : xs) {
    INFO("x = " << x);
    if (std::fabs(x) < 65504.0f) CHECK(f16(x).bits == nearest_bits<f16>(x));
    CHECK(bf16(x).bits == nearest_bits<bf16>(x));
  }
  CHECK(std::isinf(float(f16(70000.0f))));
  CHECK(std::isnan(float(f16(NAN))));
  CHECK(std::isnan(float(bf16(NAN))));
}

TEST_CASE("safetensors round trip through the writer") {
  auto g = test::rng(2);
  auto a = test::uniform<float>(g, 6);
  std::vector<std::int64_t> ids = {3, 1, 4, 1, 5};
  auto bytes = io::to_safetensors_bytes({{"a", dtype::f32, {2, 3}, a.data()}, {"ids", dtype::i64, {5}, ids.data()}});
  auto f = io::safetensors_file::from_bytes(bytes.data(), bytes.size());
  CHECK(f.read<float>("a") == a);
  CHECK(f.read<std::int64_t>("ids") == ids);
  CHECK(f.at("a").shape == std::vector<std::int64_t>{2, 3});
  CHECK_THROWS_AS(f.read<float>("ids"), rodimus::error);
  CHECK_THROWS_WITH_AS(f.at("missing"), doctest::Contains("missing"), rodimus::error);
}
