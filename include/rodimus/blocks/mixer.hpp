// The Rodimus mixer (RodimusFlow + RodimusFlowInner, docs/MODEL.md §2.3 and the decode form §6.3),
// composed of the primitives. Input a (M, D) = MixerNorm output; output out (M, D). E = d_inner,
// N = mem_size, R = low rank:
//
//   x = a . fc[0:E]^T,  g = a . fc[E:2E]^T          (M, E) data path and gate (MODEL.md pitfall 3)
//   c = silu(causal_conv(x) + bias)                  (M, E) conv state: the last W inputs x
//   r = c . in_proj[0:N]^T,  k = c . in_proj[N:2N]^T (M, N)
//   u = sigmoid((x . W0^T) . W1^T + b1) * x         (M, E) from the PRE-conv x (MODEL.md pitfall 4)
//   psi = c . mem_gate^T                             (M, 2N); DDTS adds the f32 bias:
//   k_hat = k / max(|k|, eps) * softplus(sel)^sigmoid(tau),
//   log_decay = -softplus(sel) * sigmoid(tau)        (M, N) each
//   o_gla = GLA(q = r, k = k_hat, v = u, g = log_decay, scale = N^-1/2)   state (N, E) f32
//   o = o_gla + c * residual_weight                  f32 add (MODEL.md pitfall 5)
//   y = gated_rmsnorm(o, g) = norm(o * silu(g)) * act_norm                 (MODEL.md pitfall 6)
//   out = y . out_proj^T                             (M, D)
//
// Prefill runs the chunked GLA over packed sequences, starting from (and leaving) each sequence's
// state in the pools; decode runs causal_conv_step, then mixer_decode (the channel gate, DDTS,
// the GLA step and the skip of one token per sequence: one kernel on CUDA) after the projections,
// which also applies W1 (ch_gate_up) to h = x . W0^T when W1 is in a stored dtype (f32, bf16,
// f16; its low-rank form), so that a quantised W1 is the only case with a separate linear for it.
// State pools: conv (P, E, W) f32, GLA (P, 1, N, E) f32, addressed by batch_layout::slot, read and
// updated in place by the primitives (no copies around them). Every step is a primitive call: the
// mixer never touches the data itself, so it runs unchanged on every backend.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "rodimus/blocks/common.hpp"
#include "rodimus/model/config.hpp"
#include "rodimus/model/weight_views.hpp"
#include "rodimus/primitives/causal_conv.hpp"
#include "rodimus/primitives/channel_gate.hpp"
#include "rodimus/primitives/ddts.hpp"
#include "rodimus/primitives/elementwise.hpp"
#include "rodimus/primitives/gated_rmsnorm.hpp"
#include "rodimus/primitives/gla.hpp"
#include "rodimus/primitives/linear.hpp"
#include "rodimus/primitives/mixer_decode.hpp"
#include "rodimus/primitives/scale_add.hpp"

