// DDTS: the data-dependent temperature selection of the Rodimus mixer (docs/MODEL.md §2.3 steps
// 7-9). Per row m and key channel n (N = mem_size), all in f32 as the reference computes it:
//
//   psi_sel = f32(gate_preact[m, n])     + bias[n]       (f32 add; no add without a bias)
//   psi_tau = f32(gate_preact[m, N + n]) + bias[N + n]
//   gamma   = softplus(psi_sel) = psi_sel > 20 ? psi_sel : log1p(exp(psi_sel))
//                                                        (PyTorch's threshold 20)
//   tau     = sigmoid(psi_tau) = 1 / (1 + exp(-psi_tau))
//   beta    = gamma ^ tau                                the input gate (a power)
//   log_decay[m, n] = -(gamma * tau)                     exactly <= 0, so exp(log_decay) <= 1
//   k_hat[m, n]     = (f32(k[m, n]) / max(||f32(k[m, :])||_2, normalize_eps)) * beta
//
// The gate (gamma, tau -> log_decay, beta) is written once, ddts_gate below, on the value type
// (float in the scalar reference, the CPU tails and CUDA; an xsimd batch in the CPU SIMD body;
// functions found by argument-dependent lookup for batches).
//
// Shapes: gate_preact (M, 2N) Act = c . mem_gate_proj.weight^T [selection | temperature];
// gate_bias (2N) f32 (data == nullptr: no bias); k (M, N) Act, the raw key (rows [N, 2N) of
// in_proj's output); k_hat (M, N) f32 and log_decay (M, N) f32 written. N >= 1, M >= 0.
#pragma once

#include <cmath>
#include <type_traits>

#include "rodimus/core/backend.hpp"
#include "rodimus/core/dtype.hpp"
#include "rodimus/core/status.hpp"
#include "rodimus/core/tensor_view.hpp"
#include "rodimus/primitives/elementwise.hpp"

namespace rodimus {

template <class Act> struct ddts_args {
  tensor_view<const Act, 2> gate_preact; // (M, 2N) c·W_mg^T: [selection | temperature]
  tensor_view<const float, 1> gate_bias; // (2N) mem_gate_proj.bias in f32; data == nullptr: no bias
  tensor_view<const Act, 2> k;           // (M, N) raw key (rows [N,2N) of in_proj output)
  tensor_view<float, 2> k_hat;           // (M, N) written: k / max(||k||_2, eps) * beta
  tensor_view<float, 2> log_decay;       // (M, N) written: -softplus(sel) * sigmoid(tau)
  float normalize_eps = 1e-12f;
};

// g++ 12 reports its own AVX-512 intrinsics (which start from _mm512_undefined_*()) as reading
// uninitialised values once xsimd's exp/log are inlined into ddts_gate on batches; silenced
// for this definition only.
#if defined(__GNUC__) && !defined(__clang__) && !defined(__CUDACC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

/// The gate of one key channel: log_decay = -(gamma * tau) and beta = gamma ^ tau.
template <class T> struct ddts_gate_values {
  T log_decay;
  T beta;
};

/// gamma = softplus(psi_sel), tau = sigmoid(psi_tau) -> {-(gamma * tau), gamma ^ tau}. The power
/// is std::pow on scalars (the reference's powf); on SIMD batches it is exp(tau * log(gamma))
/// (gamma >= 0, so none of xsimd::pow's handling of negative bases and integer exponents is needed:
/// it cost 15% of the CPU kernel's time).
template <class T>
RODIMUS_HOST_DEVICE inline ddts_gate_values<T> ddts_gate(T psi_sel, T psi_tau) noexcept {
  using std::exp;
  using std::log;
  using std::pow;
  const T gamma = softplus(psi_sel);
  const T tau = sigmoid(psi_tau);
  if constexpr (std::is_arithmetic_v<T>)
    return {-(gamma * tau), pow(gamma, tau)};
  else
    return {-(gamma * tau), exp(tau * log(gamma))};
}

#if defined(__GNUC__) && !defined(__clang__) && !defined(__CUDACC__)
#pragma GCC diagnostic pop
#endif

/// The two gate pre-activations of key channel n of row m, the bias added in f32 (no add without a
/// bias): {psi_sel, psi_tau}. N = the key width (gate_preact has 2N columns).
struct ddts_preact_values {
  float sel;
  float tau;
};
template <class Act>
RODIMUS_HOST_DEVICE inline ddts_preact_values
ddts_preact(const tensor_view<const Act, 2>& gate_preact,
            const tensor_view<const float, 1>& gate_bias, index_t m, index_t n,
            index_t N) noexcept {
  ddts_preact_values p{load_as<float>(gate_preact(m, n)), load_as<float>(gate_preact(m, N + n))};
  if (gate_bias.data != nullptr) {
    p.sel += gate_bias(n);
    p.tau += gate_bias(N + n);
  }
  return p;
}

/// The key-norm denominator max(||k||_2, normalize_eps) from the row's norm.
RODIMUS_HOST_DEVICE inline float ddts_key_denominator(float norm, float normalize_eps) noexcept {
  return norm > normalize_eps ? norm : normalize_eps;
}

/// k_hat = (k / denom) * beta.
RODIMUS_HOST_DEVICE inline float ddts_key(float k, float denom, float beta) noexcept {
  return (k / denom) * beta;
}

/// log_decay[m, n] and k_hat[m, n] from the row's key-norm denominator max(||k[m, :]||, eps): the
/// per-element step the scalar reference and the CUDA kernels share (the CPU SIMD body and its tail
/// multiply by 1 / denom instead).
template <class Act>
RODIMUS_HOST_DEVICE inline void ddts_store(const ddts_args<Act>& a, index_t m, index_t n,
                                           float denom) noexcept {
  const ddts_preact_values p = ddts_preact(a.gate_preact, a.gate_bias, m, n, a.k.shape[1]);
  const ddts_gate_values<float> gate = ddts_gate(p.sel, p.tau);
  a.log_decay(m, n) = gate.log_decay;
  a.k_hat(m, n) = ddts_key(load_as<float>(a.k(m, n)), denom, gate.beta);
}

/// Validation shared by every backend.
template <class Act> [[nodiscard]] status ddts_check(const ddts_args<Act>& a) noexcept {
  const index_t M = a.gate_preact.shape[0], N2 = a.gate_preact.shape[1];
  RODIMUS_REQUIRE(M >= 0 && N2 >= 2 && N2 % 2 == 0, bad_shape, "gate_preact");
  const index_t N = N2 / 2;
  if (a.gate_bias.data) RODIMUS_REQUIRE(a.gate_bias.shape[0] == N2, bad_shape, "gate_bias");
  RODIMUS_REQUIRE(has_shape(a.k, {M, N}), bad_shape, "k");
  RODIMUS_REQUIRE(has_shape(a.k_hat, {M, N}), bad_shape, "k_hat");
  RODIMUS_REQUIRE(has_shape(a.log_decay, {M, N}), bad_shape, "log_decay");
  RODIMUS_REQUIRE(a.gate_preact.data || M == 0, null_pointer, "gate_preact");
  RODIMUS_REQUIRE(a.k.data || M == 0, null_pointer, "k");
  RODIMUS_REQUIRE(a.k_hat.data || M == 0, null_pointer, "k_hat");
  RODIMUS_REQUIRE(a.log_decay.data || M == 0, null_pointer, "log_decay");
  RODIMUS_REQUIRE(std::isfinite(a.normalize_eps) && a.normalize_eps > 0.0f, bad_argument,
                  "normalize_eps");
  return status::success();
}

} // namespace rodimus
