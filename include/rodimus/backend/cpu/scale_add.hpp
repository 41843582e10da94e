// The scaled add (the Rodimus mixer's internal skip) on the CPU backend (math and shapes in
// rodimus/primitives/scale_add.hpp), in f32:
//
//   o[m, e] += c[m, e] * w[e]            one fused multiply-add per element
//
// Threads split the rows; each row is vectorised with xsimd. Inner strides other than 1 run the
// scalar reference.
#pragma once

#include <cmath>

#include "rodimus/backend/cpu/cpu.hpp"
#include "rodimus/backend/cpu/simd.hpp"
#include "rodimus/backend/scalar/scale_add.hpp" // the fallback for what this backend does not cover
#include "rodimus/primitives/scale_add.hpp"

namespace rodimus {

/// Whether scale_add() on cpu<Arch> runs the scalar reference for `a` instead of its own kernel (an
/// inner stride other than 1). Benchmarks check it, so that they never time the fallback
/// (docs/ARCHITECTURE.md "Fallbacks").
template <class Arch>
[[nodiscard]] bool falls_back_to_scalar(const cpu<Arch>&, const scale_add_args& a) noexcept {
  return a.o.stride[1] != 1 || a.c.stride[1] != 1 || a.w.stride[0] != 1;
}

template <class Arch>
[[nodiscard]] status scale_add(const cpu<Arch>& be, const scale_add_args& a) noexcept {
  RODIMUS_TRY(scale_add_check(a));
  if (falls_back_to_scalar(be, a)) return scale_add(scalar{}, a);
  using B = detail::fbatch<Arch>;
  constexpr index_t W = index_t(detail::lanes<Arch>);
  const index_t M = a.o.shape[0], E = a.o.shape[1], Ev = E / W * W;
  parallel_for(be.pool, 0, M, detail::rows_grain(E), [&](index_t lo, index_t hi) {
    for (index_t m = lo; m < hi; ++m) {
      float* o = &a.o(m, index_t(0));
      const float* c = &a.c(m, index_t(0));
      const float* w = a.w.data;
      for (index_t e = 0; e < Ev; e += W)
        xsimd::fma(B::load_unaligned(c + e), B::load_unaligned(w + e), B::load_unaligned(o + e))
            .store_unaligned(o + e);
      for (index_t e = Ev; e < E; ++e)
        o[e] = std::fma(c[e], w[e], o[e]);
    }
  });
  return status::success();
}

} // namespace rodimus
