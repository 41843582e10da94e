// Scalar reference of ddts() (math in rodimus/primitives/ddts.hpp): f32 arithmetic in PyTorch's
// order, so the f32 model tracks the f32 reference (the gate is primitives/ddts.hpp's ddts_gate on
// float); only the key's sum of squares is accumulated in f64 (then its square root is rounded once
// to f32).
#pragma once

#include <cmath>

#include "rodimus/core/dtype.hpp"
#include "rodimus/primitives/ddts.hpp"

namespace rodimus {

template <class Act> [[nodiscard]] status ddts(const scalar&, const ddts_args<Act>& a) noexcept {
  RODIMUS_TRY(ddts_check(a));
  const index_t M = a.gate_preact.shape[0], N = a.gate_preact.shape[1] / 2;
  for (index_t m = 0; m < M; ++m) {
    double sum_sq = 0.0;
    for (index_t n = 0; n < N; ++n) {
      const double kv = load_as<float>(a.k(m, n));
      sum_sq += kv * kv;
    }
    const float norm = float(std::sqrt(sum_sq));
    const float denom = ddts_key_denominator(norm, a.normalize_eps);
    for (index_t n = 0; n < N; ++n) {
      ddts_store(a, m, n, denom);
    }
  }
  return status::success();
}

} // namespace rodimus
