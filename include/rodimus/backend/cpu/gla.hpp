// GLA recurrence on the CPU backend (math, shapes and validation in rodimus/primitives/gla.hpp):
//
//   S_t = diag(exp(g_t)) S_{t-1} + k_t^T v_t,     o_t = scale * q_t S_t       S: (K, V) f32
//
// gla_decode   one token per batch row, states updated in place in the pool. Memory-bound on the
//              f32 state (read once, written once): threads claim contiguous runs of (row, head,
//              column block of 256 columns) items; per item the output block stays in registers
//              (AVX-512; an L1 buffer for AVX2) while the K state rows stream through, prefetched
//              into L2 16 KiB ahead (going on into the thread's next item) and into L1 for
//              writing 2 KiB ahead.
// gla_scan     the sequential recurrence. Per (sequence, head) and segment of 256 tokens, the
//              per-token vectors exp(g), k and scale*q are widened to f32 once; threads then split
//              the V columns in blocks of 4 SIMD vectors whose (K x block) state stays in L1 for
//              the whole segment: 3 vector operations per state element per token.
// gla_chunked  the chunked form of docs/MODEL.md §4.1, with every exponent <= 0. Per chunk (phase
//              1, threads over chunks): G = cumsum g (f64), q~ = scale q exp(G), k~ = k
//              exp(Gamma-G), A_ij = scale sum_n q_i k_j exp(G_i - G_j) for j <= i only (the others
//              are set to 0, never computed), exp(Gamma). Then (phase 2, threads over column
//              blocks, the state block in L1): o = q~ S + A v and S = exp(Gamma) S + k~^T v, as
//              register-blocked matrix products (4 rows x 4 vectors). Per token and value column
//              that is 2K + C/2 multiply-adds against the scan's 3K operations.
//
// Fast paths need State = f32, Act and Gate in {f32, bf16, f16} and unit inner strides; anything
// else runs the scalar reference (the workspace covers both).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <type_traits>

#include "rodimus/backend/cpu/cpu.hpp"
#include "rodimus/backend/cpu/prefetch.hpp"
#include "rodimus/backend/cpu/simd.hpp"
#include "rodimus/backend/scalar/gla.hpp" // the fallback for what this backend does not cover
#include "rodimus/core/dtype.hpp"
#include "rodimus/core/workspace.hpp"
#include "rodimus/primitives/gla.hpp"

