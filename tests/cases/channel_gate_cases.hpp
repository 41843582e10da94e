// channel_gate on any backend against the scalar reference (one body, stamped per backend: see
// support/backend_support.hpp): moderate and saturating pre-activations (|u + bias| up to ~100,
// where exp(-z) overflows f32), odd widths, one row and many. Tolerance relative to max|u_ref|:
// 1e-5 (f32 addition and f32 exp against the double reference: the rounding of z moves sigmoid by
// at most |z| (1 - s) 2^-24 relative, a few ulp, as the other f32 element-wise kernels). Bad
// arguments give every backend the reference's status.
#pragma once

#include <cstdint>
#include <vector>

#include "rodimus/backend/scalar/channel_gate.hpp"
#include "support/backend_support.hpp"
#include "support/primitive_support.hpp"

namespace rodimus::test {

template <class Backend>
void check_channel_gate(const Backend& be, index_t M, index_t E, double range) {
  CAPTURE(M);
  CAPTURE(E);
  CAPTURE(range);
  auto g = rng(std::uint64_t(M * 11 + E) + std::uint64_t(range));
  auto u = uniform<float>(g, std::size_t(M * E), -range, range);
  auto bias = uniform<float>(g, std::size_t(E), -1, 1);
  auto x = uniform<float>(g, std::size_t(M * E), -3, 3);
  auto u_ref = u;
  backend_arrays<Backend> mem(be);
  float* du = mem.put(u);
  channel_gate_args a;
  a.u = make_view(du, M, E);
  a.bias = make_view<const float>(mem.put(bias), E);
  a.x = make_view<const float>(mem.put(x), M, E);
  REQUIRE(channel_gate(be, a).ok());
  mem.get(u, du);
  a.u = make_view(u_ref.data(), M, E);
  a.bias = make_view<const float>(bias.data(), E);
  a.x = make_view<const float>(x.data(), M, E);
  REQUIRE(channel_gate(scalar{}, a).ok());
  check_close(u, u_ref, 1e-5, 0.0, "u");
}

template <class Backend> void check_channel_gate_bad_arguments(const Backend& be) {
  const index_t M = 3, E = 4;
  std::vector<float> u(std::size_t(M * E)), bias(static_cast<std::size_t>(E)), x(u.size());
  backend_arrays<Backend> mem(be);
  channel_gate_args valid;
  valid.u = make_view(mem.put(u), M, E);
  valid.bias = make_view<const float>(mem.put(bias), E);
  valid.x = make_view<const float>(mem.put(x), M, E);
  using A = channel_gate_args;
  check_bad_cases(
      valid, [&](const A& a) { return channel_gate(be, a); },
      {{"null u", [](A& a) { a.u.data = nullptr; }, status_code::null_pointer, "u"},
       {"null x", [](A& a) { a.x.data = nullptr; }, status_code::null_pointer, "x"},
       {"null bias", [](A& a) { a.bias.data = nullptr; }, status_code::null_pointer, "bias"},
       {"negative rows", [](A& a) { a.u.shape[0] = -1; }, status_code::bad_shape, "u"},
       {"bias size", [](A& a) { a.bias.shape[0] = E + 1; }, status_code::bad_shape, "bias"},
       {"x rows", [](A& a) { a.x.shape[0] = M - 1; }, status_code::bad_shape, "x"}});
}

template <class Backend> void check_channel_gate_all(const Backend& be) {
  check_channel_gate(be, 3, 2048, 8.0);
  check_channel_gate(be, 17, 1001, 100.0);
  check_channel_gate(be, 1, 37, 4.0);
  check_channel_gate(be, 0, 5, 4.0);
  check_channel_gate_bad_arguments(be);
}

/// The scalar reference against the formula written out here.
inline void check_channel_gate_formula() {
  auto g = rng(13);
  const index_t M = 3, E = 9;
  auto u = uniform<float>(g, std::size_t(M * E), -6, 6);
  auto bias = uniform<float>(g, std::size_t(E));
  auto x = uniform<float>(g, std::size_t(M * E), -2, 2);
  std::vector<double> want(u.size());
  for (index_t m = 0; m < M; ++m)
    for (index_t e = 0; e < E; ++e) {
      const std::size_t i = std::size_t(m * E + e);
      const double z = double(u[i]) + double(bias[std::size_t(e)]);
      want[i] = double(x[i]) / (1.0 + std::exp(-z));
    }
  channel_gate_args a;
  a.u = make_view(u.data(), M, E);
  a.bias = make_view<const float>(bias.data(), E);
  a.x = make_view<const float>(x.data(), M, E);
  REQUIRE(channel_gate(scalar{}, a).ok());
  check_close(u, want, 1e-7, 0.0, "u"); // the reference rounds the double result once to f32
}

} // namespace rodimus::test
