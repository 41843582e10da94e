// Scalar reference of SwiGLU: double, rounded once to Act.
#pragma once

#include "rodimus/core/dtype.hpp"
#include "rodimus/primitives/elementwise.hpp"
#include "rodimus/primitives/swiglu.hpp"

namespace rodimus {

template <class Act>
[[nodiscard]] status swiglu(const scalar&, const swiglu_args<Act>& a) noexcept {
  RODIMUS_TRY(swiglu_check(a));
  const index_t M = a.fc.shape[0], F = a.fc.shape[1] / 2;
  for (index_t m = 0; m < M; ++m)
    for (index_t f = 0; f < F; ++f)
      a.y(m, f) =
          store_as<Act>(silu(load_as<double>(a.fc(m, F + f))) * load_as<double>(a.fc(m, f)));
  return status::success();
}

} // namespace rodimus
