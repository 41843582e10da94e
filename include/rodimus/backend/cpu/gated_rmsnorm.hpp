// Gated RMSNorm on the CPU backend (math and shapes in rodimus/primitives/gated_rmsnorm.hpp):
//
//   z = x * silu(gate);  y = Act(z * rsqrt(mean(z^2) + eps) * weight)
//
// f32 throughout. Two passes per row (sum of squares, then y with z recomputed: y may alias x or
// gate exactly, and each element is read before it is written). Threads split the rows.
#pragma once

#include <cmath>

#include "rodimus/backend/cpu/cpu.hpp"
#include "rodimus/backend/cpu/simd.hpp"
#include "rodimus/backend/scalar/gated_rmsnorm.hpp" // the fallback for what this backend does not cover
#include "rodimus/primitives/elementwise.hpp"
#include "rodimus/primitives/gated_rmsnorm.hpp"

namespace rodimus {

/// Whether gated_rmsnorm() on cpu<Arch> runs the scalar reference for `a` instead of its own kernel
/// (Act other than f32 / bf16 / f16, an inner stride other than 1). Benchmarks check it, so that
/// they never time the fallback (docs/ARCHITECTURE.md "Fallbacks").
template <class Arch, class Act>
[[nodiscard]] bool falls_back_to_scalar(const cpu<Arch>&,
                                        const gated_rmsnorm_args<Act>& a) noexcept {
  if constexpr (!detail::cpu_storage_type<Act>)
    return true;
  else
    return a.x.stride[1] != 1 || a.gate.stride[1] != 1 || a.y.stride[1] != 1 ||
           a.weight.stride[0] != 1;
}

template <class Arch, class Act>
[[nodiscard]] status gated_rmsnorm(const cpu<Arch>& be, const gated_rmsnorm_args<Act>& a) noexcept {
  RODIMUS_TRY(gated_rmsnorm_check(a));
  if constexpr (!detail::cpu_storage_type<Act>) {
    return gated_rmsnorm(scalar{}, a);
  } else {
    if (falls_back_to_scalar(be, a)) return gated_rmsnorm(scalar{}, a);
    using B = detail::fbatch<Arch>;
    constexpr index_t W = index_t(detail::lanes<Arch>);
    const index_t M = a.x.shape[0], E = a.x.shape[1];
    const index_t Ev = E / W * W;
    parallel_for(be.pool, 0, M, detail::rows_grain(E), [&](index_t lo, index_t hi) {
      for (index_t m = lo; m < hi; ++m) {
        const Act* x = &a.x(m, index_t(0));
        const Act* g = &a.gate(m, index_t(0));
        Act* y = &a.y(m, index_t(0));
        auto z = [&](index_t e) {
          return detail::load_f32<Arch>(x + e) * silu(detail::load_f32<Arch>(g + e));
        };
        auto z1 = [&](index_t e) { return load_as<float>(x[e]) * silu(load_as<float>(g[e])); };
        B ss(0.0f);
        float ss_tail = 0.0f;
        for (index_t e = 0; e < Ev; e += W) {
          const B v = z(e);
          ss = xsimd::fma(v, v, ss);
        }
        for (index_t e = Ev; e < E; ++e)
          ss_tail += z1(e) * z1(e);
        const float rstd = 1.0f / std::sqrt((xsimd::hadd(ss) + ss_tail) / float(E) + a.eps);
        const B vr(rstd);
        for (index_t e = 0; e < Ev; e += W)
          detail::store_f32<Arch>(y + e, z(e) * vr * B::load_unaligned(a.weight.data + e));
        for (index_t e = Ev; e < E; ++e)
          y[e] = store_as<Act>(z1(e) * rstd * a.weight.data[e]);
      }
    });
    return status::success();
  }
}

} // namespace rodimus
