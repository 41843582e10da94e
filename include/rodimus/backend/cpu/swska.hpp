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
//   Workspace: (B, Hq, W) f32 scores. With rotary_dim > 0, q and k are first rotated into copies
//   (the cpu rotary, as the reference defines it: backend/scalar/swska.hpp), which the workspace
//   holds too.
//
// swska_prefill (SIMD, f32 arithmetic, online softmax): work items are (sequence, block of
// kSwskaQueryBlock queries); threads take items strided over S scratch slots. An item walks the
// union of its queries' windows [p - window_left, p] (keys before the sequence's first token come
// from the history ring) in blocks of kSwskaKeyBlock keys:
//   1. every key row is loaded once into registers and dotted with the block's query rows of all
//      the query heads that share it (scores, f32);
//   2. per (query, head): running max / sum update and acc = acc * alpha + sum_j p_j v_j (the
//      D-vector accumulated in registers, stored in the slot's (Qb, Hq, D) accumulator).
//   Workspace: S slots of (Qb, Hq) x (Kb scores + D accumulator + max + sum) f32, plus the
//   (N + 1) block offsets of the sequences.
//
// Both need unit inner strides and D = 2^i SIMD widths, at most 256; otherwise, and for
// swska_ring_store, the scalar reference runs (double arithmetic, correct for every shape).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>

#include "rodimus/backend/cpu/cpu.hpp"
#include "rodimus/backend/cpu/rotary.hpp"
#include "rodimus/backend/cpu/simd.hpp"
#include "rodimus/backend/scalar/swska.hpp" // the fallback for what this backend does not cover
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
  auto ring_of = [&](index_t b) { return slot_at(a.slot, b); };
  auto first_key = [&](index_t b) {
    return wl < 0 ? index_t(0) : std::max<index_t>(0, index_t(a.position[b]) - wl);
  };
  // Phase 1: items (b, hk, key block).
  const index_t kblocks = (W + kSwskaKeyBlock - 1) / kSwskaKeyBlock;
  parallel_for(be.pool, 0, B * Hk * kblocks, 1, [&](index_t lo, index_t hi) {
    for (index_t item = lo; item < hi; ++item) {
      const index_t b = item / (Hk * kblocks), hk = (item / kblocks) % Hk;
      const index_t s = ring_of(b);
      if (is_padding_slot(s)) continue;
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
      if (is_padding_slot(s)) continue; // o row untouched
      const index_t j0 = first_key(b);
      swska_combine<A, DV>(a, b, s, h, j0, index_t(a.position[b]) - j0 + 1,
                           scores + (b * Hq + h) * W);
    }
  });
}

constexpr index_t kSwskaQueryBlock = 16; // queries per prefill work item

template <class Arch, class Act> bool swska_prefill_simd_ok(const swska_args<Act>& a) {
  constexpr index_t W = index_t(lanes<Arch>);
  const index_t D = a.q.shape[3];
  const index_t dv = D / W;
  bool ok = cpu_storage_type<Act> && (lanes<Arch> == 16 || lanes<Arch> == 8) && D % W == 0 &&
            D <= kSwskaMaxD && dv > 0 && (dv & (dv - 1)) == 0 && a.q.stride[3] == 1 &&
            a.k.stride[3] == 1 && a.v.stride[3] == 1 && a.o.stride[3] == 1;
  if (a.history_k.data) ok = ok && a.history_k.stride[3] == 1 && a.history_v.stride[3] == 1;
  return ok;
}

/// Scratch slots of the prefill: enough for every participant to take a few.
inline index_t swska_prefill_slots(const thread_pool* pool, index_t items) noexcept {
  const index_t threads = pool ? index_t(pool->size()) : 1;
  return std::max<index_t>(1, std::min<index_t>(items, 4 * threads));
}

/// Upper bound of the prefill's work items (each packed sequence adds at most one partial block).
template <class Act> index_t swska_prefill_items_bound(const swska_args<Act>& a) noexcept {
  const index_t B = std::max<index_t>(a.q.shape[0], 0), T = std::max<index_t>(a.q.shape[1], 0);
  const index_t N = a.cu_seqlens ? index_t(std::max<std::int64_t>(a.num_seqs, 0)) : B;
  return B * ((T + kSwskaQueryBlock - 1) / kSwskaQueryBlock) + (a.cu_seqlens ? N : 0);
}

