// Scalar reference of the channel gate: plain loops in double, rounded once to f32.
#pragma once

#include "rodimus/primitives/channel_gate.hpp"
#include "rodimus/primitives/elementwise.hpp"

namespace rodimus {

[[nodiscard]] inline status channel_gate(const scalar&, const channel_gate_args& a) noexcept {
  RODIMUS_TRY(channel_gate_check(a));
  const index_t M = a.u.shape[0], E = a.u.shape[1];
  for (index_t m = 0; m < M; ++m)
    for (index_t e = 0; e < E; ++e)
      a.u(m, e) =
          float(channel_gate_value(double(a.u(m, e)), double(a.bias(e)), double(a.x(m, e))));
  return status::success();
}

} // namespace rodimus