namespace rodimus {

namespace detail {

constexpr index_t kGlaSegment = 256; // tokens whose per-token vectors are widened at once
constexpr int kGlaBlockVectors = 4;  // SIMD vectors per column block (scan, chunked)

template <class Act, class Gate, class State>
constexpr bool gla_cpu_types =
    std::is_same_v<State, float>&& cpu_storage_type<Act>&& cpu_storage_type<Gate>;

template <class Act, class Gate, class State>
bool gla_cpu_strides_ok(const gla_args<Act, Gate, State>& a) noexcept {
  return a.q.stride[3] == 1 && a.k.stride[3] == 1 && a.g.stride[3] == 1 && a.v.stride[3] == 1 &&
         a.o.stride[3] == 1 && (!a.initial_state.data || a.initial_state.stride[3] == 1) &&
         (!a.final_state.data || a.final_state.stride[3] == 1);
}

/// State row length in the workspace: V rounded up to whole column blocks, plus one cache line so
/// that the rows of a column block do not all map to the same L1 set (a 16 KiB row stride would
/// leave a 64-row block 12 ways of L1 and make the scan thrash).
template <class A> index_t gla_padded_columns(index_t V) noexcept {
  const index_t BW = index_t(lanes<A>) * kGlaBlockVectors;
  return (V + BW - 1) / BW * BW + 16;
}

/// Load the state entering a sequence (state row p, or zeros) into S (K, Vp), padding columns
/// zeroed.
template <class A, class Act, class Gate>
void gla_cpu_load_state(const gla_args<Act, Gate, float>& a, index_t p, index_t h, float* S,
                        index_t Vp) noexcept {
  const index_t K = a.q.shape[3], V = a.v.shape[3];
  for (index_t i = 0; i < K; ++i) {
    float* row = S + i * Vp;
    if (a.initial_state.data) {
      const float* src = &a.initial_state(p, h, i, index_t(0));
      std::copy(src, src + V, row);
    } else {
      std::fill(row, row + V, 0.0f);
    }
    std::fill(row + V, row + Vp, 0.0f);
  }
}

template <class Act, class Gate>
void gla_cpu_store_state(const gla_args<Act, Gate, float>& a, index_t p, index_t h, const float* S,
                         index_t Vp) noexcept {
  if (!a.final_state.data) return;
  const index_t K = a.q.shape[3], V = a.v.shape[3];
  for (index_t i = 0; i < K; ++i)
    std::copy(S + i * Vp, S + i * Vp + V, &a.final_state(p, h, i, index_t(0)));
}

/// The driver the scan and the chunked form share: for every sequence n and head h, the state
/// entering n (row p = gla_state_row(a, n)) is loaded into S (K, Vp), segment(b, h, s0, L) runs
/// over n's tokens in segments of at most kGlaSegment (L tokens from s0, batch row b), and S is
/// stored as n's final state (row p; the whole state is loaded before, so the pools may alias).
/// Padding sequences (p = -1) are skipped: their o rows and states are not touched.
template <class A, class Act, class Gate, class F>
void gla_cpu_for_each_segment(const gla_args<Act, Gate, float>& a, float* S, index_t Vp,
                              F&& segment) noexcept {
  const index_t N = gla_num_seqs(a), H = a.q.shape[1];
  for (index_t n = 0; n < N; ++n) {
    const index_t p = gla_state_row(a, n);
    if (is_padding_slot(p)) continue;
    index_t b, t0, t1;
    gla_sequence_range(a, n, b, t0, t1);
    for (index_t h = 0; h < H; ++h) {
      gla_cpu_load_state<A>(a, p, h, S, Vp);
      for (index_t s0 = t0; s0 < t1; s0 += kGlaSegment)
        segment(b, h, s0, std::min(kGlaSegment, t1 - s0));
      gla_cpu_store_state(a, p, h, S, Vp);
    }
  }
}

/// Column block [c0, c0 + NV*W) of a row of `src` into f32 registers (zero past V).
template <class A, int NV, class T>
inline void gla_load_block(fbatch<A> (&out)[NV], const T* row, index_t c0, index_t V) noexcept {
  constexpr index_t W = index_t(lanes<A>);
  for (int j = 0; j < NV; ++j) {
    const index_t c = c0 + j * W;
    if (c + W <= V)
      out[j] = load_f32<A>(row + c);
    else if (c < V)
      out[j] = load_f32_partial<A>(row + c, std::size_t(V - c));
    else
      out[j] = fbatch<A>(0.0f);
  }
}

template <class A, int NV, class T>
inline void gla_store_block(T* row, const fbatch<A> (&x)[NV], index_t c0, index_t V) noexcept {
  constexpr index_t W = index_t(lanes<A>);
  for (int j = 0; j < NV; ++j) {
    const index_t c = c0 + j * W;
    if (c + W <= V)
      store_f32<A>(row + c, x[j]);
    else if (c < V)
      store_f32_partial<A>(row + c, x[j], std::size_t(V - c));
  }
}

/// Keep x in a register: stops the compiler from folding the load into every FMA that reads it
/// (which would load the same cache line once per use and make the matrix kernels load-bound).
template <class A> inline void in_register(fbatch<A>& x) noexcept {
#if defined(__GNUC__) || defined(__clang__)
  typename fbatch<A>::register_type r = x;
  asm("" : "+v"(r));
  x = fbatch<A>(r);
#else
  (void)x;
#endif
}

// ---- scan ----

/// Tokens [0, L) of a segment for the column block at c0: S (K, Vp) in place.
template <class A, int NV, class Act, class Gate>
void gla_scan_block(const gla_args<Act, Gate, float>& a, index_t b, index_t h, index_t t0,
                    index_t L, const float* dq, const float* dd, const float* dk, float* S,
                    index_t Vp, index_t c0) noexcept {
  using B = fbatch<A>;
  constexpr index_t W = index_t(lanes<A>);
  const index_t K = a.q.shape[3], V = a.v.shape[3];
  for (index_t t = 0; t < L; ++t) {
    B v[NV], acc[NV];
    gla_load_block<A, NV>(v, &a.v(b, h, t0 + t, index_t(0)), c0, V);
    for (int j = 0; j < NV; ++j)
      acc[j] = B(0.0f);
    const float* qt = dq + t * K;
    const float* dt = dd + t * K;
    const float* kt = dk + t * K;
    for (index_t n = 0; n < K; ++n) {
      const B bd(dt[n]), bk(kt[n]), bq(qt[n]);
      float* srow = S + n * Vp + c0;
      for (int j = 0; j < NV; ++j) {
        B s = B::load_unaligned(srow + j * W);
        s = xsimd::fma(s, bd, bk * v[j]);
        s.store_unaligned(srow + j * W);
        acc[j] = xsimd::fma(bq, s, acc[j]);
      }
    }
    gla_store_block<A, NV>(&a.o(b, h, t0 + t, index_t(0)), acc, c0, V);
  }
}

// ---- chunked ----

struct gla_chunk_buffers {
  float* qt;    // (Ts, K)  scale * q * exp(G)
  float* kt;    // (Ts, K)  k * exp(Gamma - G)
  double* G;    // (Ts, K)  local inclusive cumsum of g
  float* A;     // (Ts / C, C, C) intra-chunk matrix, zero above the diagonal and past L
  float* decay; // (Ts / C, K) exp(Gamma)
  float* tmp;   // (Ts / C, K) exponent scratch, one row per chunk
};

/// Phase 1 for the chunk of L tokens starting at t0 (index c within the segment).
template <class A, class Act, class Gate>
void gla_chunk_prepare(const gla_args<Act, Gate, float>& a, index_t b, index_t h, index_t t0,
                       index_t L, index_t c, index_t C, const gla_chunk_buffers& buf,
                       float* tmp) noexcept {
  using B = fbatch<A>;
  constexpr index_t W = index_t(lanes<A>);
  const index_t K = a.q.shape[3];
  const float scale = a.scale;
  double* G = buf.G + c * C * K;
  float* qt = buf.qt + c * C * K;
  float* kt = buf.kt + c * C * K;
  float* Am = buf.A + c * C * C;
  float* dec = buf.decay + c * K;
  for (index_t i = 0; i < L; ++i) {
    const Gate* gi = &a.g(b, h, t0 + i, index_t(0));
    for (index_t n = 0; n < K; ++n)
      G[i * K + n] = (i ? G[(i - 1) * K + n] : 0.0) + double(load_as<float>(gi[n]));
  }
  const double* gamma = G + (L - 1) * K;
  for (index_t n = 0; n < K; ++n)
    dec[n] = float(std::exp(gamma[n]));
  const index_t Kv = K / W * W;
  for (index_t i = 0; i < C; ++i) {
    float* qrow = qt + i * K;
    float* krow = kt + i * K;
    if (i >= L) {
      std::fill(qrow, qrow + K, 0.0f);
      std::fill(krow, krow + K, 0.0f);
      std::fill(Am + i * C, Am + (i + 1) * C, 0.0f);
      continue;
    }
    const Act* qi = &a.q(b, h, t0 + i, index_t(0));
    const Gate* ki = &a.k(b, h, t0 + i, index_t(0));
    for (index_t n = 0; n < K; ++n)
      tmp[n] = float(G[i * K + n]);
    for (index_t n = 0; n < Kv; n += W)
      (B(scale) * load_f32<A>(qi + n) * xsimd::exp(B::load_unaligned(tmp + n)))
          .store_unaligned(qrow + n);
    for (index_t n = Kv; n < K; ++n)
      qrow[n] = scale * load_as<float>(qi[n]) * std::exp(tmp[n]);
    for (index_t n = 0; n < K; ++n)
      tmp[n] = float(gamma[n] - G[i * K + n]);
    for (index_t n = 0; n < Kv; n += W)
      (load_f32<A>(ki + n) * xsimd::exp(B::load_unaligned(tmp + n))).store_unaligned(krow + n);
    for (index_t n = Kv; n < K; ++n)
      krow[n] = load_as<float>(ki[n]) * std::exp(tmp[n]);
    // Row i of A: j <= i only (every exponent G_i - G_j <= 0); the rest is set, never computed.
    for (index_t j = 0; j <= i; ++j) {
      const Gate* kj = &a.k(b, h, t0 + j, index_t(0));
      for (index_t n = 0; n < K; ++n)
        tmp[n] = float(G[i * K + n] - G[j * K + n]);
      B acc(0.0f);
      for (index_t n = 0; n < Kv; n += W)
        acc = xsimd::fma(load_f32<A>(qi + n) * load_f32<A>(kj + n),
                         xsimd::exp(B::load_unaligned(tmp + n)), acc);
      float sum = xsimd::hadd(acc);
      for (index_t n = Kv; n < K; ++n)
        sum += load_as<float>(qi[n]) * load_as<float>(kj[n]) * std::exp(tmp[n]);
      Am[i * C + j] = scale * sum;
    }
    std::fill(Am + i * C + i + 1, Am + (i + 1) * C, 0.0f);
  }
}

/// Phase 2 for one column block over the chunks of a segment: outputs, then the state update.
template <class A, int NV, class Act, class Gate>
void gla_chunk_block(const gla_args<Act, Gate, float>& a, index_t b, index_t h, index_t s0,
                     index_t Ls, index_t C, const gla_chunk_buffers& buf, float* S, index_t Vp,
                     index_t c0, float* U /* (C, NV*W) */) noexcept {
  using B = fbatch<A>;
  constexpr index_t W = index_t(lanes<A>);
  constexpr index_t BW = NV * W;
  constexpr int R = 4;
  const index_t K = a.q.shape[3], V = a.v.shape[3];
  for (index_t c = 0, t0 = s0; t0 < s0 + Ls; ++c, t0 += C) {
    const index_t L = std::min(C, s0 + Ls - t0);
    const float* qt = buf.qt + c * C * K;
    const float* kt = buf.kt + c * C * K;
    const float* Am = buf.A + c * C * C;
    const float* dec = buf.decay + c * K;
    for (index_t i = 0; i < L; ++i) {
      B u[NV];
      gla_load_block<A, NV>(u, &a.v(b, h, t0 + i, index_t(0)), c0, V);
      for (int j = 0; j < NV; ++j)
        u[j].store_unaligned(U + i * BW + j * W);
    }
    // o rows i0 .. i0+3: q~ S_in + A v (A is zero past the diagonal and past L).
    for (index_t i0 = 0; i0 < L; i0 += R) {
      B acc[R][NV];
      for (int r = 0; r < R; ++r)
        for (int j = 0; j < NV; ++j)
          acc[r][j] = B(0.0f);
      for (index_t n = 0; n < K; ++n) {
        B s[NV];
        for (int j = 0; j < NV; ++j) {
          s[j] = B::load_unaligned(S + n * Vp + c0 + j * W);
          in_register<A>(s[j]);
        }
        for (int r = 0; r < R; ++r) {
          const B q(qt[(i0 + r) * K + n]);
          for (int j = 0; j < NV; ++j)
            acc[r][j] = xsimd::fma(q, s[j], acc[r][j]);
        }
      }
      const index_t jend = std::min(L, i0 + R);
      for (index_t jj = 0; jj < jend; ++jj) {
        B u[NV];
        for (int j = 0; j < NV; ++j) {
          u[j] = B::load_unaligned(U + jj * BW + j * W);
          in_register<A>(u[j]);
        }
        for (int r = 0; r < R; ++r) {
          const B w(Am[(i0 + r) * C + jj]);
          for (int j = 0; j < NV; ++j)
            acc[r][j] = xsimd::fma(w, u[j], acc[r][j]);
        }
      }
      for (int r = 0; r < R && i0 + r < L; ++r)
        gla_store_block<A, NV>(&a.o(b, h, t0 + i0 + r, index_t(0)), acc[r], c0, V);
    }
    // S rows n .. n+R-1: exp(Gamma) S + k~^T v.
    index_t n = 0;
    for (; n + R <= K; n += R) {
      B s[R][NV];
      for (int r = 0; r < R; ++r) {
        const B d(dec[n + r]);
        for (int j = 0; j < NV; ++j)
          s[r][j] = d * B::load_unaligned(S + (n + r) * Vp + c0 + j * W);
      }
      for (index_t jj = 0; jj < L; ++jj) {
        B u[NV];
        for (int j = 0; j < NV; ++j) {
          u[j] = B::load_unaligned(U + jj * BW + j * W);
          in_register<A>(u[j]);
        }
        for (int r = 0; r < R; ++r) {
          const B w(kt[jj * K + n + r]);
          for (int j = 0; j < NV; ++j)
            s[r][j] = xsimd::fma(w, u[j], s[r][j]);
        }
      }
      for (int r = 0; r < R; ++r)
        for (int j = 0; j < NV; ++j)
          s[r][j].store_unaligned(S + (n + r) * Vp + c0 + j * W);
    }
    for (; n < K; ++n) {
      B s[NV];
      const B d(dec[n]);
      for (int j = 0; j < NV; ++j)
        s[j] = d * B::load_unaligned(S + n * Vp + c0 + j * W);
      for (index_t jj = 0; jj < L; ++jj) {
        const B w(kt[jj * K + n]);
        for (int j = 0; j < NV; ++j)
          s[j] = xsimd::fma(w, B::load_unaligned(U + jj * BW + j * W), s[j]);
      }
      for (int j = 0; j < NV; ++j)
        s[j].store_unaligned(S + n * Vp + c0 + j * W);
    }
  }
}

// ---- workspace layout ----

template <class A> std::size_t gla_scan_cpu_bytes(index_t K, index_t V) noexcept {
  const std::size_t Vp = std::size_t(gla_padded_columns<A>(V));
  return 4 * workspace::alignment + workspace::bytes_for<float>(std::size_t(K) * Vp) +
         3 * workspace::bytes_for<float>(std::size_t(kGlaSegment * K));
}

template <class A> std::size_t gla_chunked_cpu_bytes(index_t K, index_t V, index_t C) noexcept {
  const std::size_t Vp = std::size_t(gla_padded_columns<A>(V));
  const std::size_t Ts = std::size_t(kGlaSegment), k = std::size_t(K);
  return 8 * workspace::alignment + workspace::bytes_for<float>(k * Vp) +
         2 * workspace::bytes_for<float>(Ts * k) + workspace::bytes_for<double>(Ts * k) +
         workspace::bytes_for<float>(Ts * std::size_t(C)) +
         2 * workspace::bytes_for<float>(Ts / std::size_t(C) * k);
}

} // namespace detail

/// Whether gla_scan and gla_chunked() on cpu<Arch> runs the scalar reference for `a` instead of its
/// own kernel (State other than f32, Act or Gate other than f32 / bf16 / f16, an inner stride other
/// than 1). Benchmarks check it, so that they never time the fallback (docs/ARCHITECTURE.md
/// "Fallbacks").
template <class Arch, class Act, class Gate, class State>
[[nodiscard]] bool falls_back_to_scalar(const cpu<Arch>&,
                                        const gla_args<Act, Gate, State>& a) noexcept {
  if constexpr (!detail::gla_cpu_types<Act, Gate, State>)
    return true;
  else
    return !detail::gla_cpu_strides_ok(a);
}

// ---- gla_scan ----

template <class Arch, class Act, class Gate, class State>
std::size_t gla_scan_workspace_bytes(const cpu<Arch>&,
                                     const gla_args<Act, Gate, State>& a) noexcept {
  const index_t K = std::max<index_t>(a.q.shape[3], 0), V = std::max<index_t>(a.v.shape[3], 0);
  return std::max(gla_scan_workspace_bytes(scalar{}, a), detail::gla_scan_cpu_bytes<Arch>(K, V));
}

template <class Arch, class Act, class Gate, class State>
[[nodiscard]] status gla_scan(const cpu<Arch>& be, const gla_args<Act, Gate, State>& a,
                              workspace ws) noexcept {
  if constexpr (!detail::gla_cpu_types<Act, Gate, State>) {
    return gla_scan(scalar{}, a, ws);
  } else {
    RODIMUS_TRY(gla_check(a));
    if (falls_back_to_scalar(be, a)) return gla_scan(scalar{}, a, ws);
    using namespace detail;
    constexpr index_t W = index_t(lanes<Arch>);
    constexpr index_t BW = kGlaBlockVectors * W;
    const index_t K = a.q.shape[3], V = a.v.shape[3];
    const index_t Vp = gla_padded_columns<Arch>(V);
    float* S = ws.take<float>(std::size_t(K * Vp));           // (K, Vp)
    float* dq = ws.take<float>(std::size_t(kGlaSegment * K)); // (Ts, K) scale * q
    float* dd = ws.take<float>(std::size_t(kGlaSegment * K)); // (Ts, K) exp(g)
    float* dk = ws.take<float>(std::size_t(kGlaSegment * K)); // (Ts, K) k
    RODIMUS_REQUIRE(S && dq && dd && dk, workspace_too_small, "ws");
    const index_t blocks = (V + BW - 1) / BW;
    gla_cpu_for_each_segment<Arch>(a, S, Vp, [&](index_t b, index_t h, index_t s0, index_t L) {
      parallel_for(be.pool, 0, L, 16, [&](index_t lo, index_t hi) {
        for (index_t t = lo; t < hi; ++t) {
          const Act* q = &a.q(b, h, s0 + t, index_t(0));
          const Gate* k = &a.k(b, h, s0 + t, index_t(0));
          const Gate* g = &a.g(b, h, s0 + t, index_t(0));
          index_t i = 0;
          for (; i + W <= K; i += W) {
            (fbatch<Arch>(a.scale) * load_f32<Arch>(q + i)).store_unaligned(dq + t * K + i);
            xsimd::exp(load_f32<Arch>(g + i)).store_unaligned(dd + t * K + i);
            load_f32<Arch>(k + i).store_unaligned(dk + t * K + i);
          }
          for (; i < K; ++i) {
            dq[t * K + i] = a.scale * load_as<float>(q[i]);
            dd[t * K + i] = std::exp(load_as<float>(g[i]));
            dk[t * K + i] = load_as<float>(k[i]);
          }
        }
      });
      parallel_for(be.pool, 0, blocks, 1, [&](index_t lo, index_t hi) {
        for (index_t blk = lo; blk < hi; ++blk)
          gla_scan_block<Arch, kGlaBlockVectors>(a, b, h, s0, L, dq, dd, dk, S, Vp, blk * BW);
      });
    });
    return status::success();
  }
}

// ---- gla_chunked ----

template <class Arch, class Act, class Gate, class State>
std::size_t gla_chunked_workspace_bytes(const cpu<Arch>&, const gla_args<Act, Gate, State>& a,
                                        int chunk_size) noexcept {
  const index_t K = std::max<index_t>(a.q.shape[3], 0), V = std::max<index_t>(a.v.shape[3], 0);
  const index_t C = std::max(chunk_size, 1);
  return std::max(gla_chunked_workspace_bytes(scalar{}, a, chunk_size),
                  detail::gla_chunked_cpu_bytes<Arch>(K, V, C));
}

template <class Arch, class Act, class Gate, class State>
[[nodiscard]] status gla_chunked(const cpu<Arch>& be, const gla_args<Act, Gate, State>& a,
                                 int chunk_size, workspace ws) noexcept {
  RODIMUS_TRY(gla_chunked_check(a, chunk_size));
  RODIMUS_REQUIRE(gla_chunk_size_supported(chunk_size), unsupported, "chunk_size");
  if constexpr (!detail::gla_cpu_types<Act, Gate, State>) {
    return gla_chunked(scalar{}, a, chunk_size, ws);
  } else {
    if (falls_back_to_scalar(be, a)) return gla_chunked(scalar{}, a, chunk_size, ws);
    using namespace detail;
    constexpr index_t W = index_t(lanes<Arch>);
    constexpr index_t BW = kGlaBlockVectors * W;
    const index_t K = a.q.shape[3], V = a.v.shape[3];
    const index_t C = chunk_size, Ts = kGlaSegment;
    const index_t Vp = gla_padded_columns<Arch>(V);
    float* S = ws.take<float>(std::size_t(K * Vp)); // (K, Vp)
    gla_chunk_buffers buf;
    buf.qt = ws.take<float>(std::size_t(Ts * K));
    buf.kt = ws.take<float>(std::size_t(Ts * K));
    buf.G = ws.take<double>(std::size_t(Ts * K));
    buf.A = ws.take<float>(std::size_t(Ts * C));
    buf.decay = ws.take<float>(std::size_t(Ts / C * K));
    buf.tmp = ws.take<float>(std::size_t(Ts / C * K));
    RODIMUS_REQUIRE(S && buf.qt && buf.kt && buf.G && buf.A && buf.decay && buf.tmp,
                    workspace_too_small, "ws");
    const index_t blocks = (V + BW - 1) / BW;
    gla_cpu_for_each_segment<Arch>(a, S, Vp, [&](index_t b, index_t h, index_t s0, index_t Ls) {
      const index_t chunks = (Ls + C - 1) / C;
      parallel_for(be.pool, 0, chunks, 1, [&](index_t lo, index_t hi) {
        for (index_t c = lo; c < hi; ++c)
          gla_chunk_prepare<Arch>(a, b, h, s0 + c * C, std::min(C, Ls - c * C), c, C, buf,
                                  buf.tmp + c * K);
      });
      parallel_for(be.pool, 0, blocks, 1, [&](index_t lo, index_t hi) {
        alignas(64) float U[128 * BW]; // (C, BW) the chunk's v block, f32
        for (index_t blk = lo; blk < hi; ++blk)
          gla_chunk_block<Arch, kGlaBlockVectors>(a, b, h, s0, Ls, C, buf, S, Vp, blk * BW, U);
      });
    });
    return status::success();
  }
}

// ---- gla_decode ----

template <class Arch, class Act, class Gate, class State>
std::size_t gla_decode_workspace_bytes(const cpu<Arch>&,
                                       const gla_decode_args<Act, Gate, State>& a) noexcept {
  const std::size_t B = std::size_t(std::max<index_t>(a.q.shape[0], 0));
  const std::size_t H = std::size_t(std::max<index_t>(a.q.shape[1], 0));
  const std::size_t K = std::size_t(std::max<index_t>(a.q.shape[2], 0));
  return std::max(gla_decode_workspace_bytes(scalar{}, a),
                  2 * workspace::alignment + workspace::bytes_for<float>(3 * B * H * K));
}

// g++ 12 reports the _mm512_undefined_*() inside AVX-512 intrinsics as uninitialised once they
// are inlined here (see simd.hpp); silenced for the decode helpers only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace detail {

/// Vectors per decode column block: 256 columns, 1 KiB of each state row (shorter row pieces
/// stream worse: AVX2 with 256 B pieces ran at 52 GB/s, with 1 KiB at 72 GB/s on the build
/// machine, B = 64).
template <class A> constexpr int gla_decode_block_vectors = int(256 / lanes<A>);
// A decode block's state rows are prefetched twice: into L2 kGlaDecodeL2PrefetchBytes of the
// block's rows ahead (the stream going on into the thread's next block), and into L1, for
// writing, kGlaDecodePrefetchBytes ahead. With the L1 prefetch alone (then 4 KiB ahead) a thread
// kept too few lines in flight (bench/results/2026-12-08-cpu-gla-decode-prefetch).
constexpr index_t kGlaDecodeL2PrefetchBytes = 16384;
constexpr index_t kGlaDecodePrefetchBytes = 2048;
constexpr int kGlaDecodeRegisterVectors = 16; // output accumulators kept in registers

/// One decode column block of NV vectors at column c0 for state p: S = exp(g) S + k^T v row by
/// row, o = scale q S accumulated in registers (NV <= 16: AVX-512) or in an L1 buffer (AVX2,
/// whose 16 registers cannot hold a block). v, widened once, is read from L1.
/// pq: (3, K) scale*q, exp(g), k in f32. first: no block before this one prefetched its first
/// rows (the first of a thread's run, or one after a block that had no `next`), so they are
/// prefetched here; next: the first state row of the run's next block (nullptr: none), into
/// which this block's L2 prefetch goes on (its first rows, when K >= the L2 distance in rows).
template <class A, int NV, class Act, class Gate, class State>
inline void gla_decode_block(const gla_decode_args<Act, Gate, State>& a, const float* pq, index_t b,
                             index_t h, index_t p, index_t c0, bool first,
                             const float* next) noexcept {
  using B = fbatch<A>;
  constexpr index_t W = index_t(lanes<A>);
  const index_t K = a.q.shape[2];
  alignas(64) float vb[NV * W]; // (NV * W) v, f32
  const Act* vrow = &a.v(b, h, c0);
  for (int j = 0; j < NV; ++j)
    load_f32<A>(vrow + j * W).store_aligned(vb + j * W);
  constexpr bool in_registers = NV <= kGlaDecodeRegisterVectors;
  B acc[in_registers ? NV : 1];
  alignas(64) float acc_l1[in_registers ? 1 : NV * W];
  for (int j = 0; j < NV; ++j) {
    if constexpr (in_registers)
      acc[j] = B(0.0f);
    else
      B(0.0f).store_aligned(acc_l1 + j * W);
  }
  float* s0 = &a.state(p, h, 0, c0);
  const index_t rs = a.state.stride[2];
  constexpr int lines = int(NV * W * 4 / 64);
  constexpr index_t ahead = kGlaDecodePrefetchBytes / (NV * W * 4);      // rows, into L1
  constexpr index_t ahead_l2 = kGlaDecodeL2PrefetchBytes / (NV * W * 4); // rows, into L2
  const auto prefetch_row_l2 = [&](const float* row) {
    for (int l = 0; l < lines; ++l)
      prefetch_line_l2(row + l * 16);
  };
  if (first)
    for (index_t n = 0; n < std::min(ahead_l2, K); ++n)
      prefetch_row_l2(s0 + n * rs);
  for (index_t n = 0; n < K; ++n) {
    float* srow = s0 + n * rs;
    if (n + ahead_l2 < K)
      prefetch_row_l2(srow + ahead_l2 * rs);
    else if (next != nullptr && n + ahead_l2 - K < K)
      prefetch_row_l2(next + (n + ahead_l2 - K) * rs);
    if (n + ahead < K)
      for (int l = 0; l < lines; ++l)
        prefetch_for_write(srow + ahead * rs + l * 16);
    const B bq(pq[n]), bd(pq[K + n]), bk(pq[2 * K + n]);
    for (int j = 0; j < NV; ++j) {
      const B s = xsimd::fma(B::load_unaligned(srow + j * W), bd, bk * B::load_aligned(vb + j * W));
      s.store_unaligned(srow + j * W);
      if constexpr (in_registers)
        acc[j] = xsimd::fma(bq, s, acc[j]);
      else
        xsimd::fma(bq, s, B::load_aligned(acc_l1 + j * W)).store_aligned(acc_l1 + j * W);
    }
  }
  Act* orow = &a.o(b, h, c0);
  for (int j = 0; j < NV; ++j) {
    if constexpr (in_registers)
      store_f32<A>(orow + j * W, acc[j]);
    else
      store_f32<A>(orow + j * W, B::load_aligned(acc_l1 + j * W));
  }
}

/// The last nc (< one block) columns from c0, element by element.
template <class A, class Act, class Gate, class State>
inline void gla_decode_columns(const gla_decode_args<Act, Gate, State>& a, const float* pq,
                               index_t b, index_t h, index_t p, index_t c0, index_t nc) noexcept {
  const index_t K = a.q.shape[2];
  for (index_t j = 0; j < nc; ++j) {
    const float v = load_as<float>(a.v(b, h, c0 + j));
    float acc = 0.0f;
    for (index_t n = 0; n < K; ++n) {
      float& s = a.state(p, h, n, c0 + j);
      s = s * pq[K + n] + pq[2 * K + n] * v;
      acc += pq[n] * s;
    }
    a.o(b, h, c0 + j) = store_as<Act>(acc);
  }
}

} // namespace detail

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

