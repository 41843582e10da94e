// Pieces shared by the blocks (mixer, SW-SKA layer, FFN, Rodimus / Rodimus+ blocks):
//   - normed_input / linear_normed: a sub-block's input, either normed rows or the pending RMSNorm
//     that the backend fuses into each projection reading it (rmsnorm_linear);
//   - linear_weight / embedding_weight: y = x . W^T and the embedding gather with the weight in its
//     stored dtype (f32, bf16, f16) or, for linear_weight, block-quantised (q8_0, q4_0), one
//     dispatch point each;
//   - batch_layout: which tokens belong to which sequence and where each sequence's state lives;
//   - block_arena: activations carved out of the caller's workspace (blocks never allocate).
//
// Activations are f32 in the blocks (the golden fixtures are compared computing in f32, also for
// 16-bit weights); the recurrent states are f32.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "rodimus/core/dtype.hpp"
#include "rodimus/core/status.hpp"
#include "rodimus/core/tensor_view.hpp"
#include "rodimus/core/workspace.hpp"
#include "rodimus/model/weight_views.hpp"
#include "rodimus/primitives/embedding.hpp"
#include "rodimus/primitives/linear.hpp"
#include "rodimus/primitives/quant_linear.hpp"
#include "rodimus/primitives/rmsnorm_linear.hpp"
#include "rodimus/primitives/swiglu_linear.hpp"

namespace rodimus {

namespace detail {
template <class Backend, class = void> struct has_quant_linear : std::false_type {};
template <class Backend>
struct has_quant_linear<Backend, std::void_t<decltype(quant_linear(
                                     std::declval<const Backend&>(),
                                     std::declval<const quant_linear_args<float, q8_0_block>&>()))>>
    : std::true_type {};
/// f(T{}) with T the element type w is stored in (float, bf16, f16): the one switch from a
/// weight's runtime dtype to the primitives' template argument. Quantised weights and other dtypes
/// give `unsupported`, naming format_name or dtype_name.
template <class F>
status visit_stored_dtype(const weight_matrix& w, const char* format_name, const char* dtype_name,
                          F&& f) noexcept {
  if (w.quantised()) return status::fail(status_code::unsupported, format_name);
  switch (w.type) {
  case dtype::f32: return f(float{});
  case dtype::bf16: return f(bf16{});
  case dtype::f16: return f(f16{});
  default: break;
  }
  return status::fail(status_code::unsupported, dtype_name);
}
} // namespace detail

/// y (M, N) = x (M, K) . w^T, w (N, K) in its stored dtype or block-quantised (on the backends
/// that have quant_linear; elsewhere `unsupported`, "weight format"); `ws` for the backends that
/// need one (linear_weight_workspace_bytes).
template <class Backend>
[[nodiscard]] status linear_weight(const Backend& be, tensor_view<const float, 2> x,
                                   const weight_matrix& w, tensor_view<float, 2> y,
                                   workspace ws = {}) noexcept {
  if (w.quantised()) {
    if constexpr (detail::has_quant_linear<Backend>::value) {
      if (w.format == weight_format::q8_0)
        return quant_linear(be, quant_linear_args_for(x, w.quant_rows<q8_0_block>(), y));
      if (w.format == weight_format::q4_0)
        return quant_linear(be, quant_linear_args_for(x, w.quant_rows<q4_0_block>(), y));
    }
    return status::fail(status_code::unsupported, "weight format");
  }
  return detail::visit_stored_dtype(w, "weight format", "weight dtype", [&](auto weight) {
    using W = decltype(weight); // w_constant: model weights are written once, at load
    return linear(be, linear_args<float, W>{x, w.view<W>(), y, true}, ws);
  });
}

/// A sub-block's input: the normed rows `a`, or (pending) the RMSNorm that produces them, which
/// each projection reading the input applies on its way in (rmsnorm_linear, on the backends where
/// linear_fuses_input: one kernel instead of a norm kernel and a GEMV, at batch-1 decode the
/// norm is a few thousand values against megabytes of weights). The first projection writes the
/// stream (sum_out); the others leave it.
struct normed_input {
  tensor_view<const float, 2> a; // (M, D) normed rows (not pending)
  bool pending = false;
  tensor_view<const float, 2> x, residual, gate; // the norm's inputs (rmsnorm_linear_args)
  tensor_view<float, 2> sum_out;
  tensor_view<const float, 1> weight;
  float eps = 1e-5f;

