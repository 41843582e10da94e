// Scalar reference of linear(): plain loops, f64 accumulation. Needs no workspace (the workspace
// argument exists so every backend has the same entry points).
#pragma once

#include <cstddef>

#include "rodimus/core/dtype.hpp"
#include "rodimus/core/workspace.hpp"
#include "rodimus/primitives/linear.hpp"

namespace rodimus {

template <class Act, class Weight>
constexpr std::size_t linear_workspace_bytes(const scalar&,
                                             const linear_args<Act, Weight>&) noexcept {
  return 0;
}

template <class Act, class Weight>
[[nodiscard]] status linear(const scalar&, const linear_args<Act, Weight>& a,
                            workspace = {}) noexcept {
  RODIMUS_TRY(linear_check(a));
  const index_t M = a.x.shape[0], K = a.x.shape[1], N = a.w.shape[0];
  for (index_t m = 0; m < M; ++m)
    for (index_t n = 0; n < N; ++n) {
      double acc = 0.0;
      for (index_t k = 0; k < K; ++k)
        acc += load_as<double>(a.x(m, k)) * load_as<double>(a.w(n, k));
      a.y(m, n) = store_as<Act>(acc);
    }
  return status::success();
}

} // namespace rodimus