/// floats per scratch slot: (Qb, Hq) x (Kb scores, D accumulator, max, sum, rescaling).
inline index_t swska_prefill_slot_floats(index_t Hq, index_t D) noexcept {
  return kSwskaQueryBlock * Hq * (kSwskaKeyBlock + D + 3);
}

/// For QT queries (rows r = 0..QT-1 at w + r * w_stride, acc + r * acc_stride, al[r * al_stride])
/// of one head: acc = acc * al + sum_{j < nk} w[j] v_{jb + j}[hv], in chunks of up to 4 vectors
/// of D so that the QT x chunk accumulators stay in registers.
template <class A, int DV, int QT, class Act, class Value>
void swska_weighted_values(const swska_args<Act>&, const Value& value, index_t hv, index_t jb,
                           index_t nk, const float* w, index_t w_stride, float* acc,
                           index_t acc_stride, const float* al, index_t al_stride) noexcept {
  using B = fbatch<A>;
  constexpr index_t L = index_t(lanes<A>);
  constexpr int CV = DV < 4 ? DV : 4;
  for (int c = 0; c < DV; c += CV) {
    B o[QT][CV];
    for (int r = 0; r < QT; ++r) {
      const B scale_r(al[r * al_stride]);
      for (int d = 0; d < CV; ++d)
        o[r][d] = B::load_unaligned(acc + r * acc_stride + (c + d) * L) * scale_r;
    }
    for (index_t j = 0; j < nk; ++j) {
      const Act* vr = value(jb + j, hv) + c * L;
      B vv[CV];
      for (int d = 0; d < CV; ++d)
        vv[d] = load_f32<A>(vr + d * L);
      for (int r = 0; r < QT; ++r) {
        const B wj(w[r * w_stride + j]);
        for (int d = 0; d < CV; ++d)
          o[r][d] = xsimd::fma(wj, vv[d], o[r][d]);
      }
    }
    for (int r = 0; r < QT; ++r)
      for (int d = 0; d < CV; ++d)
        o[r][d].store_unaligned(acc + r * acc_stride + (c + d) * L);
  }
}

