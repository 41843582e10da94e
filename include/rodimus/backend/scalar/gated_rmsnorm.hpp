// Scalar reference of the gated RMSNorm: everything in double, y rounded once to Act.
#pragma once

#include <cmath>

#include "rodimus/core/dtype.hpp"
#include "rodimus/primitives/elementwise.hpp"
#include "rodimus/primitives/gated_rmsnorm.hpp"

namespace rodimus {

template <class Act>
[[nodiscard]] status gated_rmsnorm(const scalar&, const gated_rmsnorm_args<Act>& a) noexcept {
  RODIMUS_TRY(gated_rmsnorm_check(a));
  const index_t M = a.x.shape[0], E = a.x.shape[1];
  auto z = [&](index_t m, index_t e) {
    return load_as<double>(a.x(m, e)) * silu(load_as<double>(a.gate(m, e)));
  };
  for (index_t m = 0; m < M; ++m) {
    double ss = 0.0;
    for (index_t e = 0; e < E; ++e) {
      const double v = z(m, e);
      ss += v * v;
    }
    const double rstd = 1.0 / std::sqrt(ss / double(E) + double(a.eps));
    for (index_t e = 0; e < E; ++e)
      a.y(m, e) = store_as<Act>(z(m, e) * rstd * double(a.weight(e)));
  }
  return status::success();
}

} // namespace rodimus
