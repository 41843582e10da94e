// The cuBLAS operand of rmsnorm_linear and swiglu_linear on CUDA (rows past the GEMV, 16-bit
// weights, f32 activations): the input prologue (linear.cuh, linear_input_prologue: x + residual
// or x * silu(gate), then RMSNorm or not) applied row by row and written straight as the parts
// the GEMM multiplies, hi = W(n) and lo = W(n - hi) in the weight's dtype W (lo only in
// cuda_matmul::exact), the stream s = x + residual to sum_out where asked.
//
// Composed, the same call writes the f32 rows n, reads them back and splits them
// (linear_split_kernel): per element of n, 4 + 4 bytes more traffic and one launch more. At a
// prefill of 8 x 2048 tokens of the 1.6B model that is about 1.4 GB a layer over the three norms,
// the gated norm and the SwiGLU.
//
//   linear_operand_fits(x, np)       whether the rows allow it (16-byte aligned f32 rows, x with
//                                    unit inner stride, K % 4 == 0; np carries row strides only, so
//                                    its callers check the other views' inner strides)
//   linear_operand(on, x, np, hi, lo)   the launch; hi, lo (M, K) dense, lo may be nullptr
//   linear_operand_path<Sm>(product, np)   whether a call (its linear part `product`, x the
//                                    prologue's input) runs so: linear takes it to cuBLAS with a
//                                    split x (gemm_convert) and linear_operand_fits
//   linear_operand_gemm(be, product, np, ws)   the kernel into the parts from ws (what
//                                    linear_workspace_bytes(be, product) reports), then the GEMMs
//
// Kernel: a CTA of 256 threads per row (rows looped beyond the grid), thread i takes the 4-value
// pieces i, i + 256, ... of its row. Rows of at most 256 x kLinearOperandPieces pieces (4096
// values: the model's widths) are loaded once into registers, reduced (row_groups::sum, a fixed
// tree), and written; longer rows run the prologue twice (the sum of squares, then the parts).
// The arithmetic is the GEMV prologue's (linear_prologue_apply) with rstd = 1 / sqrtf(...) as
// rmsnorm computes it, so the parts are n = s * weight * rstd rounded to W, within one f32
// rounding of the composed path's n.
#pragma once

#include <cstdint>

#include "rodimus/backend/cuda/launch.cuh"
#include "rodimus/backend/cuda/linear.cuh"
#include "rodimus/backend/cuda/reduce.cuh"
#include "rodimus/core/tensor_view.hpp"

