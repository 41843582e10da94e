// Linear layer with a block-quantised weight (the quantised weight policy of linear(); formats in
// rodimus/primitives/quant_format.hpp):
//
//   y[m, n] = sum_k x[m, k] * deq(w)[n, k]          y = x W^T, no bias
//
// x: (M, K) Act (f32, bf16 or f16); w: (N, quant_blocks(K)) blocks (q8_0_block or q4_0_block),
// row n holding the K weights of output n, its blocks arranged as `layout` says
// (rodimus/primitives/quant_layout.hpp: in order, or the decode layout made at load); y: (M, N)
// Act. Any K >= 0: w has ceil(K / 32) columns
// of blocks, and when K % 32 != 0 the last block of each row holds K % 32 weights followed by
// padding that the sum never includes (k < K only: x is read up to K, never past it). The scalar
// reference dequantises and accumulates in f64; the CPU kernels accumulate each block's 32
// products in f32 (a partial last block against x padded with zeros) and scale the block sum by
// its d.
#pragma once

#include "rodimus/core/backend.hpp"
#include "rodimus/core/status.hpp"
#include "rodimus/core/tensor_view.hpp"
#include "rodimus/primitives/quant_format.hpp"
#include "rodimus/primitives/quant_layout.hpp"

namespace rodimus {

template <class Act, class Block> struct quant_linear_args {
  tensor_view<const Act, 2> x;                // (M, K)
  tensor_view<const Block, 2> w;              // (N, quant_blocks(K)) blocks
  tensor_view<Act, 2> y;                      // (M, N) written
  quant_layout layout = quant_layout::blocks; // of each row of w
};

/// Validation shared by every backend.
template <class Act, class Block>
[[nodiscard]] status quant_linear_check(const quant_linear_args<Act, Block>& a) noexcept {
  RODIMUS_REQUIRE(a.x.data || a.x.numel() == 0, null_pointer, "x");
  RODIMUS_REQUIRE(a.w.data || a.w.numel() == 0, null_pointer, "w");
  RODIMUS_REQUIRE(a.y.data || a.y.numel() == 0, null_pointer, "y");
  RODIMUS_REQUIRE(a.x.shape[0] >= 0 && a.x.shape[1] >= 0, bad_shape, "x");
  RODIMUS_REQUIRE(a.w.shape[0] >= 0 && a.w.shape[1] == quant_blocks(a.x.shape[1]), bad_shape, "w");
  RODIMUS_REQUIRE(a.y.shape[0] == a.x.shape[0] && a.y.shape[1] == a.w.shape[0], bad_shape, "y");
  // The decode layout depends on each row's whole block count: a view of it must cover whole
  // rows (rodimus/primitives/quant_layout.hpp). What can be seen of a view that does not: rows
  // that overlap (a row stride below the blocks per row). A column slice with the full rows'
  // stride cannot be told from a padded row stride: callers take whole rows (quant_rows_view).
  RODIMUS_REQUIRE(a.layout == quant_layout::blocks || a.w.numel() == 0 ||
                      (a.w.stride[1] == 1 && (a.w.shape[0] == 1 || a.w.stride[0] >= a.w.shape[1])),
                  bad_argument,
                  "w (the decode layout needs whole rows, each row's blocks contiguous)");
  return status::success();
}

/// The arguments of y = x deq(w)^T for weights held as a quant_rows_view: the rows' layout comes
/// with them (built by hand, `layout` defaults to blocks, which reads the decode layout wrongly).
template <class Act, class Block>
quant_linear_args<Act, Block> quant_linear_args_for(tensor_view<const Act, 2> x,
                                                    const quant_rows_view<Block>& w,
                                                    tensor_view<Act, 2> y) noexcept {
  return {x, w.blocks, y, w.layout};
}

} // namespace rodimus