namespace rodimus {

/// The mixer's recurrent state pools (one layer).
struct mixer_state {
  tensor_view<float, 3> conv; // (P, E, W) the last W mixer inputs x, oldest first
  tensor_view<float, 4> gla;  // (P, 1, N, E) the GLA memory S
};

/// GLA chunk length of the prefill. Any length gives the same maths (docs/MODEL.md §4.7); the
/// reference's fused_chunk_gla uses 16.
constexpr int mixer_gla_chunk = 64;

namespace detail {

inline gla_args<float, float, float> mixer_gla_shapes(index_t M, index_t N, index_t E,
                                                      index_t P) noexcept {
  gla_args<float, float, float> a;
  const index_t qk[4] = {1, 1, M, N}, vo[4] = {1, 1, M, E}, st[4] = {P, 1, N, E};
  a.q = tensor_view<const float, 4>::contiguous(nullptr, qk);
  a.k = a.q;
  a.g = a.q;
  a.v = tensor_view<const float, 4>::contiguous(nullptr, vo);
  a.o = tensor_view<float, 4>::contiguous(nullptr, vo);
  a.initial_state = tensor_view<const float, 4>::contiguous(nullptr, st);
  a.final_state = tensor_view<float, 4>::contiguous(nullptr, st);
  a.num_seqs = P; // the packed call's sequence count (workspace sizes may depend on it)
  return a;
}

/// Floats of the one-row projection call of rodimus_mixer (r, k, psi and h in one (2, 4N + R)
/// matrix).
constexpr index_t mixer_one_row_projection(index_t N, index_t R) noexcept {
  return 2 * (4 * N + R);
}

/// The shapes of the decode step's mixer_decode call in the u_preact form.
inline mixer_decode_args<> mixer_decode_shapes(index_t B, index_t N, index_t E,
                                               index_t P) noexcept {
  mixer_decode_args<> a;
  const index_t st[4] = {P, 1, N, E};
  a.x = make_view(static_cast<const float*>(nullptr), B, E);
  a.u_preact = a.x;
  a.c = a.x;
  a.r = make_view(static_cast<const float*>(nullptr), B, N);
  a.k = a.r;
  a.psi = make_view(static_cast<const float*>(nullptr), B, 2 * N);
  a.o = make_view(static_cast<float*>(nullptr), B, E);
  a.state = tensor_view<float, 4>::contiguous(nullptr, st);
  return a;
}

/// The most workspace the decode step's mixer_decode call needs: the u_preact form (quantised W1)
/// or the low-rank form with W1 in any stored dtype (rank R).
template <class Backend>
std::size_t mixer_decode_most_workspace_bytes(const Backend& be, index_t B, index_t N, index_t E,
                                              index_t R, index_t P) noexcept {
  const mixer_decode_args<> a = mixer_decode_shapes(B, N, E, P);
  std::size_t most = mixer_decode_workspace_bytes(be, a);
  auto consider = [&](auto weight) {
    using W = decltype(weight);
    mixer_decode_args<W> l =
        mixer_decode_with_up(a, make_view(static_cast<const W*>(nullptr), E, R));
    l.u_preact = {};
    l.h = make_view(static_cast<const float*>(nullptr), B, R);
    most = std::max(most, mixer_decode_workspace_bytes(be, l));
  };
  consider(float{});
  consider(bf16{});
  consider(f16{});
  return most;
}

} // namespace detail

/// Workspace bytes of rodimus_mixer for `tokens` rows of `num_seqs` sequences.
template <class Backend>
std::size_t rodimus_mixer_workspace_bytes(const Backend& be, const model_config& cfg,
                                          index_t tokens, index_t num_seqs, bool decode) noexcept {
  const index_t M = tokens, E = cfg.d_inner(), N = cfg.mem_size, R = cfg.low_rank();
  std::size_t b = 0;
  for (index_t n : {M * E, M * 2 * E, std::max(M * 4 * N, detail::mixer_one_row_projection(N, R)),
                    M * R, M * E, M * N, M * N, M * E})
    b += block_arena::bytes(n);
  // The GLA call and the projections take their temporaries from what the buffers leave, one at
  // a time: room for the larger.
  const std::size_t gla =
      decode ? detail::mixer_decode_most_workspace_bytes(be, M, N, E, R, num_seqs)
             : gla_chunked_workspace_bytes(be, detail::mixer_gla_shapes(M, N, E, num_seqs),
                                           mixer_gla_chunk);
  // Outputs: fc 2E, in_proj and mem_gate with ch_gate_down 4N + R, ch_gate_up E, out_proj D.
  const std::size_t lin = linear_weight_workspace_bytes(be, M, std::max({cfg.d_model, E, R}),
                                                        std::max({cfg.d_model, 2 * E, 4 * N + R}));
  b += std::max(gla, lin);
  return b + workspace::alignment;
}

/// out (M, D) = RodimusMixer(a (M, D)), reading and updating the states of the layout's slots.
template <class Backend>
[[nodiscard]] status rodimus_mixer(const Backend& be, const model_config& cfg,
                                   const mixer_weights& w, const mixer_state& st,
                                   const batch_layout& lay, normed_input in, // (M, D)
                                   tensor_view<float, 2> out,                // (M, D)
                                   workspace ws) noexcept {
  const index_t M = lay.tokens, E = cfg.d_inner(), N = cfg.mem_size, R = cfg.low_rank();
  const index_t W = cfg.d_conv, S = lay.num_seqs;
  RODIMUS_REQUIRE(in.rows() == M && out.shape[0] == M, bad_shape, "a");
  if (M == 0) return status::success();
  block_arena ar{ws};
  // Projections of one input go to one buffer, one call each (one conversion of the input, one
  // GEMM or GEMV launch, the input read once): row m of xg is [x_m | g_m], row m of rkp is
  // [r_m | k_m | psi_m]; the consumers read them through row-strided views.
  // c right before xg: with one row, [c_0 | x_0] is a (2, E) matrix (see 5-7 below).
  float* c = ar.floats(M * E);      // (M, E)
  float* xg = ar.floats(M * 2 * E); // (M, 2E) fc: x (data path), g (gate)
  // (M, 4N) in_proj, mem_gate: r, k, psi (M, 2N); one row: room for the (2, 4N + R) call below
  float* rkp = ar.floats(std::max(M * 4 * N, detail::mixer_one_row_projection(N, R)));
  float* h = ar.floats(M * R);     // (M, R)
  float* u = ar.floats(M * E);     // (M, E)
  float* k_hat = ar.floats(M * N); // (M, N)
  float* decay = ar.floats(M * N); // (M, N)
  float* o = ar.floats(M * E);     // (M, E)
  RODIMUS_REQUIRE(ar.ok, workspace_too_small, "workspace");

  // 1. split projection: x (data path), g (gate), both halves of fc in one call.
  const auto x = tensor_view<const float, 2>::strided(xg, {M, E}, {2 * E, 1});
  const auto g = tensor_view<const float, 2>::strided(xg + E, {M, E}, {2 * E, 1});
  RODIMUS_REQUIRE(w.fc.rows == 2 * E, bad_shape, "fc");
  RODIMUS_TRY(linear_normed(be, in, w.fc, make_view(xg, M, 2 * E), ar.rest()));

  // 3. short conv + SiLU, with the conv state.
  const auto conv_w = make_view(w.conv_weight.data, E, W);
  const auto conv_b = w.conv_bias;
  if (lay.decode) {
    causal_conv_step_args<float> ca;
    ca.x = x;
    ca.weight = conv_w;
    ca.bias = conv_b;
    ca.state = st.conv;
    ca.slot = lay.slot;
    ca.y = make_view(c, M, E);
    ca.silu = true;
    RODIMUS_TRY(causal_conv_step(be, ca));
  } else {
    causal_conv_args<float> ca;
    ca.x = tensor_view<const float, 3>::strided(xg, {1, M, E}, {M * 2 * E, 2 * E, 1});
    ca.weight = conv_w;
    ca.bias = conv_b;
    ca.y = make_view(c, index_t(1), M, E);
    if (!lay.fresh) ca.initial_state = st.conv;
    ca.final_state = st.conv; // an exact alias of initial_state: in-place update
    ca.silu = true;
    ca.cu_seqlens = lay.cu_seqlens;
    ca.num_seqs = S;
    ca.slot = lay.slot;
    RODIMUS_TRY(causal_conv(be, ca));
  }
  const auto cv = make_view(static_cast<const float*>(c), M, E);

  // 5. r, k from the conv output and 7. the memory gates from the same input: one call when
  // in_proj and mem_gate lie back to back (backend_weights and most checkpoints place them so),
  // else one each, into the columns of rkp. 6. the channel (input) gate's down projection from the
  // pre-conv x: h = x W0^T (then u = h W1^T and the gate sigmoid(u + b1) * x; decode applies W1
  // in mixer_decode unless it is quantised).
  // One row with ch_gate_down right after mem_gate too: all three in one call of two rows,
  // [c_0; x_0] (c lies right before xg) times [in_proj; mem_gate; ch_gate_down]^T into a
  // (2, 4N + R) matrix at rkp: row 0's first 4N columns are r, k, psi and row 1's last R are h
  // (the other 4N + R products are computed and dropped). Batch-1 decode is bound by reading the
  // weights and by launches: this reads them once, in one launch instead of two.
  RODIMUS_REQUIRE(w.in_proj.rows == 2 * N, bad_shape, "in_proj");
  const auto r = tensor_view<const float, 2>::strided(rkp, {M, N}, {4 * N, 1});
  const auto k = tensor_view<const float, 2>::strided(rkp + N, {M, N}, {4 * N, 1});
  const auto psi = tensor_view<const float, 2>::strided(rkp + 2 * N, {M, 2 * N}, {4 * N, 1});
  const weight_matrix in_and_gates = stacked_rows(w.in_proj, w.mem_gate);
  const weight_matrix with_down = stacked_rows(in_and_gates, w.ch_gate_down);
  if (M == 1 && c + E == xg && with_down.data) {
    const index_t width = 4 * N + R;
    RODIMUS_TRY(linear_weight(be, make_view(static_cast<const float*>(c), 2, E), with_down,
                              make_view(rkp, 2, width), ar.rest()));
    h = rkp + width + 4 * N;
  } else {
    if (in_and_gates.data) {
      RODIMUS_TRY(linear_weight(be, cv, in_and_gates, make_view(rkp, M, 4 * N), ar.rest()));
    } else {
      const auto cols = [&](index_t first) {
        return tensor_view<float, 2>::strided(rkp + first, {M, 2 * N}, {4 * N, 1});
      };
      RODIMUS_TRY(linear_weight(be, cv, w.in_proj, cols(0), ar.rest()));
      RODIMUS_TRY(linear_weight(be, cv, w.mem_gate, cols(2 * N), ar.rest()));
    }
    RODIMUS_TRY(linear_weight(be, x, w.ch_gate_down, make_view(h, M, R), ar.rest()));
  }
  const bool up_in_decode = lay.decode && !w.ch_gate_up.quantised();
  if (!up_in_decode)
    RODIMUS_TRY(linear_weight(be, make_view(static_cast<const float*>(h), M, R), w.ch_gate_up,
                              make_view(u, M, E), ar.rest()));

  if (lay.decode) {
    // 6 (W1 and the gate), 8-9, 10 and 11 of one token per sequence in one primitive (one kernel
    // on CUDA): the channel gate, DDTS, the GLA step on the pool and the internal skip,
    // o = o_gla + c * w.
    mixer_decode_common_args ma;
    ma.x = x;
    if (up_in_decode)
      ma.h = make_view(static_cast<const float*>(h), M, R);
    else
      ma.u_preact = make_view(static_cast<const float*>(u), M, E);
    ma.ch_gate_bias = w.ch_gate_bias;
    ma.c = cv;
    ma.residual_weight = w.residual_weight;
    ma.r = r;
    ma.k = k;
    ma.psi = psi;
    ma.mem_gate_bias = w.mem_gate_bias;
    ma.o = make_view(o, M, E);
    ma.state = st.gla;
    ma.slot = lay.slot;
    ma.scale = cfg.gla_scale();
    ma.normalize_eps = float(cfg.normalize_epsilon);
    if (up_in_decode) {
      RODIMUS_TRY(detail::visit_stored_dtype(
          w.ch_gate_up, "weight format", "weight dtype", [&](auto weight) {
            using W = decltype(weight);
            return mixer_decode(be, mixer_decode_with_up(ma, w.ch_gate_up.view<W>()), ar.rest());
          }));
    } else {
      RODIMUS_TRY(mixer_decode(be, mixer_decode_with_up<float>(ma, {}), ar.rest()));
    }
  } else {
    // 6. the channel gate in place: u = sigmoid(u + b1) * x.
    RODIMUS_TRY(channel_gate(be, channel_gate_args{make_view(u, M, E), w.ch_gate_bias, x}));
    // 8-9. DDTS.
    ddts_args<float> da;
    da.gate_preact = psi;
    da.gate_bias = w.mem_gate_bias;
    da.k = k;
    da.k_hat = make_view(k_hat, M, N);
    da.log_decay = make_view(decay, M, N);
    da.normalize_eps = float(cfg.normalize_epsilon);
    RODIMUS_TRY(ddts(be, da));
    // 10. the chunked GLA; the pools are read and written in place: sequence n's state is
    // st.gla[slot[n]].
    gla_args<float, float, float> ga;
    ga.q =
        tensor_view<const float, 4>::strided(rkp, {1, 1, M, N}, {M * 4 * N, M * 4 * N, 4 * N, 1});
    ga.k = make_view(static_cast<const float*>(k_hat), index_t(1), index_t(1), M, N);
    ga.v = make_view(static_cast<const float*>(u), index_t(1), index_t(1), M, E);
    ga.g = make_view(static_cast<const float*>(decay), index_t(1), index_t(1), M, N);
    ga.o = make_view(o, index_t(1), index_t(1), M, E);
    if (!lay.fresh) ga.initial_state = st.gla;
    ga.final_state = st.gla;
    ga.slot = lay.slot;
    ga.scale = cfg.gla_scale();
    ga.cu_seqlens = lay.cu_seqlens;
    ga.num_seqs = S;
    RODIMUS_TRY(gla_chunked(be, ga, mixer_gla_chunk, ar.rest()));
    // 11. internal skip, in f32: o = o_gla + c * residual_weight.
    RODIMUS_TRY(scale_add(be, scale_add_args{make_view(o, M, E), cv, w.residual_weight}));
  }

  // 12. gated RMSNorm, 13. output projection: one kernel where the backend fuses them
  // (rmsnorm_linear), else the norm in place and the projection.
  if (linear_fuses_input(be, M)) {
    normed_input gated;
    gated.pending = true;
    gated.x = make_view(static_cast<const float*>(o), M, E);
    gated.gate = g;
    gated.weight = w.act_norm;
    gated.eps = float(cfg.norm_epsilon);
    return linear_normed(be, gated, w.out_proj, out, ar.rest());
  }
  gated_rmsnorm_args<float> na;
  na.x = make_view(static_cast<const float*>(o), M, E);
  na.gate = g;
  na.weight = w.act_norm;
  na.y = make_view(o, M, E);
  na.eps = float(cfg.norm_epsilon);
  RODIMUS_TRY(gated_rmsnorm(be, na));
  return linear_weight(be, make_view(static_cast<const float*>(o), M, E), w.out_proj, out,
                       ar.rest());
}

} // namespace rodimus
