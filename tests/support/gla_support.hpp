// The GLA problem shared by the GLA tests: inputs held in double, run through the scalar
// reference in any storage types (Act, Gate, State) by the sequence forms (gla_scan, gla_chunked)
// or token by token (gla_decode), outputs poisoned with NaN first and widened back to double.
#pragma once

#include <cstdint>
#include <vector>

#include "rodimus/backend/scalar/gla.hpp"
#include "support/primitive_support.hpp"
#include "support/test_support.hpp"

namespace rodimus::test {

/// GLA inputs, head-first: q, k, g (B, H, T, K); v (B, H, T, V); s0 (N, H, K, V) or empty (zero
/// initial state), N = B (or the number of packed sequences).
struct gla_problem {
  index_t B = 1, H = 1, T = 1, K = 1, V = 1;
  std::vector<double> q, k, v, g, s0;
  float scale = 1.0f;
};

/// o (B, H, T, V) and the final state (N, H, K, V), in double.
struct gla_result {
  std::vector<double> o, final_state;
};

/// gla_scan (chunk == 0) or gla_chunked (chunk > 0) on p, inputs rounded to the storage types.
/// cu (optional, N + 1 offsets) packs p's single batch row into N sequences.
template <class Act, class Gate = Act, class State = Act>
gla_result run_gla(const gla_problem& p, int chunk, const std::vector<std::int64_t>* cu = nullptr) {
  const auto q = convert<Act>(p.q), v = convert<Act>(p.v);
  const auto k = convert<Gate>(p.k), g = convert<Gate>(p.g);
  const auto s0 = convert<State>(p.s0);
  const index_t N = cu ? index_t(cu->size()) - 1 : p.B;
  std::vector<Act> o(std::size_t(p.B * p.H * p.T * p.V));
  std::vector<State> fs(std::size_t(N * p.H * p.K * p.V));
  poison(o);
  poison(fs);
  gla_args<Act, Gate, State> a;
  a.q = make_view(q.data(), p.B, p.H, p.T, p.K);
  a.k = make_view(k.data(), p.B, p.H, p.T, p.K);
  a.v = make_view(v.data(), p.B, p.H, p.T, p.V);
  a.g = make_view(g.data(), p.B, p.H, p.T, p.K);
  a.o = make_view(o.data(), p.B, p.H, p.T, p.V);
  if (!s0.empty()) a.initial_state = make_view(s0.data(), N, p.H, p.K, p.V);
  a.final_state = make_view(fs.data(), N, p.H, p.K, p.V);
  a.scale = p.scale;
  if (cu) {
    a.cu_seqlens = cu->data();
    a.num_seqs = N;
  }
  status s;
  if (chunk == 0) {
    workspace_buffer ws(gla_scan_workspace_bytes(scalar{}, a));
    s = gla_scan(scalar{}, a, ws.get());
  } else {
    workspace_buffer ws(gla_chunked_workspace_bytes(scalar{}, a, chunk));
    s = gla_chunked(scalar{}, a, chunk, ws.get());
  }
  REQUIRE_MESSAGE(s.ok(), to_string(s.code), ": ", s.what);
  return {widen(o), widen(fs)};
}

/// p token by token through gla_decode, the pool being one state per batch row (slot == nullptr),
/// each step reading (B, H, K|V) slices of the (B, H, T, K|V) inputs through strides. The result's
/// final_state is the pool after the last step.
template <class Act, class Gate = Act, class State = Act>
gla_result run_gla_decode(const gla_problem& p) {
  const auto q = convert<Act>(p.q), v = convert<Act>(p.v);
  const auto k = convert<Gate>(p.k), g = convert<Gate>(p.g);
  const index_t B = p.B, H = p.H, T = p.T, K = p.K, V = p.V;
  std::vector<State> pool = p.s0.empty() ? std::vector<State>(std::size_t(B * H * K * V), State(0))
                                         : convert<State>(p.s0);
  std::vector<Act> o(std::size_t(B * H * T * V));
  poison(o);
  for (index_t t = 0; t < T; ++t) {
    gla_decode_args<Act, Gate, State> d;
    d.q = tensor_view<const Act, 3>::strided(q.data() + t * K, {B, H, K}, {H * T * K, T * K, 1});
    d.k = tensor_view<const Gate, 3>::strided(k.data() + t * K, {B, H, K}, {H * T * K, T * K, 1});
    d.g = tensor_view<const Gate, 3>::strided(g.data() + t * K, {B, H, K}, {H * T * K, T * K, 1});
    d.v = tensor_view<const Act, 3>::strided(v.data() + t * V, {B, H, V}, {H * T * V, T * V, 1});
    d.o = tensor_view<Act, 3>::strided(o.data() + t * V, {B, H, V}, {H * T * V, T * V, 1});
    d.state = make_view(pool.data(), B, H, K, V);
    d.scale = p.scale;
    workspace_buffer ws(gla_decode_workspace_bytes(scalar{}, d));
    const status s = gla_decode(scalar{}, d, ws.get());
    REQUIRE_MESSAGE(s.ok(), to_string(s.code), ": ", s.what);
  }
  return {widen(o), widen(pool)};
}

} // namespace rodimus::test
