// scale_add on any backend against the scalar reference (one body, stamped per backend: see
// support/backend_support.hpp): odd widths, one row and many. Tolerance relative to max|o_ref|:
// 1e-6 (one fused multiply-add in f32 against the double reference rounded once: at most one f32
// ulp apart, 2^-23 of the result). Bad arguments give every backend the reference's status.
#pragma once

#include <cstdint>
#include <vector>

#include "rodimus/backend/scalar/scale_add.hpp"
#include "support/backend_support.hpp"
#include "support/primitive_support.hpp"

namespace rodimus::test {

template <class Backend> void check_scale_add(const Backend& be, index_t M, index_t E) {
  CAPTURE(M);
  CAPTURE(E);
  auto g = rng(std::uint64_t(M * 17 + E));
  auto o = uniform<float>(g, std::size_t(M * E), -4, 4);
  auto c = uniform<float>(g, std::size_t(M * E), -4, 4);
  auto w = uniform<float>(g, std::size_t(E), -2, 2);
  auto o_ref = o;
  backend_arrays<Backend> mem(be);
  float* d_o = mem.put(o);
  scale_add_args a;
  a.o = make_view(d_o, M, E);
  a.c = make_view<const float>(mem.put(c), M, E);
  a.w = make_view<const float>(mem.put(w), E);
  REQUIRE(scale_add(be, a).ok());
  mem.get(o, d_o);
  a.o = make_view(o_ref.data(), M, E);
  a.c = make_view<const float>(c.data(), M, E);
  a.w = make_view<const float>(w.data(), E);
  REQUIRE(scale_add(scalar{}, a).ok());
  check_close(o, o_ref, 1e-6, 0.0, "o");
}

template <class Backend> void check_scale_add_bad_arguments(const Backend& be) {
  const index_t M = 3, E = 4;
  std::vector<float> o(std::size_t(M * E)), c(o.size()), w(static_cast<std::size_t>(E));
  backend_arrays<Backend> mem(be);
  scale_add_args valid;
  valid.o = make_view(mem.put(o), M, E);
  valid.c = make_view<const float>(mem.put(c), M, E);
  valid.w = make_view<const float>(mem.put(w), E);
  using A = scale_add_args;
  check_bad_cases(valid, [&](const A& a) { return scale_add(be, a); },
                  {{"null o", [](A& a) { a.o.data = nullptr; }, status_code::null_pointer, "o"},
                   {"null c", [](A& a) { a.c.data = nullptr; }, status_code::null_pointer, "c"},
                   {"null w", [](A& a) { a.w.data = nullptr; }, status_code::null_pointer, "w"},
                   {"negative width", [](A& a) { a.o.shape[1] = -1; }, status_code::bad_shape, "o"},
                   {"c width", [](A& a) { a.c.shape[1] = E + 1; }, status_code::bad_shape, "c"},
                   {"w size", [](A& a) { a.w.shape[0] = E - 1; }, status_code::bad_shape, "w"}});
}

template <class Backend> void check_scale_add_all(const Backend& be) {
  check_scale_add(be, 3, 2048);
  check_scale_add(be, 40, 1003);
  check_scale_add(be, 1, 5);
  check_scale_add(be, 0, 7);
  check_scale_add_bad_arguments(be);
}

/// The scalar reference against the formula written out here.
inline void check_scale_add_formula() {
  auto g = rng(17);
  const index_t M = 2, E = 11;
  auto o = uniform<float>(g, std::size_t(M * E));
  auto c = uniform<float>(g, std::size_t(M * E));
  auto w = uniform<float>(g, std::size_t(E));
  std::vector<double> want(o.size());
  for (index_t m = 0; m < M; ++m)
    for (index_t e = 0; e < E; ++e) {
      const std::size_t i = std::size_t(m * E + e);
      want[i] = double(o[i]) + double(c[i]) * double(w[std::size_t(e)]);
    }
  scale_add_args a;
  a.o = make_view(o.data(), M, E);
  a.c = make_view<const float>(c.data(), M, E);
  a.w = make_view<const float>(w.data(), E);
  REQUIRE(scale_add(scalar{}, a).ok());
  check_close(o, want, 1e-7, 0.0, "o"); // the reference rounds the double result once to f32
}

} // namespace rodimus::test