namespace rodimus::detail {

/// 4-value pieces a thread keeps in registers (a row of up to 256 x 4 x 4 = 4096 values in one
/// pass).
constexpr int kLinearOperandPieces = 4;

/// The parts of 4 values: hi = W(v), lo = W(v - hi) (8-byte stores).
template <class W>
__device__ __forceinline__ void linear_operand_store(const float (&v)[4], W* hi, W* lo) {
  static_assert(sizeof(W) == 2, "16-bit parts: four of them are one 8-byte store");
  W h[4], l[4];
#pragma unroll
  for (int e = 0; e < 4; ++e) {
    h[e] = linear_from_f32<W>(v[e]);
    l[e] = linear_from_f32<W>(v[e] - linear_to_f32(h[e]));
  }
  *reinterpret_cast<uint2*>(hi) = *reinterpret_cast<const uint2*>(h);
  if (lo) *reinterpret_cast<uint2*>(lo) = *reinterpret_cast<const uint2*>(l);
}

template <class W>
__global__ void __launch_bounds__(row_policy::cta_rows::threads)
    linear_operand_kernel(const tensor_view<const float, 2> x, const linear_input_prologue np,
                          W* __restrict__ hi, W* __restrict__ lo) {
  begin_after_prior_kernels();
  using Rows = row_policy::cta_rows;
  constexpr int P = kLinearOperandPieces, TPR = Rows::threads_per_row;
  __shared__ float scratch[32];
  const index_t M = x.shape[0], K = x.shape[1], quads = K / 4;
  const index_t lane = Rows::lane();
  const bool norm = np.weight != nullptr;
  // The prologue of piece c of row m: v becomes s * weight (or s), ss gains s^2.
  auto prologue = [&](index_t m, index_t c, float(&v)[4], float& ss, bool write) {
    linear_load_vec<float, 4, false>(x.data + m * x.stride[0] + 4 * c, v);
    linear_prologue_item<4>(np, m, 4 * c, v, ss, write);
  };
  for (index_t m = Rows::first_row(); m < M; m += Rows::row_stride()) {
    W* const hrow = hi + m * K;
    W* const lrow = lo ? lo + m * K : nullptr;
    float ss = 0.0f;
    if (quads <= index_t(P) * TPR) { // one pass: the row's pieces in registers
      float v[P][4];
#pragma unroll
      for (int p = 0; p < P; ++p) {
        const index_t c = lane + index_t(p) * TPR;
        if (c < quads) prologue(m, c, v[p], ss, np.sum_out != nullptr);
      }
      const float rstd = norm ? 1.0f / sqrtf(Rows::sum(ss, scratch) / float(K) + np.eps) : 1.0f;
#pragma unroll
      for (int p = 0; p < P; ++p) {
        const index_t c = lane + index_t(p) * TPR;
        if (c >= quads) continue;
#pragma unroll
        for (int e = 0; e < 4; ++e)
          v[p][e] *= rstd;
        linear_operand_store<W>(v[p], hrow + 4 * c, lrow ? lrow + 4 * c : nullptr);
      }
      continue;
    }
    // Two passes: the sum of squares (and sum_out), then the prologue again and the parts.
    float rstd = 1.0f;
    if (norm || np.sum_out) {
      for (index_t c = lane; c < quads; c += TPR) {
        float v[4];
        prologue(m, c, v, ss, np.sum_out != nullptr);
      }
      if (norm) rstd = 1.0f / sqrtf(Rows::sum(ss, scratch) / float(K) + np.eps);
    }
    for (index_t c = lane; c < quads; c += TPR) {
      float v[4], unused = 0.0f;
      prologue(m, c, v, unused, false);
#pragma unroll
      for (int e = 0; e < 4; ++e)
        v[e] *= rstd;
      linear_operand_store<W>(v, hrow + 4 * c, lrow ? lrow + 4 * c : nullptr);
    }
  }
}

/// Whether linear_operand takes x and np's rows: x with unit inner stride, the rows of x and of
/// the residual, gate and sum_out np names, and the norm weight, 16-byte aligned; K % 4 == 0.
/// (np has no inner strides: the callers check that those views have unit ones.)
inline bool linear_operand_fits(const tensor_view<const float, 2>& x,
                                const linear_input_prologue& np) noexcept {
  const index_t K = x.shape[1];
  auto aligned = [](const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 16 == 0; };
  auto rows_ok = [&](const float* p, index_t stride) {
    return !p || (aligned(p) && stride % 4 == 0);
  };
  return K % 4 == 0 && x.stride[1] == 1 && rows_ok(x.data, x.stride[0]) &&
         rows_ok(np.residual, np.residual_stride) && rows_ok(np.gate, np.gate_stride) &&
         rows_ok(np.sum_out, np.sum_stride) && (!np.weight || aligned(np.weight));
}

/// hi, lo (M, K) dense <- the prologue of x's rows (linear_operand_fits must hold); lo nullptr:
/// hi only.
template <class W>
status linear_operand(const launch_target& on, const tensor_view<const float, 2>& x,
                      const linear_input_prologue& np, W* hi, W* lo) noexcept {
  using Rows = row_policy::cta_rows;
  if (x.shape[0] == 0) return status::success();
  return cuda_status(
      launch(on, linear_operand_kernel<W>, Rows::grid(x.shape[0]), Rows::threads, 0, x, np, hi, lo),
      "linear_operand_kernel");
}

/// The path rmsnorm_linear and swiglu_linear take on CUDA, chosen once for the call and for its
/// workspace query: the GEMV with the prologue staged, the operand kernel and cuBLAS, or the two
/// primitives one after the other.
enum class fused_input_path { gemv, operand, composed };

/// Whether a call whose linear part is `product` (x: the prologue's input rows) runs as
/// linear_operand and cuBLAS on the parts (16-bit weights only).
template <int Sm, class Weight>
bool linear_operand_path(const linear_args<float, Weight>& product,
                         const linear_input_prologue& np) noexcept {
  if constexpr (sizeof(Weight) != 2) {
    (void)product;
    (void)np;
    return false;
  } else {
    return linear_select_path<Sm>(product) == linear_cuda_path::gemm_convert &&
           linear_operand_fits(product.x, np);
  }
}

/// The parts of product.x through np into ws, then y = w . hi (+ w . lo).
template <int Sm, class Weight>
status linear_operand_gemm(const cuda<Sm>& be, const linear_args<float, Weight>& product,
                           const linear_input_prologue& np, workspace ws) noexcept {
  if constexpr (sizeof(Weight) != 2) {
    (void)be;
    (void)product;
    (void)np;
    (void)ws;
    return status::fail(status_code::unsupported, "w"); // never selected (linear_operand_path)
  } else {
    RODIMUS_TRY(linear_cublas_ready(be));
    const index_t M = product.x.shape[0], K = product.x.shape[1];
    const auto parts = linear_take_parts<Sm, Weight>(be, M, K, product.w.shape[0], ws);
    RODIMUS_REQUIRE(parts.hi != nullptr, workspace_too_small, "ws");
    RODIMUS_TRY(linear_operand(launch_on(be), product.x, np, parts.hi, parts.lo));
    return linear_gemm_parts(be, product, parts.hi, cuda_data_type<Weight>(), K, parts.lo,
                             parts.sums);
  }
}

} // namespace rodimus::detail
