// DDTS on the CPU backend (math and shapes in rodimus/primitives/ddts.hpp), f32 throughout:
//
//   gamma = softplus(sel + b_sel) (identity above 20),  tau = sigmoid(tmp + b_tau)
//   log_decay = -(gamma * tau),  k_hat = k / max(||k||, eps) * gamma^tau
//
// The gate is primitives/ddts.hpp's ddts_gate, on xsimd batches over the key channels of a row
// (gamma^tau = exp(tau * log(gamma))) and on float for the tail; threads split rows.
#pragma once

#include <cmath>

#include "rodimus/backend/cpu/cpu.hpp"
#include "rodimus/backend/cpu/simd.hpp"
#include "rodimus/backend/scalar/ddts.hpp" // the fallback for what this backend does not cover
#include "rodimus/primitives/ddts.hpp"

namespace rodimus {

/// Whether ddts() on cpu<Arch> runs the scalar reference for `a` instead of its own kernel (Act
/// other than f32 / bf16 / f16, an inner stride other than 1). Benchmarks check it, so that they
/// never time the fallback (docs/ARCHITECTURE.md "Fallbacks").
template <class Arch, class Act>
[[nodiscard]] bool falls_back_to_scalar(const cpu<Arch>&, const ddts_args<Act>& a) noexcept {
  if constexpr (!detail::cpu_storage_type<Act>)
    return true;
  else
    return a.gate_preact.stride[1] != 1 || a.k.stride[1] != 1 || a.k_hat.stride[1] != 1 ||
           a.log_decay.stride[1] != 1 || (a.gate_bias.data && a.gate_bias.stride[0] != 1);
}

template <class Arch, class Act>
[[nodiscard]] status ddts(const cpu<Arch>& be, const ddts_args<Act>& a) noexcept {
  RODIMUS_TRY(ddts_check(a));
  if constexpr (!detail::cpu_storage_type<Act>) {
    return ddts(scalar{}, a);
  } else {
    if (falls_back_to_scalar(be, a)) return ddts(scalar{}, a);
    using B = detail::fbatch<Arch>;
    constexpr index_t W = index_t(detail::lanes<Arch>);
    const index_t M = a.gate_preact.shape[0], N = a.gate_preact.shape[1] / 2;
    const index_t Nv = N / W * W;
    const float* bias = a.gate_bias.data;
    parallel_for(be.pool, 0, M, detail::rows_grain(4 * N), [&](index_t lo, index_t hi) {
      for (index_t m = lo; m < hi; ++m) {
        const Act* sel = &a.gate_preact(m, index_t(0));
        const Act* tmp = sel + N;
        const Act* k = &a.k(m, index_t(0));
        float* kh = &a.k_hat(m, index_t(0));
        float* ld = &a.log_decay(m, index_t(0));
        B ss(0.0f);
        float ss_tail = 0.0f;
        for (index_t n = 0; n < Nv; n += W) {
          const B kv = detail::load_f32<Arch>(k + n);
          ss = xsimd::fma(kv, kv, ss);
        }
        for (index_t n = Nv; n < N; ++n)
          ss_tail += load_as<float>(k[n]) * load_as<float>(k[n]);
        const float norm = std::sqrt(xsimd::hadd(ss) + ss_tail);
        const float inv = 1.0f / ddts_key_denominator(norm, a.normalize_eps);
        for (index_t n = 0; n < Nv; n += W) {
          B ps = detail::load_f32<Arch>(sel + n), pt = detail::load_f32<Arch>(tmp + n);
          if (bias) {
            ps += B::load_unaligned(bias + n);
            pt += B::load_unaligned(bias + N + n);
          }
          const ddts_gate_values<B> gate = ddts_gate(ps, pt);
          gate.log_decay.store_unaligned(ld + n);
          (detail::load_f32<Arch>(k + n) * B(inv) * gate.beta).store_unaligned(kh + n);
        }
        for (index_t n = Nv; n < N; ++n) {
          float ps = load_as<float>(sel[n]), pt = load_as<float>(tmp[n]);
          if (bias) {
            ps += bias[n];
            pt += bias[N + n];
          }
          const ddts_gate_values<float> gate = ddts_gate(ps, pt);
          ld[n] = gate.log_decay;
          kh[n] = load_as<float>(k[n]) * inv * gate.beta;
        }
      }
    });
    return status::success();
  }
}

} // namespace rodimus
