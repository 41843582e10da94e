// The Rodimus mixer's channel gate on the CPU backend (math and shapes in
// rodimus/primitives/channel_gate.hpp), in f32:
//
//   u[m, e] = sigmoid(u[m, e] + bias[e]) * x[m, e]
//
// Threads split the rows; each row is vectorised with xsimd (exp from xsimd, a few ulp). Inner
// strides other than 1 run the scalar reference.
#pragma once

#include "rodimus/backend/cpu/cpu.hpp"
#include "rodimus/backend/cpu/simd.hpp"
#include "rodimus/backend/scalar/channel_gate.hpp" // the fallback for what this backend does not cover
#include "rodimus/primitives/channel_gate.hpp"
#include "rodimus/primitives/elementwise.hpp"

namespace rodimus {

/// Whether channel_gate() on cpu<Arch> runs the scalar reference for `a` instead of its own kernel
/// (an inner stride other than 1). Benchmarks check it, so that they never time the fallback
/// (docs/ARCHITECTURE.md "Fallbacks").
template <class Arch>
[[nodiscard]] bool falls_back_to_scalar(const cpu<Arch>&, const channel_gate_args& a) noexcept {
  return a.u.stride[1] != 1 || a.x.stride[1] != 1 || a.bias.stride[0] != 1;
}

template <class Arch>
[[nodiscard]] status channel_gate(const cpu<Arch>& be, const channel_gate_args& a) noexcept {
  RODIMUS_TRY(channel_gate_check(a));
  if (falls_back_to_scalar(be, a)) return channel_gate(scalar{}, a);
  using B = detail::fbatch<Arch>;
  constexpr index_t W = index_t(detail::lanes<Arch>);
  const index_t M = a.u.shape[0], E = a.u.shape[1], Ev = E / W * W;
  parallel_for(be.pool, 0, M, detail::rows_grain(E), [&](index_t lo, index_t hi) {
    for (index_t m = lo; m < hi; ++m) {
      float* u = &a.u(m, index_t(0));
      const float* x = &a.x(m, index_t(0));
      const float* bias = a.bias.data;
      for (index_t e = 0; e < Ev; e += W) {
        channel_gate_value(B::load_unaligned(u + e), B::load_unaligned(bias + e),
                           B::load_unaligned(x + e))
            .store_unaligned(u + e);
      }
      for (index_t e = Ev; e < E; ++e)
        u[e] = channel_gate_value(u[e], bias[e], x[e]);
    }
  });
  return status::success();
}

} // namespace rodimus
