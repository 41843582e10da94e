// One decode step of the Rodimus mixer's memory for a batch of rows (docs/MODEL.md §2.3 steps 6-11,
// the decode form §6.3): everything between the projections and the gated RMSNorm, in f32. Per row
// m with s = slot[m] (s = m without a slot array), E = d_inner, N = mem_size:
//
//   u_pre  = u_preact[m]   or (low-rank form)   h[m] . ch_gate_up^T    linear         (E)
//   u      = sigmoid(u_pre + ch_gate_bias) * x[m]                      channel_gate   (E)
//   k_hat, log_decay = DDTS(psi[m] + mem_gate_bias, k[m], eps)         ddts           (N) each
//   S      = diag(exp(log_decay)) state[s] + k_hat^T u                 gla_decode     (N, E)
//   o_gla  = scale * (r[m] S);  state[s] = S
//   o[m]   = o_gla + c[m] * residual_weight                            scale_add      (E)
//
// It is, by definition, the composition of those primitives (their headers give each formula;
// the scalar reference and the CPU backend call them one after the other), except that a padding
// row is skipped as a whole: slot -1 leaves o[m] and the pool as they were (primitives/slots.hpp),
// where the composition's scale_add would still add c * w to its o row.
//
// The channel gate's pre-activation comes in one of two forms, exactly one given (a view is given
// when its data or any of its extents is non-zero; a default view is not):
//   - u_preact (M, E) f32: x . W0^T . W1^T computed by the caller;
//   - low-rank: h (M, R) f32 = x . W0^T and the up-projection ch_gate_up (E, R) = W1 in its stored
//     dtype UpWeight (float, bf16 or f16: mixer_decode_args<UpWeight>), so that u_pre[m, e] =
//     sum_r h[m, r] * ch_gate_up[e, r], the linear primitive's definition (primitives/linear.hpp:
//     f64 accumulation in the scalar reference, f32 elsewhere). CUDA computes it inside its one
//     kernel (one launch fewer per layer at batch-1 decode than a GEMV before it).
// Neither is bad_argument "u_preact", both bad_argument "h". mixer_decode_args<> (UpWeight =
// float) is the u_preact form's type (`mixer_decode_args a;` deduces it); every argument but
// ch_gate_up lives in the base mixer_decode_common_args, so mixer_decode_with_up(a, w) gives the
// same arguments with a weight of another dtype.
//
// Shapes (all f32 but ch_gate_up): x, u_preact, c, o (M, E); h (M, R), R >= 1; ch_gate_up (E, R);
// r, k (M, N); psi (M, 2N) [selection | temperature]; ch_gate_bias, residual_weight (E);
// mem_gate_bias (2N) or data == nullptr (no bias); state (P, 1, N, E), one head, updated in
// place; slot (M) int32 or nullptr (then P >= M). M >= 0, N >= 1, E >= 1. o must not overlap any
// other argument; the state rows of distinct rows are distinct. Any strides.
//
// Backends: scalar and cpu run the composition (workspace for u, k_hat, log_decay and the linear's
// and gla_decode's temporaries: mixer_decode_workspace_bytes); cuda runs one fused kernel
// (backend/cuda/mixer_decode.cuh, no workspace). Slots: host backends refuse a slot outside
// [-1, P) or two rows on one state with bad_argument "slot"; CUDA skips such a row like padding.
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "rodimus/core/backend.hpp"
#include "rodimus/core/dtype.hpp"
#include "rodimus/core/status.hpp"
#include "rodimus/core/tensor_view.hpp"
#include "rodimus/primitives/slots.hpp"

