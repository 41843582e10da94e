// Scalar reference of quant_linear(): every weight dequantised (exact in f32), products and sums
// in f64 over k < K (a partial last block's padding is never read), one rounding to the output
// type; a row in the decode layout is read block by block as the block it was made from
// (quant_rows_view::block), so both layouts give the same result. No workspace.
#pragma once

#include <algorithm>
#include <cstddef>

#include "rodimus/core/dtype.hpp"
#include "rodimus/core/workspace.hpp"
#include "rodimus/primitives/quant_linear.hpp"

namespace rodimus {

template <class Act, class Block>
constexpr std::size_t quant_linear_workspace_bytes(const scalar&,
                                                   const quant_linear_args<Act, Block>&) noexcept {
  return 0;
}

template <class Act, class Block>
[[nodiscard]] status quant_linear(const scalar&, const quant_linear_args<Act, Block>& a,
                                  workspace = {}) noexcept {
  RODIMUS_TRY(quant_linear_check(a));
  const index_t M = a.x.shape[0], K = a.x.shape[1], N = a.w.shape[0], nb = a.w.shape[1];
  const quant_rows_view<Block> rows{a.w, a.layout}; // reads either layout as blocks
  for (index_t m = 0; m < M; ++m)
    for (index_t n = 0; n < N; ++n) {
      double acc = 0.0;
      for (index_t b = 0; b < nb; ++b) {
        const Block w = rows.block(n, b);
        for (index_t k = b * kQuantGroup; k < std::min(K, (b + 1) * kQuantGroup); ++k)
          acc += load_as<double>(a.x(m, k)) * double(dequantise(w, int(k % kQuantGroup)));
      }
      a.y(m, n) = store_as<Act>(acc);
    }
  return status::success();
}

} // namespace rodimus
