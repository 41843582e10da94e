// DDTS on any backend against the scalar reference (one body, stamped per backend: see
// support/backend_support.hpp): weak and strong gates (pre-activations shifted by -5 .. 22), the
// extreme range -30 .. 40 (softplus's threshold 20 on both sides, decays down to -1e-13 and past
// -40), with and without the bias, tiny (1e-14, 1e-20) and zero key rows (the normalize_eps clamp)
// under both released eps (1e-12, 1e-5); key widths below and above a CUDA warp-per-row row, and
// not multiples of any SIMD width; f32, bf16 and f16 storage; no rows; and every bad argument (the
// same status as the reference, nothing written).
//
// Tolerances:
//   relative to max|want| over the tensor, 1e-5 for k_hat and log_decay: f32 on both sides; the
//     gate is the same formula (ddts_gate) with the platform's expf/log1pf/powf (a few ulp apart),
//     and the key norm is summed in f32 in the backend's order against f64 in the reference.
//   element by element where the gates are extreme (every value, however tiny, must be right):
//     log_decay 1e-5 of |want|: -(gamma * tau) from exp/log1p/exp and one division, each within a
//     few ulp (2^-24 ~ 6e-8). k_hat 3e-5 of |want|: beta = gamma^tau is exp(tau * log(gamma)) on
//     SIMD, whose error grows with |tau log(gamma)| <= 31 here (31 x 2 ulp of the exponent ~ 4e-6
//     relative), plus the norm and the division. Values below 1e-30 in magnitude compare
//     absolutely (denormal results carry no relative precision).
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "rodimus/backend/scalar/ddts.hpp"
#include "support/backend_support.hpp"
#include "support/primitive_support.hpp"

namespace rodimus::test {

/// CHECK |got[i] - want[i]| <= rel * |want[i]| + 1e-30 for every i, naming the first miss.
inline void check_each_close(const std::vector<float>& got, const std::vector<float>& want,
                             double rel, const char* what) {
  REQUIRE(got.size() == want.size());
  std::size_t misses = 0, first = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double d = std::fabs(double(got[i]) - double(want[i]));
    if (!(d <= rel * std::fabs(double(want[i])) + 1e-30)) {
      if (misses++ == 0) first = i;
    }
  }
  INFO(what << ": " << misses << " values off by more than " << rel << " relative; first at "
            << first << ": got " << (misses ? got[first] : 0.0f) << ", want "
            << (misses ? want[first] : 0.0f));
  CHECK(misses == 0);
}

/// One ddts case: sizes, the range of the pre-activations, the bias, the keys, the eps.
struct ddts_case {
  index_t M = 7, N = 64;
  double pre_lo = -4, pre_hi = 4;
  bool bias = true;
  bool small_keys = true; // rows 1, 2, 3: keys 1e-14, 0, 1e-20 (those that exist)
  bool each = false;      // also compare element by element
  float eps = 1e-12f;
};

template <class Backend, class Act> void check_ddts(const Backend& be, const ddts_case& c) {
  const index_t M = c.M, N = c.N;
  CAPTURE(M);
  CAPTURE(N);
  CAPTURE(c.pre_lo);
  CAPTURE(c.pre_hi);
  CAPTURE(c.bias);
  CAPTURE(c.eps);
  auto g = rng(std::uint64_t(M * 11 + N) + std::uint64_t(c.pre_lo + 104));
  auto pre = uniform<Act>(g, std::size_t(M * 2 * N), c.pre_lo, c.pre_hi);
  auto bias = uniform<float>(g, std::size_t(2 * N), -1, 1);
  auto k = uniform<Act>(g, std::size_t(M * N));
  if (c.small_keys) { // the eps clamp of the norm: tiny, zero and underflowing keys
    const double small[3] = {1e-14, 0.0, 1e-20};
    for (index_t m = 1; m < M && m <= 3; ++m)
      for (index_t n = 0; n < N; ++n)
        k[std::size_t(m * N + n)] = store_as<Act>(small[m - 1] * (n % 2 ? 1 : -1));
  }
  std::vector<float> kh(std::size_t(M * N)), kh_ref(kh.size()), ld(kh.size()), ld_ref(kh.size());
  poison(kh);
  poison(kh_ref);
  poison(ld);
  poison(ld_ref);

  backend_arrays<Backend> mem(be);
  float* d_kh = mem.put(kh);
  float* d_ld = mem.put(ld);
  ddts_args<Act> a;
  a.gate_preact = make_view<const Act>(mem.put(pre), M, 2 * N);
  if (c.bias) a.gate_bias = make_view<const float>(mem.put(bias), 2 * N);
  a.k = make_view<const Act>(mem.put(k), M, N);
  a.k_hat = make_view(d_kh, M, N);
  a.log_decay = make_view(d_ld, M, N);
  a.normalize_eps = c.eps;
  REQUIRE(ddts(be, a).ok());
  mem.get(kh, d_kh);
  mem.get(ld, d_ld);

  a.gate_preact = make_view<const Act>(pre.data(), M, 2 * N);
  if (c.bias) a.gate_bias = make_view<const float>(bias.data(), 2 * N);
  a.k = make_view<const Act>(k.data(), M, N);
  a.k_hat = make_view(kh_ref.data(), M, N);
  a.log_decay = make_view(ld_ref.data(), M, N);
  REQUIRE(ddts(scalar{}, a).ok());
  check_close(kh, kh_ref, 1e-5, 0.0, "k_hat");
  check_close(ld, ld_ref, 1e-5, 0.0, "log_decay");
  if (c.each) {
    check_each_close(ld, ld_ref, 1e-5, "log_decay");
    check_each_close(kh, kh_ref, 3e-5, "k_hat");
  }
}