/// Whether gla_decode() on cpu<Arch> runs the scalar reference for `a` instead of its own kernel
/// (State other than f32, Act or Gate other than f32 / bf16 / f16, an inner stride other than 1).
/// Benchmarks check it, so that they never time the fallback (docs/ARCHITECTURE.md "Fallbacks").
template <class Arch, class Act, class Gate, class State>
[[nodiscard]] bool falls_back_to_scalar(const cpu<Arch>&,
                                        const gla_decode_args<Act, Gate, State>& a) noexcept {
  if constexpr (!detail::gla_cpu_types<Act, Gate, State>)
    return true;
  else
    return a.q.stride[2] != 1 || a.k.stride[2] != 1 || a.g.stride[2] != 1 || a.v.stride[2] != 1 ||
           a.o.stride[2] != 1 || a.state.stride[3] != 1;
}

template <class Arch, class Act, class Gate, class State>
[[nodiscard]] status gla_decode(const cpu<Arch>& be, const gla_decode_args<Act, Gate, State>& a,
                                workspace ws) noexcept {
  if constexpr (!detail::gla_cpu_types<Act, Gate, State>) {
    return gla_decode(scalar{}, a, ws);
  } else {
    RODIMUS_TRY(gla_decode_check(a));
    if (falls_back_to_scalar(be, a)) return gla_decode(scalar{}, a, ws);
    using namespace detail;
    constexpr index_t W = index_t(lanes<Arch>);
    const index_t Bn = a.q.shape[0], H = a.q.shape[1], K = a.q.shape[2], V = a.v.shape[2];
    if (Bn == 0 || H == 0) return status::success();
    float* pre = ws.take<float>(std::size_t(3 * Bn * H * K)); // (B, H, 3, K): scale*q, exp(g), k
    RODIMUS_REQUIRE(pre, workspace_too_small, "ws");
    for (index_t b = 0; b < Bn; ++b)
      for (index_t h = 0; h < H; ++h) {
        float* p = pre + (b * H + h) * 3 * K;
        for (index_t i = 0; i < K; ++i) {
          p[i] = a.scale * load_as<float>(a.q(b, h, i));
          p[K + i] = std::exp(load_as<float>(a.g(b, h, i)));
          p[2 * K + i] = load_as<float>(a.k(b, h, i));
        }
      }
    // Work items: (row, head, block of CB columns); a thread claims a contiguous run of them.
    // Within an item the output block and v stay in registers while the K state rows stream
    // through, prefetched ahead into L2 and L1 (the L2 prefetch going on into the next item).
    constexpr int NV = gla_decode_block_vectors<Arch>;
    constexpr index_t CB = NV * W;
    const index_t blocks = (V + CB - 1) / CB;
    parallel_for(be.pool, 0, Bn * H * blocks, std::max<index_t>(1, 32768 / (K * CB)),
                 [&](index_t lo, index_t hi) {
                   bool primed = false; // the item's first rows prefetched by the one before
                   for (index_t item = lo; item < hi; ++item) {
                     const index_t b = item / (H * blocks), h = (item / blocks) % H,
                                   c0 = (item % blocks) * CB;
                     const index_t p = slot_at(a.slot, b);
                     if (is_padding_slot(p)) { // o row and state untouched
                       primed = false;
                       continue;
                     }
                     const float* pq = pre + (b * H + h) * 3 * K;
                     const float* next = nullptr; // the next item's state block
                     if (item + 1 < hi) {
                       const index_t i1 = item + 1, b1 = i1 / (H * blocks);
                       const index_t h1 = (i1 / blocks) % H, c1 = (i1 % blocks) * CB;
                       const index_t p1 = slot_at(a.slot, b1);
                       if (!is_padding_slot(p1) && c1 + CB <= V) next = &a.state(p1, h1, 0, c1);
                     }
                     if (c0 + CB <= V)
                       gla_decode_block<Arch, NV>(a, pq, b, h, p, c0, !primed, next);
                     else
                       gla_decode_columns<Arch>(a, pq, b, h, p, c0, V - c0);
                     primed = next != nullptr && c0 + CB <= V;
                   }
                 });
    return status::success();
  }
}

} // namespace rodimus
