// Non-owning strided tensor views: a pointer, a shape and strides in elements. Kernels take views
// (or raw pointers and strides) and never own memory. `tensor_view<const bf16, 3> x; // (B, T, E)`
#pragma once

#include <utility>

#include <cstdint>

#include "rodimus/core/macros.hpp"

namespace rodimus {

using index_t = std::int64_t;

template <class T, int Rank> struct tensor_view {
  static_assert(Rank >= 1 && Rank <= 6, "tensor_view rank must be 1..6");
  using value_type = T;
  static constexpr int rank = Rank;

  T* data = nullptr;
  index_t shape[Rank] = {};
  index_t stride[Rank] = {};

  tensor_view() = default;

  /// A view over `data` with `shape`, contiguous (row-major) strides.
  RODIMUS_HOST_DEVICE static tensor_view contiguous(T* data,
                                                    const index_t (&shape)[Rank]) noexcept {
    tensor_view v;
    v.data = data;
    std::uint64_t s = 1; // unsigned: sizes no memory holds wrap instead of overflowing (UB)
    for (int d = Rank - 1; d >= 0; --d) {
      v.shape[d] = shape[d];
      v.stride[d] = index_t(s);
      s *= std::uint64_t(shape[d]);
    }
    return v;
  }

  /// A view with explicit strides (in elements).
  RODIMUS_HOST_DEVICE static tensor_view strided(T* data, const index_t (&shape)[Rank],
                                                 const index_t (&stride)[Rank]) noexcept {
    tensor_view v;
    v.data = data;
    for (int d = 0; d < Rank; ++d) {
      v.shape[d] = shape[d];
      v.stride[d] = stride[d];
    }
    return v;
  }

  /// Implicit conversion to a view of const elements.
  template <class U = T, class = decltype(static_cast<const U*>(static_cast<U*>(nullptr)))>
  RODIMUS_HOST_DEVICE operator tensor_view<const U, Rank>() const noexcept {
    tensor_view<const U, Rank> v;
    v.data = data;
    for (int d = 0; d < Rank; ++d) {
      v.shape[d] = shape[d];
      v.stride[d] = stride[d];
    }
    return v;
  }

  RODIMUS_HOST_DEVICE index_t size(int d) const noexcept { return shape[d]; }
  /// The element count: 0 when any size is 0; otherwise -1 when a size is negative, and
  /// INT64_MAX when the product does not fit (never 0 for a view of non-zero sizes, so a check
  /// "data != nullptr || numel() == 0" cannot be passed by an overflowing shape).
  RODIMUS_HOST_DEVICE index_t numel() const noexcept {
    constexpr index_t most = index_t(~std::uint64_t(0) >> 1);
    index_t n = 1;
    bool negative = false, overflow = false;
    for (int d = 0; d < Rank; ++d) {
      if (shape[d] == 0) return 0;
      if (shape[d] < 0) {
        negative = true;
      } else if (!overflow) {
        if (n > most / shape[d])
          overflow = true;
        else
          n *= shape[d];
      }
    }
    return negative ? -1 : overflow ? most : n;
  }
  RODIMUS_HOST_DEVICE bool empty() const noexcept { return numel() == 0; }
  RODIMUS_HOST_DEVICE bool is_contiguous() const noexcept {
    std::uint64_t s = 1;
    for (int d = Rank - 1; d >= 0; --d) {
      if (shape[d] != 1 && stride[d] != index_t(s)) return false;
      s *= std::uint64_t(shape[d]);
    }
    return true;
  }

  template <class... I> RODIMUS_HOST_DEVICE index_t offset(I... idx) const noexcept {
    static_assert(sizeof...(I) == Rank, "one index per dimension");
    const index_t ids[Rank] = {index_t(idx)...};
    index_t off = 0;
    for (int d = 0; d < Rank; ++d)
      off += ids[d] * stride[d];
    return off;
  }
  template <class... I> RODIMUS_HOST_DEVICE T& operator()(I... idx) const noexcept {
    return data[offset(idx...)];
  }
};

/// Shorthands for contiguous views.
template <class T> RODIMUS_HOST_DEVICE tensor_view<T, 1> make_view(T* p, index_t n0) noexcept {
  return tensor_view<T, 1>::contiguous(p, {n0});
}
template <class T>
RODIMUS_HOST_DEVICE tensor_view<T, 2> make_view(T* p, index_t n0, index_t n1) noexcept {
  return tensor_view<T, 2>::contiguous(p, {n0, n1});
}
template <class T>
RODIMUS_HOST_DEVICE tensor_view<T, 3> make_view(T* p, index_t n0, index_t n1, index_t n2) noexcept {
  return tensor_view<T, 3>::contiguous(p, {n0, n1, n2});
}
template <class T>
RODIMUS_HOST_DEVICE tensor_view<T, 4> make_view(T* p, index_t n0, index_t n1, index_t n2,
                                                index_t n3) noexcept {
  return tensor_view<T, 4>::contiguous(p, {n0, n1, n2, n3});
}

/// True when the view's shape equals `expected` in every dimension.
template <class T, int Rank>
RODIMUS_HOST_DEVICE bool has_shape(const tensor_view<T, Rank>& v,
                                   const index_t (&expected)[Rank]) noexcept {
  for (int d = 0; d < Rank; ++d)
    if (v.shape[d] != expected[d]) return false;
  return true;
}

/// Whether two views share any byte (their [first, last element] address ranges overlap).
template <class A, class B>
bool views_overlap(const tensor_view<A, 2>& a, const tensor_view<B, 2>& b) noexcept {
  if (!a.data || !b.data || a.numel() == 0 || b.numel() == 0) return false;
  auto range = [](const auto& v, std::size_t elem) {
    const auto lo = reinterpret_cast<std::uintptr_t>(v.data);
    const auto last = std::size_t((v.shape[0] - 1) * v.stride[0] + (v.shape[1] - 1) * v.stride[1]);
    return std::pair<std::uintptr_t, std::uintptr_t>{lo, lo + (last + 1) * elem};
  };
  const auto ra = range(a, sizeof(A)), rb = range(b, sizeof(B));
  return ra.first < rb.second && rb.first < ra.second;
}

} // namespace rodimus
