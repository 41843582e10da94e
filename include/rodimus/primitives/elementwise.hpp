// Element-wise activations shared by the primitives, written once on the value type T (double in
// the scalar reference, float on CUDA, an xsimd batch on CPU; `exp` is found by argument-dependent
// lookup for batches):
//
//   sigmoid(x) = 1 / (1 + exp(-x))
//   silu(x)    = x * sigmoid(x) = x / (1 + exp(-x))
#pragma once

#include <cmath>

#include "rodimus/core/config.hpp"

namespace rodimus {

template <class T> RODIMUS_HOST_DEVICE inline T sigmoid(T x) noexcept {
  using std::exp;
  return T(1) / (T(1) + exp(-x));
}

template <class T> RODIMUS_HOST_DEVICE inline T silu(T x) noexcept {
  using std::exp;
  return x / (T(1) + exp(-x));
}

} // namespace rodimus