/// Every bad argument gives the backend the same status as the reference, and writes nothing.
template <class Backend> void check_ddts_bad_arguments(const Backend& be) {
  constexpr index_t M = 3, N = 4;
  std::vector<float> pre(std::size_t(M * 2 * N), 0.1f), bias(std::size_t(2 * N), 0.0f),
      k(std::size_t(M * N), 1.0f), kh(k.size()), ld(k.size());
  poison(kh);
  poison(ld);
  backend_arrays<Backend> mem(be);
  float* d_kh = mem.put(kh);
  float* d_ld = mem.put(ld);
  ddts_args<float> valid;
  valid.gate_preact = make_view<const float>(mem.put(pre), M, 2 * N);
  valid.gate_bias = make_view<const float>(mem.put(bias), 2 * N);
  valid.k = make_view<const float>(mem.put(k), M, N);
  valid.k_hat = make_view(d_kh, M, N);
  valid.log_decay = make_view(d_ld, M, N);
  using A = ddts_args<float>;
  check_bad_cases(
      valid, [&](const A& a) { return ddts(be, a); },
      {
          {"gate_preact.shape[1] = 2 * N - 1", [](A& a) { a.gate_preact.shape[1] = 2 * N - 1; },
           status_code::bad_shape, "gate_preact"},
          {"gate_preact.shape[1] = 0", [](A& a) { a.gate_preact.shape[1] = 0; },
           status_code::bad_shape, "gate_preact"},
          {"gate_preact.shape[0] = -1", [](A& a) { a.gate_preact.shape[0] = -1; },
           status_code::bad_shape, "gate_preact"},
          {"gate_bias.shape[0] = N", [](A& a) { a.gate_bias.shape[0] = N; }, status_code::bad_shape,
           "gate_bias"},
          {"k.shape[1] = N + 1", [](A& a) { a.k.shape[1] = N + 1; }, status_code::bad_shape, "k"},
          {"k_hat.shape[0] = M - 1", [](A& a) { a.k_hat.shape[0] = M - 1; }, status_code::bad_shape,
           "k_hat"},
          {"log_decay.shape[1] = 2", [](A& a) { a.log_decay.shape[1] = 2; }, status_code::bad_shape,
           "log_decay"},
          {"gate_preact.data = nullptr", [](A& a) { a.gate_preact.data = nullptr; },
           status_code::null_pointer, "gate_preact"},
          {"k.data = nullptr", [](A& a) { a.k.data = nullptr; }, status_code::null_pointer, "k"},
          {"k_hat.data = nullptr", [](A& a) { a.k_hat.data = nullptr; }, status_code::null_pointer,
           "k_hat"},
          {"log_decay.data = nullptr", [](A& a) { a.log_decay.data = nullptr; },
           status_code::null_pointer, "log_decay"},
          {"normalize_eps = 0.0f", [](A& a) { a.normalize_eps = 0.0f; }, status_code::bad_argument,
           "normalize_eps"},
          {"normalize_eps = NAN", [](A& a) { a.normalize_eps = NAN; }, status_code::bad_argument,
           "normalize_eps"},
      });
  mem.get(kh, d_kh);
  mem.get(ld, d_ld);
  CHECK(all_nan(kh)); // a rejected call writes nothing
  CHECK(all_nan(ld));
}

/// The cases every backend runs.
template <class Backend> void check_ddts_all(const Backend& be) {
  for (double shift : {-5.0, 0.0, 5.0, 22.0}) {
    ddts_case c;
    c.pre_lo = -4 + shift;
    c.pre_hi = 4 + shift;
    check_ddts<Backend, float>(be, c);
  }
  ddts_case c;
  c.M = 5;
  c.N = 37;
  check_ddts<Backend, bf16>(be, c);
  // Extreme gates, element by element: softplus on both sides of 20, tiny and large decays.
  c = ddts_case{};
  c.M = 40;
  c.N = 64;
  c.pre_lo = -30;
  c.pre_hi = 40;
  c.each = true;
  check_ddts<Backend, float>(be, c);
  c.bias = false;
  c.N = 61;
  check_ddts<Backend, bf16>(be, c);
  c.eps = 1e-5f;
  c.N = 1000; // a CTA per row on CUDA
  c.M = 6;
  check_ddts<Backend, float>(be, c);
  c.N = 3;
  c.M = 33;
  check_ddts<Backend, f16>(be, c);
  c = ddts_case{};
  c.M = 0;
  check_ddts<Backend, float>(be, c);
  check_ddts_bad_arguments(be);
}

} // namespace rodimus::test
