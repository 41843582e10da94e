// Scalar reference of the GLA recurrence (gla_scan, gla_chunked, gla_decode; math in
// rodimus/primitives/gla.hpp): plain loops, every product and sum in f64. Each (sequence, head)
// state is loaded whole before it is stored, so final_state may alias initial_state. The f64 state
// and temporaries live in the caller's workspace (size from the *_workspace_bytes functions);
// nothing is allocated. Outputs are rounded once to Act (o) and State (final_state, the pool).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "rodimus/core/dtype.hpp"
#include "rodimus/primitives/gla.hpp"

namespace rodimus {

namespace detail {

inline std::size_t gla_nonneg(index_t n) noexcept { return n > 0 ? std::size_t(n) : 0; }

/// The state entering a sequence, as f64: initial_state[p, h] (p: its state row) or zeros.
template <class Act, class Gate, class State>
void gla_load_initial(const gla_args<Act, Gate, State>& a, index_t p, index_t h,
                      double* S) noexcept {
  const index_t K = a.q.shape[3], V = a.v.shape[3];
  for (index_t i = 0; i < K; ++i)
    for (index_t j = 0; j < V; ++j)
      S[i * V + j] = a.initial_state.data ? load_as<double>(a.initial_state(p, h, i, j)) : 0.0;
}

template <class Act, class Gate, class State>
void gla_store_final(const gla_args<Act, Gate, State>& a, index_t p, index_t h,
                     const double* S) noexcept {
  if (!a.final_state.data) return;
  const index_t K = a.q.shape[3], V = a.v.shape[3];
  for (index_t i = 0; i < K; ++i)
    for (index_t j = 0; j < V; ++j)
      a.final_state(p, h, i, j) = store_as<State>(S[i * V + j]);
}

/// Batch row and [t0, t1) of sequence n (sequence_at of packed_sequences.hpp, unpacked).
template <class Act, class Gate, class State>
void gla_sequence_range(const gla_args<Act, Gate, State>& a, index_t n, index_t& b, index_t& t0,
                        index_t& t1) noexcept {
  const sequence_range r = sequence_at(a.cu_seqlens, n, a.q.shape[2]);
  b = r.batch;
  t0 = r.begin;
  t1 = r.end;
}

} // namespace detail

// ---- gla_scan: the sequential recurrence ----

template <class Act, class Gate, class State>
std::size_t gla_scan_workspace_bytes(const scalar&, const gla_args<Act, Gate, State>& a) noexcept {
  const std::size_t K = detail::gla_nonneg(a.q.shape[3]), V = detail::gla_nonneg(a.v.shape[3]);
  return workspace::sum(workspace::alignment,
                        workspace::bytes_for<double>(workspace::product(K, V)),
                        workspace::bytes_for<double>(V)); // S (K, V), v row (V)
}

template <class Act, class Gate, class State>
[[nodiscard]] status gla_scan(const scalar&, const gla_args<Act, Gate, State>& a,
                              workspace ws) noexcept {
  RODIMUS_TRY(gla_check(a));
  const index_t H = a.q.shape[1], K = a.q.shape[3], V = a.v.shape[3];
  const index_t N = gla_num_seqs(a);
  double* S = ws.take<double>(workspace::product(std::size_t(K), std::size_t(V))); // (K, V)
  double* vr = ws.take<double>(std::size_t(V)); // (V) the current v row
  RODIMUS_REQUIRE(S && vr, workspace_too_small, "ws");
  const double scale = a.scale;
  for (index_t n = 0; n < N; ++n) {
    const index_t p = gla_state_row(a, n);
    if (is_padding_slot(p)) continue; // o rows and states untouched
    index_t b, t0, t1;
    detail::gla_sequence_range(a, n, b, t0, t1);
    for (index_t h = 0; h < H; ++h) {
      detail::gla_load_initial(a, p, h, S);
      for (index_t t = t0; t < t1; ++t) {
        for (index_t j = 0; j < V; ++j)
          vr[j] = load_as<double>(a.v(b, h, t, j));
        for (index_t i = 0; i < K; ++i) {
          const double decay = std::exp(load_as<double>(a.g(b, h, t, i)));
          const double ki = load_as<double>(a.k(b, h, t, i));
          double* row = S + i * V;
          for (index_t j = 0; j < V; ++j)
            row[j] = row[j] * decay + ki * vr[j];
        }
        for (index_t j = 0; j < V; ++j) {
          double acc = 0.0;
          for (index_t i = 0; i < K; ++i)
            acc += load_as<double>(a.q(b, h, t, i)) * S[i * V + j];
          a.o(b, h, t, j) = store_as<Act>(scale * acc);
        }
      }
      detail::gla_store_final(a, p, h, S);
    }
  }
  return status::success();
}

// ---- gla_chunked: the chunked parallel form (docs/MODEL.md §4.1) ----

template <class Act, class Gate, class State>
std::size_t gla_chunked_workspace_bytes(const scalar&, const gla_args<Act, Gate, State>& a,
                                        int chunk_size) noexcept {
  const std::size_t K = detail::gla_nonneg(a.q.shape[3]), V = detail::gla_nonneg(a.v.shape[3]);
  const std::size_t C = detail::gla_nonneg(chunk_size);
  return workspace::sum(workspace::alignment,
                        workspace::bytes_for<double>(workspace::product(K, V)), // S (K, V)
                        workspace::bytes_for<double>(workspace::product(C, K)), // G (C, K)
                        workspace::bytes_for<double>(V));                       // o row (V)
}

template <class Act, class Gate, class State>
[[nodiscard]] status gla_chunked(const scalar&, const gla_args<Act, Gate, State>& a, int chunk_size,
                                 workspace ws) noexcept {
  RODIMUS_TRY(gla_chunked_check(a, chunk_size));
  const index_t H = a.q.shape[1], K = a.q.shape[3], V = a.v.shape[3];
  const index_t N = gla_num_seqs(a);
  const index_t C = chunk_size;
  double* S = ws.take<double>(workspace::product(std::size_t(K), std::size_t(V))); // (K, V) S_in
  double* G = ws.take<double>(workspace::product(std::size_t(C), std::size_t(K))); // (C, K) G
  double* acc = ws.take<double>(std::size_t(V)); // (V) one output row
  RODIMUS_REQUIRE(S && G && acc, workspace_too_small, "ws");
  const double scale = a.scale;
  for (index_t n = 0; n < N; ++n) {
    const index_t p = gla_state_row(a, n);
    if (is_padding_slot(p)) continue; // o rows and states untouched
    index_t b, t0, t1;
    detail::gla_sequence_range(a, n, b, t0, t1);
    for (index_t h = 0; h < H; ++h) {
      detail::gla_load_initial(a, p, h, S);
      for (index_t c0 = t0; c0 < t1; c0 += C) {
        const index_t L = (t1 - c0 < C) ? t1 - c0 : C;
        // G_i = G_{i-1} + g_i: non-increasing since g <= 0, so G_i - G_j <= 0 for j <= i.
        for (index_t i = 0; i < L; ++i)
          for (index_t m = 0; m < K; ++m)
            G[i * K + m] = (i ? G[(i - 1) * K + m] : 0.0) + load_as<double>(a.g(b, h, c0 + i, m));
        const double* gamma = G + (L - 1) * K;
        for (index_t i = 0; i < L; ++i) {
          const index_t t = c0 + i;
          const double* gi = G + i * K;
          for (index_t j = 0; j < V; ++j)
            acc[j] = 0.0;
          // Inter-chunk: (q_i * exp(G_i)) S_in.
          for (index_t m = 0; m < K; ++m) {
            const double w = load_as<double>(a.q(b, h, t, m)) * std::exp(gi[m]);
            const double* row = S + m * V;
            for (index_t j = 0; j < V; ++j)
              acc[j] += w * row[j];
          }
          // Intra-chunk: only s <= i is visited (the causal mask by selection).
          for (index_t s = 0; s <= i; ++s) {
            const double* gs = G + s * K;
            double A = 0.0;
            for (index_t m = 0; m < K; ++m)
              A += load_as<double>(a.q(b, h, t, m)) * load_as<double>(a.k(b, h, c0 + s, m)) *
                   std::exp(gi[m] - gs[m]);
            for (index_t j = 0; j < V; ++j)
              acc[j] += A * load_as<double>(a.v(b, h, c0 + s, j));
          }
          for (index_t j = 0; j < V; ++j)
            a.o(b, h, t, j) = store_as<Act>(scale * acc[j]);
        }
        // State passing: S_out = diag(exp(Gamma)) S_in + sum_s (k_s * exp(Gamma - G_s))^T v_s.
        for (index_t m = 0; m < K; ++m) {
          const double d = std::exp(gamma[m]);
          double* row = S + m * V;
          for (index_t j = 0; j < V; ++j)
            row[j] *= d;
        }
        for (index_t s = 0; s < L; ++s) {
          const double* gs = G + s * K;
          for (index_t j = 0; j < V; ++j)
            acc[j] = load_as<double>(a.v(b, h, c0 + s, j));
          for (index_t m = 0; m < K; ++m) {
            const double w = load_as<double>(a.k(b, h, c0 + s, m)) * std::exp(gamma[m] - gs[m]);
            double* row = S + m * V;
            for (index_t j = 0; j < V; ++j)
              row[j] += w * acc[j];
          }
        }
      }
      detail::gla_store_final(a, p, h, S);
    }
  }
  return status::success();
}

// ---- gla_decode: one token per row, states in a pool addressed by slot ----

template <class Act, class Gate, class State>
std::size_t gla_decode_workspace_bytes(const scalar&,
                                       const gla_decode_args<Act, Gate, State>& a) noexcept {
  const std::size_t K = detail::gla_nonneg(a.q.shape[2]), V = detail::gla_nonneg(a.v.shape[2]);
  return workspace::sum(workspace::alignment,
                        workspace::bytes_for<double>(workspace::product(K, V))); // S (K, V)
}

template <class Act, class Gate, class State>
[[nodiscard]] status gla_decode(const scalar&, const gla_decode_args<Act, Gate, State>& a,
                                workspace ws) noexcept {
  RODIMUS_TRY(gla_decode_check(a));
  const index_t B = a.q.shape[0], H = a.q.shape[1], K = a.q.shape[2], V = a.v.shape[2];
  double* S = ws.take<double>(workspace::product(std::size_t(K), std::size_t(V))); // (K, V)
  RODIMUS_REQUIRE(S, workspace_too_small, "ws");
  const double scale = a.scale;
  for (index_t b = 0; b < B; ++b) {
    const index_t p = slot_at(a.slot, b);
    if (is_padding_slot(p)) continue; // o row and state untouched
    for (index_t h = 0; h < H; ++h) {
      for (index_t i = 0; i < K; ++i) {
        const double decay = std::exp(load_as<double>(a.g(b, h, i)));
        const double ki = load_as<double>(a.k(b, h, i));
        for (index_t j = 0; j < V; ++j)
          S[i * V + j] =
              load_as<double>(a.state(p, h, i, j)) * decay + ki * load_as<double>(a.v(b, h, j));
      }
      for (index_t j = 0; j < V; ++j) {
        double acc = 0.0;
        for (index_t i = 0; i < K; ++i)
          acc += load_as<double>(a.q(b, h, i)) * S[i * V + j];
        a.o(b, h, j) = store_as<Act>(scale * acc);
      }
      for (index_t i = 0; i < K; ++i)
        for (index_t j = 0; j < V; ++j)
          a.state(p, h, i, j) = store_as<State>(S[i * V + j]);
    }
  }
  return status::success();
}

} // namespace rodimus
