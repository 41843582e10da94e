// Scalar reference of shared-key sliding-window attention: plain loops, scores and softmax in
// double with max subtraction (two passes over the keys, so the workspace is one D-vector of
// doubles).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>

#include "rodimus/core/dtype.hpp"
#include "rodimus/primitives/swska.hpp"

namespace rodimus {

namespace detail {

/// A row of D elements with a stride.
template <class T> struct swska_row {
  const T* p;
  index_t stride;
  double at(index_t d) const noexcept { return load_as<double>(p[d * stride]); }
};

/// o = sum_{j = j0..j1} softmax_j(scale * <q, key(j)>) value(j); acc holds D doubles.
template <class Act, class Keys, class Values>
void swska_attend_row(swska_row<Act> q, index_t D, index_t j0, index_t j1, const Keys& key,
                      const Values& value, double scale, double* acc, Act* o,
                      index_t o_stride) noexcept {
  auto score = [&](index_t j) {
    const swska_row<Act> kr = key(j);
    double s = 0.0;
    for (index_t d = 0; d < D; ++d)
      s += q.at(d) * kr.at(d);
    return scale * s;
  };
  double m = -std::numeric_limits<double>::infinity();
  for (index_t j = j0; j <= j1; ++j)
    m = std::max(m, score(j));
  for (index_t d = 0; d < D; ++d)
    acc[d] = 0.0;
  double sum = 0.0;
  for (index_t j = j0; j <= j1; ++j) {
    const double e = std::exp(score(j) - m);
    sum += e;
    const swska_row<Act> vr = value(j);
    for (index_t d = 0; d < D; ++d)
      acc[d] += e * vr.at(d);
  }
  for (index_t d = 0; d < D; ++d)
    o[d * o_stride] = store_as<Act>(acc[d] / sum);
}

inline double swska_scale(float scale, index_t D) noexcept {
  return scale != 0.0f ? double(scale) : 1.0 / std::sqrt(double(D));
}

} // namespace detail

template <class Act>
std::size_t swska_prefill_workspace_bytes(const scalar&, const swska_args<Act>& a) noexcept {
  return workspace::sum(
      workspace::alignment, // one D row of doubles
      workspace::bytes_for<double>(std::size_t(std::max<index_t>(a.q.shape[3], 1))));
}

template <class Act>
std::size_t swska_decode_workspace_bytes(const scalar&, const swska_decode_args<Act>& a) noexcept {
  return workspace::sum(
      workspace::alignment, // one D row of doubles
      workspace::bytes_for<double>(std::size_t(std::max<index_t>(a.q.shape[2], 1))));
}

template <class Act>
[[nodiscard]] status swska_prefill(const scalar&, const swska_args<Act>& a, workspace ws) noexcept {
  RODIMUS_TRY(swska_check(a));
  const index_t B = a.q.shape[0], T = a.q.shape[1], Hq = a.q.shape[2], D = a.q.shape[3];
  const index_t Hk = a.k.shape[2], Hv = a.v.shape[2];
  RODIMUS_TRY(check_packed_offsets(a.cu_seqlens, a.num_seqs, T));
  const index_t N = sequence_count(a.cu_seqlens, a.num_seqs, B);
  RODIMUS_TRY(swska_check_history(a, N));
  const bool has_history = a.history_k.data != nullptr;
  const index_t W = has_history ? a.history_k.shape[1] : 0;
  const index_t wl = a.window_left;
  double* acc = ws.take<double>(std::size_t(D));
  RODIMUS_REQUIRE(acc, workspace_too_small, "workspace");
  const double scale = detail::swska_scale(a.scale, D);

  for (index_t n = 0; n < N; ++n) {
    const index_t slot = slot_at(a.slot, n);
    if (is_padding_slot(slot)) continue; // o rows untouched
    const sequence_range r = sequence_at(a.cu_seqlens, n, T);
    const index_t hist = (has_history && a.history_len) ? index_t(a.history_len[n]) : 0;
    const index_t hs = hist > 0 ? slot : 0;
    for (index_t t = r.begin; t < r.end; ++t) {
      const index_t p = hist + (t - r.begin);
      const index_t j0 = wl < 0 ? 0 : std::max<index_t>(0, p - wl);
      for (index_t h = 0; h < Hq; ++h) {
        const index_t hk = h % Hk, hv = h % Hv;
        auto key = [&](index_t j) {
          if (j < hist)
            return detail::swska_row<Act>{&a.history_k(hs, j % W, hk, 0), a.history_k.stride[3]};
          return detail::swska_row<Act>{&a.k(r.batch, r.begin + (j - hist), hk, 0), a.k.stride[3]};
        };
        auto value = [&](index_t j) {
          if (j < hist)
            return detail::swska_row<Act>{&a.history_v(hs, j % W, hv, 0), a.history_v.stride[3]};
          return detail::swska_row<Act>{&a.v(r.batch, r.begin + (j - hist), hv, 0), a.v.stride[3]};
        };
        detail::swska_attend_row<Act>({&a.q(r.batch, t, h, 0), a.q.stride[3]}, D, j0, p, key, value,
                                      scale, acc, &a.o(r.batch, t, h, 0), a.o.stride[3]);
      }
    }
  }
  return status::success();
}

template <class Act>
[[nodiscard]] status swska_decode(const scalar&, const swska_decode_args<Act>& a,
                                  workspace ws) noexcept {
  RODIMUS_TRY(swska_decode_check(a));
  const index_t B = a.q.shape[0], Hq = a.q.shape[1], D = a.q.shape[2];
  const index_t Hk = a.k.shape[1], Hv = a.v.shape[1];
  const index_t W = a.ring_k.shape[1];
  const index_t wl = a.window_left;
  RODIMUS_TRY(swska_decode_check_slots(a));
  double* acc = ws.take<double>(std::size_t(D));
  RODIMUS_REQUIRE(acc, workspace_too_small, "workspace");
  const double scale = detail::swska_scale(a.scale, D);

  for (index_t b = 0; b < B; ++b) {
    const index_t s = slot_at(a.slot, b);
    if (is_padding_slot(s)) continue; // o row and ring untouched
    const index_t p = a.position[b];
    const index_t w = p % W;
    for (index_t h = 0; h < Hk; ++h)
      for (index_t d = 0; d < D; ++d)
        a.ring_k(s, w, h, d) = a.k(b, h, d);
    for (index_t h = 0; h < Hv; ++h)
      for (index_t d = 0; d < D; ++d)
        a.ring_v(s, w, h, d) = a.v(b, h, d);
    const index_t j0 = wl < 0 ? 0 : std::max<index_t>(0, p - wl);
    for (index_t h = 0; h < Hq; ++h) {
      const index_t hk = h % Hk, hv = h % Hv;
      auto key = [&](index_t j) {
        return detail::swska_row<Act>{&a.ring_k(s, j % W, hk, 0), a.ring_k.stride[3]};
      };
      auto value = [&](index_t j) {
        return detail::swska_row<Act>{&a.ring_v(s, j % W, hv, 0), a.ring_v.stride[3]};
      };
      detail::swska_attend_row<Act>({&a.q(b, h, 0), a.q.stride[2]}, D, j0, p, key, value, scale,
                                    acc, &a.o(b, h, 0), a.o.stride[2]);
    }
  }
  return status::success();
}

template <class Act>
[[nodiscard]] status swska_ring_store(const scalar&, const swska_ring_store_args<Act>& a) noexcept {
  RODIMUS_TRY(swska_ring_store_check(a));
  const index_t B = a.k.shape[0], T = a.k.shape[1], Hk = a.k.shape[2], D = a.k.shape[3];
  const index_t Hv = a.v.shape[2];
  const index_t W = a.ring_k.shape[1];
  RODIMUS_TRY(check_packed_offsets(a.cu_seqlens, a.num_seqs, T));
  const index_t N = sequence_count(a.cu_seqlens, a.num_seqs, B);
  RODIMUS_TRY(swska_ring_store_check_slots(a, N));
  for (index_t n = 0; n < N; ++n) {
    const index_t s = slot_at(a.slot, n);
    if (is_padding_slot(s)) continue;
    const sequence_range r = sequence_at(a.cu_seqlens, n, T);
    const index_t start = a.start_position ? index_t(a.start_position[n]) : 0;
    const index_t L = r.length();
    for (index_t t = std::max<index_t>(0, L - W); t < L; ++t) {
      const index_t w = (start + t) % W;
      for (index_t h = 0; h < Hk; ++h)
        for (index_t d = 0; d < D; ++d)
          a.ring_k(s, w, h, d) = a.k(r.batch, r.begin + t, h, d);
      for (index_t h = 0; h < Hv; ++h)
        for (index_t d = 0; d < D; ++d)
          a.ring_v(s, w, h, d) = a.v(r.batch, r.begin + t, h, d);
    }
  }
  return status::success();
}

} // namespace rodimus