namespace rodimus {

/// Every argument but ch_gate_up (the one whose type varies): mixer_decode_args derives from it.
struct mixer_decode_common_args {
  tensor_view<const float, 2> x;               // (M, E) the pre-conv data path (channel gate)
  tensor_view<const float, 2> u_preact;        // (M, E) x . W0^T . W1^T, or not given (low-rank)
  tensor_view<const float, 2> h;               // (M, R) x . W0^T (low-rank form), or not given
  tensor_view<const float, 1> ch_gate_bias;    // (E) b1
  tensor_view<const float, 2> c;               // (M, E) the conv output (the skip's input)
  tensor_view<const float, 1> residual_weight; // (E)
  tensor_view<const float, 2> r;               // (M, N) the query
  tensor_view<const float, 2> k;               // (M, N) the raw key
  tensor_view<const float, 2> psi;             // (M, 2N) c . mem_gate^T [selection | temperature]
  tensor_view<const float, 1> mem_gate_bias;   // (2N); data == nullptr: no bias
  tensor_view<float, 2> o;                     // (M, E) written (padding rows left as they are)
  tensor_view<float, 4> state;                 // (P, 1, N, E) the GLA pool, updated in place
  /// (M): row m uses state[slot[m]]; -1 is padding. nullptr means slot[m] = m (P >= M).
  const std::int32_t* slot = nullptr;
  float scale = 1.0f;           // the GLA scale, N^-1/2 in the model
  float normalize_eps = 1e-12f; // DDTS key normalisation
};

/// The arguments; UpWeight is the stored dtype of ch_gate_up (the low-rank form).
template <class UpWeight = float> struct mixer_decode_args : mixer_decode_common_args {
  static_assert(std::is_same_v<UpWeight, float> || std::is_same_v<UpWeight, bf16> ||
                    std::is_same_v<UpWeight, f16>,
                "ch_gate_up: float, bf16 or f16");
  tensor_view<const UpWeight, 2> ch_gate_up; // (E, R) W1 (low-rank form), or not given
};

/// `a` with `ch_gate_up` (of any dtype, or not given: {}) as its up-projection weight.
template <class UpWeight>
mixer_decode_args<UpWeight>
mixer_decode_with_up(const mixer_decode_common_args& a,
                     tensor_view<const UpWeight, 2> ch_gate_up) noexcept {
  mixer_decode_args<UpWeight> r;
  static_cast<mixer_decode_common_args&>(r) = a;
  r.ch_gate_up = ch_gate_up;
  return r;
}

/// Whether a view of the arguments is given (see the top of this file): data or an extent set.
template <class T> constexpr bool mixer_decode_given(const tensor_view<T, 2>& v) noexcept {
  return v.data != nullptr || v.shape[0] != 0 || v.shape[1] != 0;
}

/// Whether `a` is in the low-rank form (h and ch_gate_up instead of u_preact). Meaningful once the
/// arguments passed mixer_decode_check_shapes.
template <class UpWeight>
constexpr bool mixer_decode_low_rank(const mixer_decode_args<UpWeight>& a) noexcept {
  return mixer_decode_given(a.h) || mixer_decode_given(a.ch_gate_up);
}

/// Shape, pointer and scalar validation shared by every backend; never reads through slot.
template <class UpWeight>
[[nodiscard]] status mixer_decode_check_shapes(const mixer_decode_args<UpWeight>& a) noexcept {
  const index_t M = a.x.shape[0], E = a.x.shape[1];
  RODIMUS_REQUIRE(M >= 0 && E >= 1, bad_shape, "x");
  if (mixer_decode_low_rank(a)) {
    RODIMUS_REQUIRE(!mixer_decode_given(a.u_preact), bad_argument, "h"); // both forms
    const index_t R = a.h.shape[1];
    RODIMUS_REQUIRE(R >= 1 && has_shape(a.h, {M, R}), bad_shape, "h");
    RODIMUS_REQUIRE(has_shape(a.ch_gate_up, {E, R}), bad_shape, "ch_gate_up");
    RODIMUS_REQUIRE(a.h.data || M == 0, null_pointer, "h");
    RODIMUS_REQUIRE(a.ch_gate_up.data, null_pointer, "ch_gate_up");
  } else {
    RODIMUS_REQUIRE(mixer_decode_given(a.u_preact), bad_argument, "u_preact"); // neither form
    RODIMUS_REQUIRE(has_shape(a.u_preact, {M, E}), bad_shape, "u_preact");
    RODIMUS_REQUIRE(a.u_preact.data || M == 0, null_pointer, "u_preact");
  }
  RODIMUS_REQUIRE(has_shape(a.ch_gate_bias, {E}), bad_shape, "ch_gate_bias");
  RODIMUS_REQUIRE(has_shape(a.c, {M, E}), bad_shape, "c");
  RODIMUS_REQUIRE(has_shape(a.residual_weight, {E}), bad_shape, "residual_weight");
  const index_t N = a.r.shape[1];
  RODIMUS_REQUIRE(N >= 1 && has_shape(a.r, {M, N}), bad_shape, "r");
  RODIMUS_REQUIRE(has_shape(a.k, {M, N}), bad_shape, "k");
  RODIMUS_REQUIRE(has_shape(a.psi, {M, 2 * N}), bad_shape, "psi");
  if (a.mem_gate_bias.data)
    RODIMUS_REQUIRE(has_shape(a.mem_gate_bias, {2 * N}), bad_shape, "mem_gate_bias");
  RODIMUS_REQUIRE(has_shape(a.o, {M, E}), bad_shape, "o");
  const index_t P = a.state.shape[0];
  RODIMUS_REQUIRE(P >= 0 && has_shape(a.state, {P, 1, N, E}), bad_shape, "state");
  if (!a.slot) RODIMUS_REQUIRE(P >= M, bad_shape, "state"); // slot[m] = m
  RODIMUS_REQUIRE(a.x.data || M == 0, null_pointer, "x");
  RODIMUS_REQUIRE(a.ch_gate_bias.data, null_pointer, "ch_gate_bias");
  RODIMUS_REQUIRE(a.c.data || M == 0, null_pointer, "c");
  RODIMUS_REQUIRE(a.residual_weight.data, null_pointer, "residual_weight");
  RODIMUS_REQUIRE(a.r.data || M == 0, null_pointer, "r");
  RODIMUS_REQUIRE(a.k.data || M == 0, null_pointer, "k");
  RODIMUS_REQUIRE(a.psi.data || M == 0, null_pointer, "psi");
  RODIMUS_REQUIRE(a.o.data || M == 0, null_pointer, "o");
  RODIMUS_REQUIRE(a.state.data || P == 0, null_pointer, "state");
  RODIMUS_REQUIRE(std::isfinite(a.scale), bad_argument, "scale");
  RODIMUS_REQUIRE(std::isfinite(a.normalize_eps) && a.normalize_eps > 0.0f, bad_argument,
                  "normalize_eps");
  return status::success();
}

/// Full validation (host backends): shapes, then every slot -1 or in [0, P), no two rows on one
/// state (primitives/slots.hpp).
template <class UpWeight>
[[nodiscard]] status mixer_decode_check(const mixer_decode_args<UpWeight>& a) noexcept {
  RODIMUS_TRY(mixer_decode_check_shapes(a));
  return check_slots(a.slot, a.x.shape[0], a.state.shape[0], true, "slot");
}

} // namespace rodimus
