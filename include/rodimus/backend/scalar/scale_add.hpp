// Scalar reference of the scaled add: plain loops in double, rounded once to f32.
#pragma once

#include "rodimus/primitives/scale_add.hpp"

namespace rodimus {

[[nodiscard]] inline status scale_add(const scalar&, const scale_add_args& a) noexcept {
  RODIMUS_TRY(scale_add_check(a));
  const index_t M = a.o.shape[0], E = a.o.shape[1];
  for (index_t m = 0; m < M; ++m)
    for (index_t e = 0; e < E; ++e)
      a.o(m, e) = float(double(a.o(m, e)) + double(a.c(m, e)) * double(a.w(e)));
  return status::success();
}

} // namespace rodimus
