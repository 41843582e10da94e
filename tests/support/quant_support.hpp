// The reference that q4_0's searched scale (rodimus/primitives/quant_format.hpp) is held to: the
// plain rule, written here from scratch (nothing of the library's quantiser is called), and the
// squared error of a quantised block.
#pragma once

#include <cmath>

#include "rodimus/core/dtype.hpp"
#include "rodimus/primitives/quant_format.hpp"

namespace rodimus::test {

/// The squared error, in f64, of the `count` values x[0 .. count) under q4_0's plain rule: m the
/// value of largest magnitude with its sign (the first on a tie), the scale d = -m / 8 rounded to
/// f16, each value on its nearest level of d * {-8, ..., 7}. The values past `count` of a partial
/// block are zeros, which the plain rule puts on level 0 exactly. 0 for a block of zeros.
inline double plain_q4_0_sse(const float* x, int count) {
  float m = 0.0f;
  for (int j = 0; j < count; ++j)
    if (std::fabs(x[j]) > std::fabs(m)) m = x[j];
  const double d = f16::to_float(f16(m / -8.0f).bits);
  double sse = 0;
  for (int j = 0; j < count; ++j) {
    double q = d != 0 ? std::nearbyint(double(x[j]) / d) : 0.0;
    q = std::fmin(7.0, std::fmax(-8.0, q));
    const double e = double(x[j]) - d * q;
    sse += e * e;
  }
  return sse;
}

/// The squared error, in f64, of a quantised block's first `count` elements against x.
template <class Block> double block_sse(const float* x, const Block& b, int count) {
  double sse = 0;
  for (int j = 0; j < count; ++j) {
    const double e = double(x[j]) - double(dequantise(b, j));
    sse += e * e;
  }
  return sse;
}

} // namespace rodimus::test