/// One prefill work item: queries t0..t1 of sequence range r (absolute positions hist + t -
/// r.begin), keys from the history ring slot hs (positions < hist) and from k/v.
template <class A, int DV, class Act>
void swska_prefill_item(const swska_args<Act>& a, const sequence_range& r, index_t hist, index_t hs,
                        index_t t0, index_t t1, float scale, float* slot) noexcept {
  using B = fbatch<A>;
  constexpr index_t L = index_t(lanes<A>);
  constexpr index_t D = index_t(DV) * L;
  constexpr index_t Kb = kSwskaKeyBlock;
  const index_t Hq = a.q.shape[2], Hk = a.k.shape[2], Hv = a.v.shape[2];
  const index_t W = a.history_k.data ? a.history_k.shape[1] : 1;
  const index_t wl = a.window_left;
  const index_t nq = t1 - t0;
  float* sc = slot;                             // (Qb, Hq, Kb)
  float* acc = sc + kSwskaQueryBlock * Hq * Kb; // (Qb, Hq, D)
  float* mx = acc + kSwskaQueryBlock * Hq * D;  // (Qb, Hq)
  float* sm = mx + kSwskaQueryBlock * Hq;       // (Qb, Hq)
  float* al = sm + kSwskaQueryBlock * Hq;       // (Qb, Hq)
  constexpr index_t QT = L == 16 ? 4 : 2; // queries per value pass (accumulators in registers)
  const float ninf = -std::numeric_limits<float>::infinity();
  for (index_t i = 0; i < nq * Hq; ++i) {
    mx[i] = ninf;
    sm[i] = 0.0f;
  }
  std::fill(acc, acc + nq * Hq * D, 0.0f);
  auto pos = [&](index_t t) { return hist + (t - r.begin); };
  auto first = [&](index_t p) { return wl < 0 ? index_t(0) : std::max<index_t>(0, p - wl); };
  auto key = [&](index_t j, index_t hk) -> const Act* {
    if (j < hist) return &a.history_k(hs, j % W, hk, 0);
    return &a.k(r.batch, r.begin + (j - hist), hk, 0);
  };
  auto value = [&](index_t j, index_t hv) -> const Act* {
    if (j < hist) return &a.history_v(hs, j % W, hv, 0);
    return &a.v(r.batch, r.begin + (j - hist), hv, 0);
  };
  const index_t jfirst = first(pos(t0)), jlast = pos(t1 - 1);
  for (index_t jb = jfirst; jb <= jlast; jb += Kb) {
    const index_t je = std::min(jlast + 1, jb + Kb);
    // 1. scores: each key row once for every query (and query head) that sees it.
    for (index_t hk = 0; hk < Hk; ++hk) {
      for (index_t j = jb; j < je; ++j) {
        const Act* kr = key(j, hk);
        B kv[DV];
        for (int d = 0; d < DV; ++d)
          kv[d] = load_f32<A>(kr + d * L);
        for (index_t i = 0; i < nq; ++i) {
          const index_t p = pos(t0 + i);
          if (j > p || j < first(p)) continue;
          for (index_t h = hk; h < Hq; h += Hk) {
            const Act* qr = &a.q(r.batch, t0 + i, h, 0);
            B acc0 = load_f32<A>(qr) * kv[0], acc1(0.0f);
            for (int d = 1; d < DV; ++d) {
              if (d % 2)
                acc1 = xsimd::fma(load_f32<A>(qr + d * L), kv[d], acc1);
              else
                acc0 = xsimd::fma(load_f32<A>(qr + d * L), kv[d], acc0);
            }
            sc[(i * Hq + h) * Kb + (j - jb)] = scale * xsimd::hadd(acc0 + acc1);
          }
        }
      }
    }
    // 2a. online softmax per (query, head): weights exp(s - max) over the query's keys in this
    // block, 0 for the block's other keys; al = the rescaling of the earlier blocks' sums.
    const index_t nk = je - jb;
    for (index_t i = 0; i < nq; ++i) {
      const index_t p = pos(t0 + i);
      const index_t lo = std::max(jb, first(p)) - jb, hi = std::min(je, p + 1) - jb;
      for (index_t h = 0; h < Hq; ++h) {
        const index_t row = i * Hq + h;
        float* s = sc + row * Kb;
        if (lo >= hi) {
          std::fill(s, s + nk, 0.0f);
          al[row] = 1.0f;
          continue;
        }
        std::fill(s, s + lo, 0.0f);
        std::fill(s + hi, s + nk, 0.0f);
        float m = mx[row];
        for (index_t j = lo; j < hi; ++j)
          m = std::max(m, s[j]);
        al[row] = std::exp(mx[row] - m); // 0 on the first block (max was -inf)
        mx[row] = m;
        const B mb(m);
        B sv(0.0f);
        index_t j = lo;
        for (; j + L <= hi; j += L) {
          const B e = xsimd::exp(B::load_unaligned(s + j) - mb);
          e.store_unaligned(s + j);
          sv += e;
        }
        float sum = xsimd::hadd(sv);
        for (; j < hi; ++j) {
          s[j] = std::exp(s[j] - m);
          sum += s[j];
        }
        sm[row] = sm[row] * al[row] + sum;
      }
    }
    // 2b. acc = acc * al + sum_j w_j v_j: each value row chunk is loaded once for QT queries.
    for (index_t h = 0; h < Hq; ++h) {
      const index_t hv = h % Hv;
      index_t i = 0;
      for (; i + QT <= nq; i += QT)
        swska_weighted_values<A, DV, QT>(a, value, hv, jb, nk, sc + (i * Hq + h) * Kb, Hq * Kb,
                                         acc + (i * Hq + h) * D, Hq * D, al + i * Hq + h, Hq);
      for (; i < nq; ++i)
        swska_weighted_values<A, DV, 1>(a, value, hv, jb, nk, sc + (i * Hq + h) * Kb, Hq * Kb,
                                        acc + (i * Hq + h) * D, Hq * D, al + i * Hq + h, Hq);
    }
  }
  for (index_t i = 0; i < nq; ++i)
    for (index_t h = 0; h < Hq; ++h) {
      const index_t row = i * Hq + h;
      const B inv(1.0f / sm[row]);
      Act* o = &a.o(r.batch, t0 + i, h, 0);
      for (int d = 0; d < DV; ++d)
        store_f32<A>(o + d * L, B::load_unaligned(acc + row * D + d * L) * inv);
    }
}

