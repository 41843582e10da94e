// Scalar reference of shared-key sliding-window attention: plain loops, scores and softmax in
// double with max subtraction (two passes over the keys, so the workspace is one D-vector of
// doubles). swska_decode with rotary_dim > 0 is its definition: the rotary reference on copies of
// q and k (in the workspace), then the step on the copies.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <utility>

#include "rodimus/backend/scalar/rotary.hpp"
#include "rodimus/core/dtype.hpp"
#include "rodimus/primitives/rotary.hpp"
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

/// Workspace bytes of swska_decode_rotate_inputs: 0 with rotary_dim 0, else the copies of q and k
/// and the rows' positions (k's heads: Hq when k's shape is not set, a bound since Hk divides Hq).
template <class Act>
std::size_t swska_decode_rotation_bytes(const swska_decode_args<Act>& a) noexcept {
  if (a.rotary_dim <= 0) return 0;
  const std::size_t B = std::size_t(std::max<index_t>(a.q.shape[0], 0));
  const std::size_t Hq = std::size_t(std::max<index_t>(a.q.shape[1], 0));
  const std::size_t D = std::size_t(std::max<index_t>(a.q.shape[2], 0));
  const std::size_t Hk = a.k.shape[1] > 0 ? std::size_t(a.k.shape[1]) : Hq;
  return workspace::sum(workspace::bytes_for<Act>(workspace::product(workspace::product(B, Hq), D)),
                        workspace::bytes_for<Act>(workspace::product(workspace::product(B, Hk), D)),
                        workspace::bytes_for<std::int64_t>(B));
}

/// swska_decode with rotary_dim > 0 as primitives/swska.hpp defines it, for host backends: q and
/// k copied into the workspace and rotated there by the rotary primitive on `be` at each row's
/// position (padding rows at position 0: their copies are never read), then `a` is turned into
/// the arguments of the same step over the copies with rotary_dim 0. Call it after the checks of
/// the arguments and their slots and positions; it does nothing with rotary_dim 0.
template <class Backend, class Act>
status swska_decode_rotate_inputs(const Backend& be, swska_decode_args<Act>& a,
                                  workspace& ws) noexcept {
  const index_t B = a.q.shape[0], Hq = a.q.shape[1], Hk = a.k.shape[1], D = a.q.shape[2];
  if (a.rotary_dim == 0 || B == 0) return status::success();
  Act* q = ws.take<Act>(std::size_t(B * Hq * D)); // (B, Hq, D)
  Act* k = ws.take<Act>(std::size_t(B * Hk * D)); // (B, Hk, D)
  std::int64_t* position = ws.take<std::int64_t>(std::size_t(B));
  RODIMUS_REQUIRE(q && k && position, workspace_too_small, "workspace");
  for (index_t b = 0; b < B; ++b) {
    position[b] = is_padding_slot(slot_at(a.slot, b)) ? 0 : a.position[b];
    for (index_t h = 0; h < Hq; ++h)
      for (index_t d = 0; d < D; ++d)
        q[(b * Hq + h) * D + d] = a.q(b, h, d);
    for (index_t h = 0; h < Hk; ++h)
      for (index_t d = 0; d < D; ++d)
        k[(b * Hk + h) * D + d] = a.k(b, h, d);
  }
  const std::pair<Act*, index_t> parts[2] = {{q, Hq}, {k, Hk}};
  for (const auto& [x, heads] : parts) {
    rotary_args<Act> ra;
    ra.x = make_view(x, B, index_t(1), heads, D);
    ra.position_offset = position;
    ra.rotary_dim = a.rotary_dim;
    ra.base = a.rotary_base;
    RODIMUS_TRY(rotary(be, ra));
  }
  a.q = make_view<const Act>(q, B, Hq, D);
  a.k = make_view<const Act>(k, B, Hk, D);
  a.rotary_dim = 0;
  return status::success();
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
      workspace::alignment, detail::swska_decode_rotation_bytes(a), // then one D row of doubles
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
[[nodiscard]] status swska_decode(const scalar&, const swska_decode_args<Act>& args,
                                  workspace ws) noexcept {
  RODIMUS_TRY(swska_decode_check(args));
  RODIMUS_TRY(swska_decode_check_slots(args));
  swska_decode_args<Act> a = args;
  RODIMUS_TRY(detail::swska_decode_rotate_inputs(scalar{}, a, ws)); // rotary_dim > 0: the copies
  const index_t B = a.q.shape[0], Hq = a.q.shape[1], D = a.q.shape[2];
  const index_t Hk = a.k.shape[1], Hv = a.v.shape[1];
  const index_t W = a.ring_k.shape[1];
  const index_t wl = a.window_left;
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
