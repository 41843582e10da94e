// Scalar reference of RMSNorm with fused residual add: s rounded to Residual, the norm in double.
#pragma once

#include <cmath>

#include "rodimus/core/dtype.hpp"
#include "rodimus/primitives/rmsnorm.hpp"

namespace rodimus {

template <class Act, class Residual>
[[nodiscard]] status rmsnorm(const scalar&, const rmsnorm_args<Act, Residual>& a) noexcept {
  RODIMUS_TRY(rmsnorm_check(a));
  const index_t M = a.x.shape[0], D = a.x.shape[1];
  auto stream = [&](index_t m, index_t d) -> Residual {
    const Residual x = load_as<Residual>(a.x(m, d));
    return a.residual.data ? Residual(x + a.residual(m, d)) : x;
  };
  for (index_t m = 0; m < M; ++m) {
    double ss = 0.0;
    for (index_t d = 0; d < D; ++d) {
      const double s = double(stream(m, d));
      ss += s * s;
    }
    const double rstd = 1.0 / std::sqrt(ss / double(D) + double(a.eps));
    for (index_t d = 0; d < D; ++d) {
      const Residual s =
          stream(m, d); // read before residual_out (which may alias residual) is written
      a.y(m, d) = store_as<Act>(double(s) * rstd * double(a.weight(d)));
      if (a.residual_out.data) a.residual_out(m, d) = s;
    }
  }
  return status::success();
}

} // namespace rodimus
