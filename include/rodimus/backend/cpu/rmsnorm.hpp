// RMSNorm with the fused residual add on the CPU backend (math and shapes in
// rodimus/primitives/rmsnorm.hpp):
//
//   s = f32(x) + residual;  y = Act(s * rsqrt(mean(s^2) + eps) * weight);  residual_out = s
//
// Everything in f32 (the reference computes in f32 too; the scalar oracle in f64). Two passes per
// row: the sum of squares (s written to residual_out when kept), then y. Threads split the rows.
// Residual types other than f32, or inner strides other than 1, run the scalar reference.
#pragma once

#include <cmath>

#include "rodimus/backend/cpu/cpu.hpp"
#include "rodimus/backend/cpu/simd.hpp"
#include "rodimus/backend/scalar/rmsnorm.hpp" // the fallback for what this backend does not cover
#include "rodimus/primitives/rmsnorm.hpp"

namespace rodimus {

namespace detail {
/// The types rmsnorm() on cpu<Arch> has a kernel for.
template <class Act, class Residual>
constexpr bool rmsnorm_cpu_types = std::is_same_v<Residual, float>&& cpu_storage_type<Act>;
} // namespace detail

/// Whether rmsnorm() on cpu<Arch> runs the scalar reference for `a` instead of its own kernel (a
/// residual type other than f32, Act other than f32 / bf16 / f16, an inner stride other than 1).
/// Benchmarks check it, so that they never time the fallback (docs/ARCHITECTURE.md "Fallbacks").
template <class Arch, class Act, class Residual>
[[nodiscard]] bool falls_back_to_scalar(const cpu<Arch>&,
                                        const rmsnorm_args<Act, Residual>& a) noexcept {
  if constexpr (!detail::rmsnorm_cpu_types<Act, Residual>)
    return true;
  else
    return a.x.stride[1] != 1 || a.y.stride[1] != 1 || a.weight.stride[0] != 1 ||
           (a.residual.data && a.residual.stride[1] != 1) ||
           (a.residual_out.data && a.residual_out.stride[1] != 1);
}

template <class Arch, class Act, class Residual>
[[nodiscard]] status rmsnorm(const cpu<Arch>& be, const rmsnorm_args<Act, Residual>& a) noexcept {
  RODIMUS_TRY(rmsnorm_check(a));
  if constexpr (!detail::rmsnorm_cpu_types<Act, Residual>) {
    return rmsnorm(scalar{}, a);
  } else {
    if (falls_back_to_scalar(be, a)) return rmsnorm(scalar{}, a);
    using B = detail::fbatch<Arch>;
    constexpr index_t W = index_t(detail::lanes<Arch>);
    const index_t M = a.x.shape[0], D = a.x.shape[1];
    const index_t Dv = D / W * W;
    parallel_for(be.pool, 0, M, detail::rows_grain(D), [&](index_t lo, index_t hi) {
      for (index_t m = lo; m < hi; ++m) {
        const Act* x = &a.x(m, index_t(0));
        const float* r = a.residual.data ? &a.residual(m, index_t(0)) : nullptr;
        float* ro = a.residual_out.data ? &a.residual_out(m, index_t(0)) : nullptr;
        Act* y = &a.y(m, index_t(0));
        auto stream = [&](index_t d) {
          B s = detail::load_f32<Arch>(x + d);
          if (r) s += B::load_unaligned(r + d);
          return s;
        };
        B ss(0.0f);
        float ss_tail = 0.0f;
        for (index_t d = 0; d < Dv; d += W) {
          const B s = stream(d);
          if (ro) s.store_unaligned(ro + d);
          ss = xsimd::fma(s, s, ss);
        }
        for (index_t d = Dv; d < D; ++d) {
          const float s = load_as<float>(x[d]) + (r ? r[d] : 0.0f);
          if (ro) ro[d] = s;
          ss_tail += s * s;
        }
        const float rstd = 1.0f / std::sqrt((xsimd::hadd(ss) + ss_tail) / float(D) + a.eps);
        const B vr(rstd);
        // With residual_out kept (it may alias residual) s is read back from it.
        for (index_t d = 0; d < Dv; d += W) {
          const B s = ro ? B::load_unaligned(ro + d) : stream(d);
          detail::store_f32<Arch>(y + d, s * vr * B::load_unaligned(a.weight.data + d));
        }
        for (index_t d = Dv; d < D; ++d) {
          const float s = ro ? ro[d] : load_as<float>(x[d]) + (r ? r[d] : 0.0f);
          y[d] = store_as<Act>(s * rstd * a.weight.data[d]);
        }
      }
    });
    return status::success();
  }
}

} // namespace rodimus