template <class A, int DV, class Act>
void swska_prefill_simd(const cpu<A>& be, const swska_args<Act>& a, const index_t* block_end,
                        index_t N, index_t slots, float* scratch) noexcept {
  const index_t T = a.q.shape[1], Hq = a.q.shape[2], D = a.q.shape[3];
  const float scale = a.scale != 0.0f ? a.scale : float(1.0 / std::sqrt(double(D)));
  const bool has_history = a.history_k.data != nullptr;
  const index_t items = N > 0 ? block_end[N - 1] : 0;
  const index_t per_slot = swska_prefill_slot_floats(Hq, D);
  parallel_for(be.pool, 0, slots, 1, [&](index_t lo, index_t hi) {
    for (index_t sl = lo; sl < hi; ++sl) {
      for (index_t item = sl; item < items; item += slots) {
        const index_t n = index_t(std::upper_bound(block_end, block_end + N, item) - block_end);
        const index_t blk = item - (n > 0 ? block_end[n - 1] : 0);
        const sequence_range r = sequence_at(a.cu_seqlens, n, T);
        const index_t slot = slot_at(a.slot, n);
        if (is_padding_slot(slot)) continue; // o rows untouched
        const index_t hist = (has_history && a.history_len) ? index_t(a.history_len[n]) : 0;
        const index_t hs = hist > 0 ? slot : 0;
        const index_t t0 = r.begin + blk * kSwskaQueryBlock;
        const index_t t1 = std::min(r.end, t0 + kSwskaQueryBlock);
        swska_prefill_item<A, DV>(a, r, hist, hs, t0, t1, scale, scratch + sl * per_slot);
      }
    }
  });
}

} // namespace detail

template <class Arch, class Act>
std::size_t swska_prefill_workspace_bytes(const cpu<Arch>& be, const swska_args<Act>& a) noexcept {
  const std::size_t Hq = std::size_t(std::max<index_t>(a.q.shape[2], 0));
  const std::size_t D = std::size_t(std::max<index_t>(a.q.shape[3], 0));
  const std::size_t B = std::size_t(std::max<index_t>(a.q.shape[0], 0));
  const std::size_t N = a.cu_seqlens ? std::size_t(std::max<std::int64_t>(a.num_seqs, 0)) : B;
  const std::size_t slots =
      std::size_t(detail::swska_prefill_slots(be.pool, detail::swska_prefill_items_bound(a)));
  const std::size_t per_slot = detail::kSwskaQueryBlock * Hq * (detail::kSwskaKeyBlock + D + 3);
  return std::max(swska_prefill_workspace_bytes(scalar{}, a),
                  workspace::sum(workspace::alignment, workspace::bytes_for<index_t>(N + 1),
                                 workspace::alignment,
                                 workspace::bytes_for<float>(workspace::product(slots, per_slot))));
}

template <class Arch, class Act>
std::size_t swska_decode_workspace_bytes(const cpu<Arch>&,
                                         const swska_decode_args<Act>& a) noexcept {
  const std::size_t B = std::size_t(std::max<index_t>(a.q.shape[0], 0));
  const std::size_t Hq = std::size_t(std::max<index_t>(a.q.shape[1], 0));
  const std::size_t W = std::size_t(std::max<index_t>(a.ring_k.shape[1], 0));
  return std::max(swska_decode_workspace_bytes(scalar{}, a),
                  workspace::sum(workspace::alignment, detail::swska_decode_rotation_bytes(a),
                                 workspace::bytes_for<float>(
                                     workspace::product(workspace::product(B, Hq), W))));
}

/// Whether swska_prefill() on cpu<Arch> runs the scalar reference for `a` instead of its own kernel
/// (Act other than f32 / bf16 / f16, a head size that is not a power-of-two number of SIMD vectors
/// up to 256, an inner stride other than 1). Benchmarks check it, so that they never time the
/// fallback (docs/ARCHITECTURE.md "Fallbacks").
template <class Arch, class Act>
[[nodiscard]] bool falls_back_to_scalar(const cpu<Arch>&, const swska_args<Act>& a) noexcept {
  return !detail::swska_prefill_simd_ok<Arch>(a);
}

