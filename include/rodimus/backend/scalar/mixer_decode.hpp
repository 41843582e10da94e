// Scalar reference of mixer_decode (math in rodimus/primitives/mixer_decode.hpp): literally the
// composition [linear ->] channel_gate -> ddts -> gla_decode -> scale_add of the scalar
// primitives, with u (the linear's output in the low-rank form, a copy of u_preact otherwise),
// k_hat and log_decay in the workspace and scale_add applied to the rows that are not padding.
// detail::mixer_decode_composed is written once on the backend and is also the CPU backend
// (backend/cpu/mixer_decode.hpp), where the calls resolve to the cpu<Arch> primitives.
#pragma once

#include <cstddef>

#include "rodimus/backend/scalar/channel_gate.hpp"
#include "rodimus/backend/scalar/ddts.hpp"
#include "rodimus/backend/scalar/gla.hpp"
#include "rodimus/backend/scalar/linear.hpp"
#include "rodimus/backend/scalar/scale_add.hpp"
#include "rodimus/core/workspace.hpp"
#include "rodimus/primitives/mixer_decode.hpp"

namespace rodimus {

namespace detail {

/// A (rows, n) view as (rows, 1, n): the mixer's memory has one head.
template <class T>
inline tensor_view<T, 3> mixer_decode_one_head(const tensor_view<T, 2>& v) noexcept {
  const index_t shape[3] = {v.shape[0], 1, v.shape[1]};
  const index_t stride[3] = {v.stride[0], v.shape[1] * v.stride[1], v.stride[1]};
  return tensor_view<T, 3>::strided(v.data, shape, stride);
}

/// The gla_decode arguments of the composition, with u, k_hat and log_decay (M, E), (M, N), (M, N)
/// contiguous at the given pointers (nullptr for a size query).
template <class UpWeight>
gla_decode_args<float, float, float> mixer_decode_gla(const mixer_decode_args<UpWeight>& a,
                                                      float* u, float* k_hat,
                                                      float* log_decay) noexcept {
  const index_t M = a.x.shape[0], E = a.x.shape[1], N = a.r.shape[1];
  gla_decode_args<float, float, float> g;
  g.q = mixer_decode_one_head(a.r);
  g.k = mixer_decode_one_head(make_view(static_cast<const float*>(k_hat), M, N));
  g.v = mixer_decode_one_head(make_view(static_cast<const float*>(u), M, E));
  g.g = mixer_decode_one_head(make_view(static_cast<const float*>(log_decay), M, N));
  g.o = mixer_decode_one_head(a.o);
  g.state = a.state;
  g.slot = a.slot;
  g.scale = a.scale;
  return g;
}

/// The low-rank form's linear: u (M, E) contiguous at `u` = h . ch_gate_up^T.
template <class UpWeight>
linear_args<float, UpWeight> mixer_decode_up(const mixer_decode_args<UpWeight>& a,
                                             float* u) noexcept {
  return linear_args<float, UpWeight>{a.h, a.ch_gate_up, make_view(u, a.x.shape[0], a.x.shape[1])};
}

/// Workspace of the composition on `be`: u, k_hat, log_decay, then the larger of the linear's
/// (low-rank form) and gla_decode's (one after the other, from the same rest).
template <class Backend, class UpWeight>
std::size_t mixer_decode_composed_workspace_bytes(const Backend& be,
                                                  const mixer_decode_args<UpWeight>& a) noexcept {
  const std::size_t M = a.x.shape[0] > 0 ? std::size_t(a.x.shape[0]) : 0;
  const std::size_t E = a.x.shape[1] > 0 ? std::size_t(a.x.shape[1]) : 0;
  const std::size_t N = a.r.shape[1] > 0 ? std::size_t(a.r.shape[1]) : 0;
  const std::size_t gla =
      gla_decode_workspace_bytes(be, mixer_decode_gla(a, nullptr, nullptr, nullptr));
  const std::size_t up =
      mixer_decode_low_rank(a) ? linear_workspace_bytes(be, mixer_decode_up(a, nullptr)) : 0;
  return workspace::sum(workspace::alignment,
                        workspace::bytes_for<float>(workspace::product(M, E)), // u
                        workspace::bytes_for<float>(workspace::product(M, N)), // k_hat
                        workspace::bytes_for<float>(workspace::product(M, N)), // log_decay
                        gla > up ? gla : up); // gla_decode, or the linear before it
}

/// rows [lo, hi) of a (rows, n) view.
template <class T>
inline tensor_view<T, 2> mixer_decode_rows(const tensor_view<T, 2>& v, index_t lo,
                                           index_t hi) noexcept {
  tensor_view<T, 2> r = v;
  r.data = v.data + lo * v.stride[0];
  r.shape[0] = hi - lo;
  return r;
}

/// The composition, on any backend whose primitives it finds (scalar here, cpu<Arch> through
/// argument-dependent lookup where backend/cpu/mixer_decode.hpp instantiates it). The arguments
/// must have passed mixer_decode_check.
template <class Backend, class UpWeight>
[[nodiscard]] status mixer_decode_composed(const Backend& be, const mixer_decode_args<UpWeight>& a,
                                           workspace ws) noexcept {
  const index_t M = a.x.shape[0], E = a.x.shape[1], N = a.r.shape[1], P = a.state.shape[0];
  if (M == 0) return status::success();
  float* u = ws.take<float>(std::size_t(M * E));         // (M, E)
  float* k_hat = ws.take<float>(std::size_t(M * N));     // (M, N)
  float* log_decay = ws.take<float>(std::size_t(M * N)); // (M, N)
  RODIMUS_REQUIRE(u && k_hat && log_decay, workspace_too_small, "ws");
  // channel_gate works in place: u starts as the pre-activation.
  if (mixer_decode_low_rank(a)) {
    RODIMUS_TRY(linear(be, mixer_decode_up(a, u), ws));
  } else {
    for (index_t m = 0; m < M; ++m)
      for (index_t e = 0; e < E; ++e)
        u[m * E + e] = a.u_preact(m, e);
  }
  RODIMUS_TRY(channel_gate(be, channel_gate_args{make_view(u, M, E), a.ch_gate_bias, a.x}));
  ddts_args<float> d;
  d.gate_preact = a.psi;
  d.gate_bias = a.mem_gate_bias;
  d.k = a.k;
  d.k_hat = make_view(k_hat, M, N);
  d.log_decay = make_view(log_decay, M, N);
  d.normalize_eps = a.normalize_eps;
  RODIMUS_TRY(ddts(be, d));
  RODIMUS_TRY(gla_decode(be, mixer_decode_gla(a, u, k_hat, log_decay), ws));
  // The skip on every run of rows that are not padding (their o rows hold o_gla now).
  for (index_t lo = 0; lo < M;) {
    if (!slot_in_pool(slot_at(a.slot, lo), P)) {
      ++lo;
      continue;
    }
    index_t hi = lo + 1;
    while (hi < M && slot_in_pool(slot_at(a.slot, hi), P))
      ++hi;
    RODIMUS_TRY(scale_add(be, scale_add_args{mixer_decode_rows(a.o, lo, hi),
                                             mixer_decode_rows(a.c, lo, hi), a.residual_weight}));
    lo = hi;
  }
  return status::success();
}

} // namespace detail

template <class UpWeight>
std::size_t mixer_decode_workspace_bytes(const scalar& be,
                                         const mixer_decode_args<UpWeight>& a) noexcept {
  return detail::mixer_decode_composed_workspace_bytes(be, a);
}

template <class UpWeight>
[[nodiscard]] status mixer_decode(const scalar& be, const mixer_decode_args<UpWeight>& a,
                                  workspace ws) noexcept {
  RODIMUS_TRY(mixer_decode_check(a));
  return detail::mixer_decode_composed(be, a, ws);
}

} // namespace rodimus
