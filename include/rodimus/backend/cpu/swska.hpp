// Shared-key sliding-window attention on the CPU backend (math, shapes and the ring layout in
// rodimus/primitives/swska.hpp).
//
// swska_decode (SIMD, f32 arithmetic): the new keys/values go into the rings first (a token
// attends itself), then two parallel phases:
//   1. scores s[b, h, j] = scale * <q[b, h], k_j[h % Hk]> for the window's keys j: threads take
//      (row, key head, block of 64 keys); every key row is loaded once into registers and dotted
//      with all the query heads that share it (Hq / Hk of them).
//   2. per (row, query head): softmax over the scores (max subtracted, f32 exp) and
//      o = sum_j p_j v_j[h % Hv] with the D-vector accumulated in registers.
//   Workspace: (B, Hq, W) f32 scores. Needs unit inner strides and D = 2^i SIMD widths, at most
//   256; otherwise, and for swska_prefill / swska_ring_store, the scalar reference runs
//   (double arithmetic, correct for every shape).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>

#include "rodimus/backend/cpu/cpu.hpp"
#include "rodimus/backend/cpu/simd.hpp"
#include "rodimus/primitives/swska.hpp"

// g++ 12 reports the _mm512_undefined_*() inside AVX-512 intrinsics as uninitialised once they
// are inlined here (see simd.hpp); silenced for this header's kernels only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace rodimus {

