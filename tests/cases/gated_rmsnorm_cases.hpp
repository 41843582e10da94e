// Gated RMSNorm on any backend against the scalar reference (one body, stamped per backend: see
// support/backend_support.hpp): y separate, aliasing x, aliasing gate; short rows (a warp per row
// on CUDA) and long ones (a CTA per row), odd widths, gates down to -30 (silu ~ -3e-12) and up to
// 10; f32, bf16 and f16; no rows; and every bad argument (the same status as the reference,
// nothing written).
//
// Tolerances, relative to max|want|: f32 1e-5 (f32 z and sum of squares in the backend's order
// against the f64 reference; expf and the SIMD exp are within a few ulp); 16-bit 2^-7 (both sides
// round nearly equal f32 values once; one 16-bit step of v is up to 2^-7 v).
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "rodimus/backend/scalar/gated_rmsnorm.hpp"
#include "support/backend_support.hpp"
#include "support/primitive_support.hpp"

namespace rodimus::test {

template <class Act> double gated_rmsnorm_tol() {
  return std::is_same_v<Act, float> ? 1e-5 : 1.0 / 128;
}

/// Where y is written: its own buffer, over x, or over gate.
enum class gated_out { separate, over_x, over_gate };

template <class Backend, class Act>
void check_gated_rmsnorm(const Backend& be, index_t M, index_t E, gated_out out) {
  CAPTURE(M);
  CAPTURE(E);
  CAPTURE(int(out));
  auto g = rng(std::uint64_t(M * 13 + E));
  auto x = uniform<Act>(g, std::size_t(M * E), -3, 3);
  auto gate = uniform<Act>(g, std::size_t(M * E), -30, 10);
  auto w = uniform<float>(g, std::size_t(E), 0.5, 1.5);
  std::vector<Act> y(std::size_t(M * E)), y_ref(y.size());
  poison(y);
  poison(y_ref);

  backend_arrays<Backend> mem(be);
  Act* d_x = mem.put(x);
  Act* d_gate = mem.put(gate);
  Act* d_y = out == gated_out::over_x ? d_x : out == gated_out::over_gate ? d_gate : mem.put(y);
  gated_rmsnorm_args<Act> a;
  a.x = make_view<const Act>(d_x, M, E);
  a.gate = make_view<const Act>(d_gate, M, E);
  a.weight = make_view<const float>(mem.put(w), E);
  a.y = make_view(d_y, M, E);
  REQUIRE(gated_rmsnorm(be, a).ok());
  mem.get(y, d_y);

  a.x = make_view<const Act>(x.data(), M, E);
  a.gate = make_view<const Act>(gate.data(), M, E);
  a.weight = make_view<const float>(w.data(), E);
  a.y = make_view(y_ref.data(), M, E);
  REQUIRE(gated_rmsnorm(scalar{}, a).ok());
  check_close(y, y_ref, gated_rmsnorm_tol<Act>(), 0.0, "y");
  if (out != gated_out::separate) { // the input not written over is unchanged
    std::vector<Act> other(y.size());
    mem.get(other, out == gated_out::over_x ? d_gate : d_x);
    check_close(other, out == gated_out::over_x ? gate : x, 0.0, 0.0, "the other input");
  }
}

/// Every bad argument gives the backend the same status as the reference, and writes nothing.
template <class Backend> void check_gated_rmsnorm_bad_arguments(const Backend& be) {
  std::vector<float> x(12, 1.0f), gate(12, 1.0f), y(12), w(4, 1.0f);
  poison(y);
  backend_arrays<Backend> mem(be);
  float* d_y = mem.put(y);
  gated_rmsnorm_args<float> valid;
  valid.x = make_view<const float>(mem.put(x), 3, 4);
  valid.gate = make_view<const float>(mem.put(gate), 3, 4);
  valid.weight = make_view<const float>(mem.put(w), 4);
  valid.y = make_view(d_y, 3, 4);
  using A = gated_rmsnorm_args<float>;
  check_bad_cases(
      valid, [&](const A& a) { return gated_rmsnorm(be, a); },
      {
          {"x.data = nullptr", [](A& a) { a.x.data = nullptr; }, status_code::null_pointer, "x"},
          {"gate.data = nullptr", [](A& a) { a.gate.data = nullptr; }, status_code::null_pointer,
           "gate"},
          {"y.data = nullptr", [](A& a) { a.y.data = nullptr; }, status_code::null_pointer, "y"},
          {"weight.data = nullptr", [](A& a) { a.weight.data = nullptr; },
           status_code::null_pointer, "weight"},
          {"gate.shape[1] = 3", [](A& a) { a.gate.shape[1] = 3; }, status_code::bad_shape, "gate"},
          {"weight.shape[0] = 5", [](A& a) { a.weight.shape[0] = 5; }, status_code::bad_shape,
           "weight"},
          {"y.shape[1] = 2", [](A& a) { a.y.shape[1] = 2; }, status_code::bad_shape, "y"},
          {"x.shape[1] = 0", [](A& a) { a.x.shape[1] = 0; }, status_code::bad_shape, "x"},
          {"x.shape[0] = -1", [](A& a) { a.x.shape[0] = -1; }, status_code::bad_shape, "x"},
          {"eps = NAN", [](A& a) { a.eps = NAN; }, status_code::bad_argument, "eps"},
          {"eps = -1e-5f", [](A& a) { a.eps = -1e-5f; }, status_code::bad_argument, "eps"},
      });
  mem.get(y, d_y);
  CHECK(all_nan(y)); // a rejected call writes nothing
}

/// The cases every backend runs.
template <class Backend> void check_gated_rmsnorm_all(const Backend& be) {
  check_gated_rmsnorm<Backend, float>(be, 3, 4096, gated_out::separate);
  check_gated_rmsnorm<Backend, float>(be, 17, 1001, gated_out::over_x);
  check_gated_rmsnorm<Backend, bf16>(be, 4, 300, gated_out::separate);
  check_gated_rmsnorm<Backend, float>(be, 21, 45, gated_out::over_gate);
  check_gated_rmsnorm<Backend, bf16>(be, 10, 2050, gated_out::over_gate);
  check_gated_rmsnorm<Backend, f16>(be, 9, 513, gated_out::over_x);
  check_gated_rmsnorm<Backend, f16>(be, 70, 64, gated_out::separate);
  check_gated_rmsnorm<Backend, float>(be, 0, 8, gated_out::separate);
  check_gated_rmsnorm_bad_arguments(be);
}

} // namespace rodimus::test
