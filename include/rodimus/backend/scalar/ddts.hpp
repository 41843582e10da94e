// Scalar reference of ddts() (math in rodimus/primitives/ddts.hpp): f32 arithmetic in PyTorch's
// order, so the f32 model tracks the f32 reference; only the key's sum of squares is accumulated in
// f64 (then its square root is rounded once to f32).
#pragma once

#include <cmath>

#include "rodimus/core/dtype.hpp"
#include "rodimus/primitives/ddts.hpp"

namespace rodimus {

/// softplus with PyTorch's default threshold: the identity above 20.
inline float ddts_softplus(float x) noexcept { return x > 20.0f ? x : std::log1p(std::exp(x)); }

inline float ddts_sigmoid(float x) noexcept { return 1.0f / (1.0f + std::exp(-x)); }

template <class Act> [[nodiscard]] status ddts(const scalar&, const ddts_args<Act>& a) noexcept {
  RODIMUS_TRY(ddts_check(a));
  const index_t M = a.gate_preact.shape[0], N = a.gate_preact.shape[1] / 2;
  const bool has_bias = a.gate_bias.data != nullptr;
  for (index_t m = 0; m < M; ++m) {
    double sum_sq = 0.0;
    for (index_t n = 0; n < N; ++n) {
      const double kv = load_as<float>(a.k(m, n));
      sum_sq += kv * kv;
    }
    const float norm = float(std::sqrt(sum_sq));
    const float denom = norm > a.normalize_eps ? norm : a.normalize_eps;
    for (index_t n = 0; n < N; ++n) {
      float psi_sel = load_as<float>(a.gate_preact(m, n));
      float psi_tau = load_as<float>(a.gate_preact(m, N + n));
      if (has_bias) {
        psi_sel += a.gate_bias(n);
        psi_tau += a.gate_bias(N + n);
      }
      const float gamma = ddts_softplus(psi_sel);
      const float tau = ddts_sigmoid(psi_tau);
      const float beta = std::pow(gamma, tau);
      a.log_decay(m, n) = -(gamma * tau);
      a.k_hat(m, n) = (load_as<float>(a.k(m, n)) / denom) * beta;
    }
  }
  return status::success();
}

} // namespace rodimus