namespace detail {

constexpr index_t kSwskaMaxD = 256;    // head dimension the SIMD decode keeps in registers
constexpr index_t kSwskaKeyBlock = 64; // keys per phase-1 work item

template <class Arch, class Act> bool swska_decode_simd_ok(const swska_decode_args<Act>& a) {
  constexpr index_t W = index_t(lanes<Arch>);
  const index_t D = a.q.shape[2];
  const index_t dv = D / W; // vectors per head row: a power of two (the kernels are stamped so)
  return cpu_storage_type<Act> && (lanes<Arch> == 16 || lanes<Arch> == 8) && D % W == 0 &&
         D <= kSwskaMaxD && dv > 0 && (dv & (dv - 1)) == 0 && a.q.stride[2] == 1 &&
         a.k.stride[2] == 1 && a.v.stride[2] == 1 && a.o.stride[2] == 1 &&
         a.ring_k.stride[3] == 1 && a.ring_v.stride[3] == 1;
}

/// Phase 1 for one (row b on ring s, key head hk, keys jb..je): scores of every query head
/// h = hk, hk + Hk, ... into sc + h * W + (j - j0).
template <class A, int DV, class Act>
void swska_scores(const swska_decode_args<Act>& a, index_t b, index_t s, index_t hk, index_t j0,
                  index_t jb, index_t je, float scale, float* sc) noexcept {
  using B = fbatch<A>;
  constexpr index_t L = index_t(lanes<A>);
  const index_t Hq = a.q.shape[1], Hk = a.k.shape[1], W = a.ring_k.shape[1];
  for (index_t j = jb; j < je; ++j) {
    const Act* kr = &a.ring_k(s, j % W, hk, 0);
    B kv[DV];
    for (int d = 0; d < DV; ++d)
      kv[d] = load_f32<A>(kr + d * L);
    for (index_t h = hk; h < Hq; h += Hk) {
      const Act* qr = &a.q(b, h, 0);
      B acc0 = load_f32<A>(qr) * kv[0], acc1(0.0f);
      for (int d = 1; d < DV; ++d) {
        if (d % 2)
          acc1 = xsimd::fma(load_f32<A>(qr + d * L), kv[d], acc1);
        else
          acc0 = xsimd::fma(load_f32<A>(qr + d * L), kv[d], acc0);
      }
      sc[h * W + (j - j0)] = scale * xsimd::hadd(acc0 + acc1);
    }
  }
}

/// Phase 2 for one (row b on ring s, query head h): softmax over n = p - j0 + 1 scores, then the
/// weighted sum of the values.
template <class A, int DV, class Act>
void swska_combine(const swska_decode_args<Act>& a, index_t b, index_t s, index_t h, index_t j0,
                   index_t n, float* sc) noexcept {
  using B = fbatch<A>;
  constexpr index_t L = index_t(lanes<A>);
  const index_t Hv = a.v.shape[1], W = a.ring_v.shape[1];
  const index_t nv = n / L * L;
  float m = -std::numeric_limits<float>::infinity();
  {
    B mv(m);
    for (index_t j = 0; j < nv; j += L)
      mv = xsimd::max(mv, B::load_unaligned(sc + j));
    alignas(64) float lanes_max[L];
    mv.store_aligned(lanes_max);
    for (index_t i = 0; i < L; ++i)
      m = std::max(m, lanes_max[i]);
    for (index_t j = nv; j < n; ++j)
      m = std::max(m, sc[j]);
  }
  float sum = 0.0f;
  {
    const B mb(m);
    B sv(0.0f);
    for (index_t j = 0; j < nv; j += L) {
      const B e = xsimd::exp(B::load_unaligned(sc + j) - mb);
      e.store_unaligned(sc + j);
      sv += e;
    }
    sum = xsimd::hadd(sv);
    for (index_t j = nv; j < n; ++j) {
      sc[j] = std::exp(sc[j] - m);
      sum += sc[j];
    }
  }
  B acc[DV];
  for (int d = 0; d < DV; ++d)
    acc[d] = B(0.0f);
  const index_t hv = h % Hv;
  for (index_t j = 0; j < n; ++j) {
    const Act* vr = &a.ring_v(s, (j0 + j) % W, hv, 0);
    const B pj(sc[j]);
    for (int d = 0; d < DV; ++d)
      acc[d] = xsimd::fma(pj, load_f32<A>(vr + d * L), acc[d]);
  }
  const B inv(1.0f / sum);
  Act* o = &a.o(b, h, 0);
  for (int d = 0; d < DV; ++d)
    store_f32<A>(o + d * L, acc[d] * inv);
}

template <class A, int DV, class Act>
void swska_decode_simd(const cpu<A>& be, const swska_decode_args<Act>& a, float* scores) noexcept {
  const index_t B = a.q.shape[0], Hq = a.q.shape[1], D = a.q.shape[2];
  const index_t Hk = a.k.shape[1], W = a.ring_k.shape[1];
  const index_t wl = a.window_left;
  const float scale = a.scale != 0.0f ? a.scale : float(1.0 / std::sqrt(double(D)));
  auto ring_of = [&](index_t b) { return a.slot ? index_t(a.slot[b]) : b; };
  auto first_key = [&](index_t b) {
    return wl < 0 ? index_t(0) : std::max<index_t>(0, index_t(a.position[b]) - wl);
  };
  // Phase 1: items (b, hk, key block).
  const index_t kblocks = (W + kSwskaKeyBlock - 1) / kSwskaKeyBlock;
  parallel_for(be.pool, 0, B * Hk * kblocks, 1, [&](index_t lo, index_t hi) {
    for (index_t item = lo; item < hi; ++item) {
      const index_t b = item / (Hk * kblocks), hk = (item / kblocks) % Hk;
      const index_t s = ring_of(b);
      if (s < 0) continue;
      const index_t j0 = first_key(b), p = a.position[b];
      const index_t jb = j0 + (item % kblocks) * kSwskaKeyBlock;
      const index_t je = std::min(p + 1, jb + kSwskaKeyBlock);
      if (jb < je) swska_scores<A, DV>(a, b, s, hk, j0, jb, je, scale, scores + b * Hq * W);
    }
  });
  // Phase 2: items (b, h).
  parallel_for(be.pool, 0, B * Hq, 1, [&](index_t lo, index_t hi) {
    for (index_t item = lo; item < hi; ++item) {
      const index_t b = item / Hq, h = item % Hq;
      const index_t s = ring_of(b);
      if (s < 0) {
        for (index_t d = 0; d < D; ++d)
          a.o(b, h, d) = store_as<Act>(0.0f);
        continue;
      }
      const index_t j0 = first_key(b);
      swska_combine<A, DV>(a, b, s, h, j0, index_t(a.position[b]) - j0 + 1,
                           scores + (b * Hq + h) * W);
    }
  });
}

} // namespace detail