template <class Arch, class Act>
[[nodiscard]] status swska_prefill(const cpu<Arch>& be, const swska_args<Act>& a,
                                   workspace ws) noexcept {
  RODIMUS_TRY(swska_check(a));
  if constexpr (!detail::cpu_storage_type<Act>) {
    return swska_prefill(scalar{}, a, ws);
  } else {
    if (falls_back_to_scalar(be, a)) return swska_prefill(scalar{}, a, ws);
    const index_t B = a.q.shape[0], T = a.q.shape[1], Hq = a.q.shape[2], D = a.q.shape[3];
    RODIMUS_TRY(check_packed_offsets(a.cu_seqlens, a.num_seqs, T));
    const index_t N = sequence_count(a.cu_seqlens, a.num_seqs, B);
    RODIMUS_TRY(swska_check_history(a, N));
    index_t* block_end = ws.take<index_t>(std::size_t(N + 1)); // (N) running block counts
    RODIMUS_REQUIRE(block_end, workspace_too_small, "workspace");
    index_t items = 0;
    for (index_t n = 0; n < N; ++n) {
      items += (sequence_at(a.cu_seqlens, n, T).length() + detail::kSwskaQueryBlock - 1) /
               detail::kSwskaQueryBlock;
      block_end[n] = items;
    }
    const index_t slots = detail::swska_prefill_slots(be.pool, items);
    float* scratch = ws.take<float>(std::size_t(slots * detail::swska_prefill_slot_floats(Hq, D)));
    RODIMUS_REQUIRE(scratch, workspace_too_small, "workspace");
    constexpr index_t L = index_t(detail::lanes<Arch>);
    switch (D / L) {
    case 1: detail::swska_prefill_simd<Arch, 1>(be, a, block_end, N, slots, scratch); break;
    case 2: detail::swska_prefill_simd<Arch, 2>(be, a, block_end, N, slots, scratch); break;
    case 4: detail::swska_prefill_simd<Arch, 4>(be, a, block_end, N, slots, scratch); break;
    case 8: detail::swska_prefill_simd<Arch, 8>(be, a, block_end, N, slots, scratch); break;
    case 16: detail::swska_prefill_simd<Arch, 16>(be, a, block_end, N, slots, scratch); break;
    case 32: detail::swska_prefill_simd<Arch, 32>(be, a, block_end, N, slots, scratch); break;
    default: break; // excluded by swska_prefill_simd_ok
    }
    return status::success();
  }
}

/// Whether swska_decode() on cpu<Arch> runs the scalar reference for `a` instead of its own kernel
/// (Act other than f32 / bf16 / f16, a head size that is not a power-of-two number of SIMD vectors
/// up to 256, an inner stride other than 1). Benchmarks check it, so that they never time the
/// fallback (docs/ARCHITECTURE.md "Fallbacks").
template <class Arch, class Act>
[[nodiscard]] bool falls_back_to_scalar(const cpu<Arch>&,
                                        const swska_decode_args<Act>& a) noexcept {
  return !detail::swska_decode_simd_ok<Arch>(a);
}

template <class Arch, class Act>
[[nodiscard]] status swska_decode(const cpu<Arch>& be, const swska_decode_args<Act>& args,
                                  workspace ws) noexcept {
  RODIMUS_TRY(swska_decode_check(args));
  if constexpr (!detail::cpu_storage_type<Act>) {
    return swska_decode(scalar{}, args, ws);
  } else {
    if (falls_back_to_scalar(be, args)) return swska_decode(scalar{}, args, ws);
    RODIMUS_TRY(swska_decode_check_slots(args));
    swska_decode_args<Act> a = args;
    RODIMUS_TRY(detail::swska_decode_rotate_inputs(be, a, ws)); // rotary_dim > 0: the copies
    const index_t B = a.q.shape[0], Hq = a.q.shape[1], D = a.q.shape[2];
    const index_t Hk = a.k.shape[1], Hv = a.v.shape[1];
    const index_t W = a.ring_k.shape[1];
    float* scores = ws.take<float>(std::size_t(B * Hq * W)); // (B, Hq, W)
    RODIMUS_REQUIRE(scores || B * Hq * W == 0, workspace_too_small, "workspace");
    for (index_t b = 0; b < B; ++b) {
      const index_t s = slot_at(a.slot, b);
      if (is_padding_slot(s)) continue;
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

/// Whether swska_ring_store() on cpu<Arch> runs the scalar reference for `a` instead of its own
/// kernel (always: the store is a plain copy, the scalar loop is the kernel). Benchmarks check it,
/// so that they never time the fallback (docs/ARCHITECTURE.md "Fallbacks").
template <class Arch, class Act>
[[nodiscard]] constexpr bool falls_back_to_scalar(const cpu<Arch>&,
                                                  const swska_ring_store_args<Act>&) noexcept {
  return true;
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