  normed_input() = default;
  normed_input(tensor_view<const float, 2> rows) noexcept : a(rows) {} // NOLINT: implicit
  index_t rows() const noexcept { return pending ? x.shape[0] : a.shape[0]; }
};

/// y = in . w^T: linear_weight on normed rows, rmsnorm_linear on a pending norm (then the stream
/// is written; later calls on the same input do not write it again).
template <class Backend>
[[nodiscard]] status linear_normed(const Backend& be, normed_input& in, const weight_matrix& w,
                                   tensor_view<float, 2> y, workspace ws = {}) noexcept {
  if (!in.pending) return linear_weight(be, in.a, w, y, ws);
  return detail::visit_stored_dtype(w, "weight format", "weight dtype", [&](auto weight) {
    using W = decltype(weight);
    rmsnorm_linear_args<W> a;
    a.x = in.x;
    a.residual = in.residual;
    a.gate = in.gate;
    a.sum_out = in.sum_out;
    a.norm_weight = in.weight;
    a.eps = in.eps;
    a.w = w.view<W>();
    a.y = y;
    a.w_constant = true; // model weights
    const status st = rmsnorm_linear(be, a, ws);
    in.sum_out = {};
    return st;
  });
}

/// out = swiglu(fc) . w^T with w in its stored dtype (swiglu_linear; not for quantised weights).
template <class Backend>
[[nodiscard]] status swiglu_linear_weight(const Backend& be, tensor_view<const float, 2> fc,
                                          const weight_matrix& w, tensor_view<float, 2> out,
                                          workspace ws = {}) noexcept {
  return detail::visit_stored_dtype(w, "weight format", "weight dtype", [&](auto weight) {
    using W = decltype(weight); // w_constant: model weights
    return swiglu_linear(be, swiglu_linear_args<W>{fc, w.view<W>(), out, true}, ws);
  });
}

/// The most workspace linear_weight needs for M rows of at most K inputs and at most N outputs,
/// whatever the weight's dtype (the shapes alone decide it; the views below are never read).
template <class Backend>
std::size_t linear_weight_workspace_bytes(const Backend& be, index_t M, index_t K,
                                          index_t N) noexcept {
  alignas(16) static const unsigned char dummy[16] = {};
  const float* x = reinterpret_cast<const float*>(dummy);
  float* y = const_cast<float*>(x);
  std::size_t most = 0;
  auto consider = [&](auto weight) {
    using W = decltype(weight);
    linear_args<float, W> a{make_view(x, M, K), make_view(reinterpret_cast<const W*>(dummy), N, K),
                            make_view(y, M, N)};
    const std::size_t b = linear_workspace_bytes(be, a);
    most = std::max(most, b);
  };
  consider(float{});
  consider(bf16{});
  consider(f16{});
  return most;
}

/// out (M, D) = table[ids[m], :] * scale, the table in its stored dtype; ids (M) in the backend's
/// memory.
template <class Backend>
[[nodiscard]] status embedding_weight(const Backend& be, const weight_matrix& table,
                                      const std::int64_t* ids, index_t M, float scale,
                                      tensor_view<float, 2> out) noexcept {
  return detail::visit_stored_dtype(table, "embedding format", "embedding dtype", [&](auto t) {
    using T = decltype(t);
    return embedding(be, embedding_args<T>{table.view<T>(), ids, M, out, scale});
  });
}

/// `a` and `b` as one matrix of a.rows + b.rows rows when b's rows follow a's directly in memory
/// (same dtype, format, layout and columns; backend_weights and most checkpoints place a layer's
/// projections back to back), else a matrix with data == nullptr. The mixer uses it to read two
/// projections of the same input in one linear call: one launch (and, in prefill, one conversion
/// and one read of the input) instead of two.
inline weight_matrix stacked_rows(const weight_matrix& a, const weight_matrix& b) noexcept {
  weight_matrix r;
  if (a.data != nullptr && b.data != nullptr && a.type == b.type && a.format == b.format &&
      a.layout == b.layout && a.cols == b.cols &&
      static_cast<const unsigned char*>(a.data) + a.bytes() == b.data) {
    r = a;
    r.rows = a.rows + b.rows;
  }
  return r;
}

/// The sequences of one block call.
///   prefill (decode == false): M tokens packed back to back, sequence n = tokens
///     [cu_seqlens[n], cu_seqlens[n+1]); it continues after position[n] earlier tokens.
///   decode: one token per sequence, M = num_seqs rows; row n is sequence n.
/// slot[n] is the pool row holding sequence n's state (conv, GLA, attention ring); slots are
/// distinct, or -1 for a padding sequence whose state every primitive leaves alone
/// (primitives/slots.hpp).
struct batch_layout {
  bool decode = false;
  index_t tokens = 0;                       // M
  index_t num_seqs = 0;                     // N
  const std::int64_t* cu_seqlens = nullptr; // (N + 1), prefill only
  const std::int32_t* slot = nullptr;       // (N)
  const std::int64_t* position = nullptr;   // (N) tokens seen before this call
  bool fresh = false;                       // every sequence starts at position 0 (prefill)
};

/// f32 buffers carved out of a workspace; `ok` turns false when it runs out.
struct block_arena {
  workspace& ws;
  bool ok = true;
  float* floats(index_t n) noexcept {
    float* p = ws.take<float>(std::size_t(n > 0 ? n : 1));
    ok = ok && p != nullptr;
    return p;
  }
  /// What is left, for a primitive's own temporaries.
  workspace rest() const noexcept {
    workspace r;
    if (!ws.base) return r;
    const std::uintptr_t start = reinterpret_cast<std::uintptr_t>(ws.base) + ws.used;
    r.base = reinterpret_cast<void*>(start);
    r.bytes = ws.bytes > ws.used ? ws.bytes - ws.used : 0;
    return r;
  }
  static constexpr std::size_t bytes(index_t n) noexcept {
    return workspace::bytes_for<float>(std::size_t(n > 0 ? n : 1)) + workspace::alignment;
  }
};

} // namespace rodimus