template <class Arch, class Act>
std::size_t swska_prefill_workspace_bytes(const cpu<Arch>&, const swska_args<Act>& a) noexcept {
  return swska_prefill_workspace_bytes(scalar{}, a);
}

template <class Arch, class Act>
std::size_t swska_decode_workspace_bytes(const cpu<Arch>&,
                                         const swska_decode_args<Act>& a) noexcept {
  const std::size_t B = std::size_t(std::max<index_t>(a.q.shape[0], 0));
  const std::size_t Hq = std::size_t(std::max<index_t>(a.q.shape[1], 0));
  const std::size_t W = std::size_t(std::max<index_t>(a.ring_k.shape[1], 0));
  return std::max(
      swska_decode_workspace_bytes(scalar{}, a),
      workspace::sum(workspace::alignment, workspace::bytes_for<float>(
                                               workspace::product(workspace::product(B, Hq), W))));
}

template <class Arch, class Act>
[[nodiscard]] status swska_prefill(const cpu<Arch>&, const swska_args<Act>& a,
                                   workspace ws) noexcept {
  return swska_prefill(scalar{}, a, ws);
}

template <class Arch, class Act>
[[nodiscard]] status swska_decode(const cpu<Arch>& be, const swska_decode_args<Act>& a,
                                  workspace ws) noexcept {
  RODIMUS_TRY(swska_decode_check(a));
  if constexpr (!detail::cpu_storage_type<Act>) {
    return swska_decode(scalar{}, a, ws);
  } else {
    if (!detail::swska_decode_simd_ok<Arch>(a)) return swska_decode(scalar{}, a, ws);
    const index_t B = a.q.shape[0], Hq = a.q.shape[1], D = a.q.shape[2];
    const index_t Hk = a.k.shape[1], Hv = a.v.shape[1];
    const index_t P = a.ring_k.shape[0], W = a.ring_k.shape[1];
    // The host-side checks of the scalar reference, before anything is written.
    for (index_t b = 0; b < B; ++b) {
      const index_t s = a.slot ? index_t(a.slot[b]) : b;
      if (s < 0) continue;
      RODIMUS_REQUIRE(s < P, bad_argument, "slot");
      for (index_t c = 0; a.slot && c < b; ++c)
        RODIMUS_REQUIRE(a.slot[c] != s, bad_argument, "slot");
      RODIMUS_REQUIRE(a.position[b] >= 0, bad_argument, "position");
      RODIMUS_REQUIRE(a.window_left >= 0 || a.position[b] < W, bad_argument, "position");
    }
    float* scores = ws.take<float>(std::size_t(B * Hq * W)); // (B, Hq, W)
    RODIMUS_REQUIRE(scores || B * Hq * W == 0, workspace_too_small, "workspace");
    for (index_t b = 0; b < B; ++b) {
      const index_t s = a.slot ? index_t(a.slot[b]) : b;
      if (s < 0) continue;
      const index_t w = index_t(a.position[b]) % W;
      for (index_t h = 0; h < Hk; ++h)
        std::copy(&a.k(b, h, 0), &a.k(b, h, 0) + D, &a.ring_k(s, w, h, 0));
      for (index_t h = 0; h < Hv; ++h)
        std::copy(&a.v(b, h, 0), &a.v(b, h, 0) + D, &a.ring_v(s, w, h, 0));
    }
    constexpr index_t L = index_t(detail::lanes<Arch>);
    switch (D / L) {
    case 1: detail::swska_decode_simd<Arch, 1>(be, a, scores); break;
    case 2: detail::swska_decode_simd<Arch, 2>(be, a, scores); break;
    case 4: detail::swska_decode_simd<Arch, 4>(be, a, scores); break;
    case 8: detail::swska_decode_simd<Arch, 8>(be, a, scores); break;
    case 16: detail::swska_decode_simd<Arch, 16>(be, a, scores); break;
    case 32: detail::swska_decode_simd<Arch, 32>(be, a, scores); break;
    default: break; // excluded by swska_decode_simd_ok
    }
    return status::success();
  }
}

template <class Arch, class Act>
[[nodiscard]] status swska_ring_store(const cpu<Arch>&,
                                      const swska_ring_store_args<Act>& a) noexcept {
  return swska_ring_store(scalar{}, a);
}

} // namespace rodimus

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
