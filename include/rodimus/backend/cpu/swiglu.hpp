// SwiGLU on the CPU backend (math and shapes in rodimus/primitives/swiglu.hpp):
//
//   y[m, f] = Act( silu(fc[m, F + f]) * fc[m, f] )      in f32
//
// Threads split the rows; inner strides other than 1 run the scalar reference.
#pragma once

#include "rodimus/backend/cpu/cpu.hpp"
#include "rodimus/backend/cpu/simd.hpp"
#include "rodimus/backend/scalar/swiglu.hpp" // the fallback for what this backend does not cover
#include "rodimus/primitives/elementwise.hpp"
#include "rodimus/primitives/swiglu.hpp"

namespace rodimus {

/// Whether swiglu() on cpu<Arch> runs the scalar reference for `a` instead of its own kernel (Act
/// other than f32 / bf16 / f16, an inner stride other than 1). Benchmarks check it, so that they
/// never time the fallback (docs/ARCHITECTURE.md "Fallbacks").
template <class Arch, class Act>
[[nodiscard]] bool falls_back_to_scalar(const cpu<Arch>&, const swiglu_args<Act>& a) noexcept {
  if constexpr (!detail::cpu_storage_type<Act>)
    return true;
  else
    return a.fc.stride[1] != 1 || a.y.stride[1] != 1;
}

template <class Arch, class Act>
[[nodiscard]] status swiglu(const cpu<Arch>& be, const swiglu_args<Act>& a) noexcept {
  RODIMUS_TRY(swiglu_check(a));
  if constexpr (!detail::cpu_storage_type<Act>) {
    return swiglu(scalar{}, a);
  } else {
    if (falls_back_to_scalar(be, a)) return swiglu(scalar{}, a);
    constexpr index_t W = index_t(detail::lanes<Arch>);
    const index_t M = a.fc.shape[0], F = a.fc.shape[1] / 2;
    const index_t Fv = F / W * W;
    parallel_for(be.pool, 0, M, detail::rows_grain(F), [&](index_t lo, index_t hi) {
      for (index_t m = lo; m < hi; ++m) {
        const Act* v = &a.fc(m, index_t(0));
        const Act* g = v + F;
        Act* y = &a.y(m, index_t(0));
        for (index_t f = 0; f < Fv; f += W)
          detail::store_f32<Arch>(y + f, silu(detail::load_f32<Arch>(g + f)) *
                                             detail::load_f32<Arch>(v + f));
        for (index_t f = Fv; f < F; ++f)
          y[f] = store_as<Act>(silu(load_as<float>(g[f])) * load_as<float>(v[f]));
      }
    });
    return status::success();
  }
}

} // namespace rodimus
