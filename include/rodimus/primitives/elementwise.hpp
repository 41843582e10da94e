// Element-wise activations shared by the primitives, written once on the value type T (double in
// the scalar reference, float on the CPU tails and on CUDA, an xsimd batch in the CPU SIMD bodies;
// `exp`, `log1p` and `select` are found by argument-dependent lookup for batches):
//
//   sigmoid(x)  = 1 / (1 + exp(-x))
//   silu(x)     = x * sigmoid(x) = x / (1 + exp(-x))
//   softplus(x) = x > 20 ? x : log1p(exp(x))     PyTorch's default (beta 1, threshold 20)
//   select(c, a, b) = c ? a : b                  on scalars; xsimd::select on batches
#pragma once

#include <cmath>

#include "rodimus/core/macros.hpp"

// g++ 12 reports its own AVX-512 intrinsics (which start from _mm512_undefined_*()) as reading
// uninitialised values once xsimd's exp/log are inlined into these templates on batches; silenced
// for these definitions only.
#if defined(__GNUC__) && !defined(__clang__) && !defined(__CUDACC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace rodimus {

/// c ? a : b. Both values are computed by the caller (a batch has no branches); for xsimd batches
/// the call `select(mask, a, b)` resolves to xsimd::select by argument-dependent lookup.
template <class T> RODIMUS_HOST_DEVICE inline T select(bool c, T a, T b) noexcept {
  return c ? a : b;
}

template <class T> RODIMUS_HOST_DEVICE inline T sigmoid(T x) noexcept {
  using std::exp;
  return T(1) / (T(1) + exp(-x));
}

template <class T> RODIMUS_HOST_DEVICE inline T silu(T x) noexcept {
  using std::exp;
  return x / (T(1) + exp(-x));
}

/// softplus with PyTorch's default threshold: the identity above 20 (where log1p(exp(x)) equals x
/// in f32 anyway), log1p(exp(x)) elsewhere.
template <class T> RODIMUS_HOST_DEVICE inline T softplus(T x) noexcept {
  using std::exp;
  using std::log1p;
  return select(x > T(20), x, log1p(exp(x)));
}

} // namespace rodimus

#if defined(__GNUC__) && !defined(__clang__) && !defined(__CUDACC__)
#pragma GCC diagnostic pop
#endif
