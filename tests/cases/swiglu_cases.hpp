// SwiGLU on any backend against the scalar reference (one body, stamped per backend: see
// support/backend_support.hpp). Tolerance relative to max|want|: f32 1e-5; 16-bit outputs 2^-7
// (both sides round the same f32 value; they may land one 16-bit step apart).
#pragma once

#include <cstdint>
#include <vector>

#include "rodimus/backend/scalar/swiglu.hpp"
#include "support/backend_support.hpp"
#include "support/primitive_support.hpp"

namespace rodimus::test {

template <class Act> double elementwise_tol() {
  return std::is_same_v<Act, float> ? 1e-5 : 1.0 / 128;
}

template <class Backend, class Act> void check_swiglu(const Backend& be, index_t M, index_t F) {
  CAPTURE(M);
  CAPTURE(F);
  auto g = rng(std::uint64_t(M * 7 + F));
  auto fc = uniform<Act>(g, std::size_t(M * 2 * F), -20, 20);
  std::vector<Act> y(std::size_t(M * F)), y_ref(y.size());
  poison(y);
  poison(y_ref);
  backend_arrays<Backend> mem(be);
  Act* dy = mem.put(y);
  swiglu_args<Act> a{make_view<const Act>(mem.put(fc), M, 2 * F), make_view(dy, M, F)};
  REQUIRE(swiglu(be, a).ok());
  mem.get(y, dy);
  a = {make_view<const Act>(fc.data(), M, 2 * F), make_view(y_ref.data(), M, F)};
  REQUIRE(swiglu(scalar{}, a).ok());
  check_close(y, y_ref, elementwise_tol<Act>(), 0.0, "y");
}

/// Every bad argument gives the backend the same status as the reference (nothing is launched).
template <class Backend> void check_swiglu_bad_arguments(const Backend& be) {
  std::vector<float> fc(12), y(6);
  backend_arrays<Backend> mem(be);
  swiglu_args<float> valid{make_view<const float>(mem.put(fc), 3, 4), make_view(mem.put(y), 3, 2)};
  check_bad_cases(
      valid, [&](const swiglu_args<float>& a) { return swiglu(be, a); },
      {{"odd width", [](swiglu_args<float>& a) { a.fc.shape[1] = 3; }, status_code::bad_shape,
        "fc"},
       {"y rows", [](swiglu_args<float>& a) { a.y.shape[0] = 2; }, status_code::bad_shape, "y"},
       {"null fc", [](swiglu_args<float>& a) { a.fc.data = nullptr; }, status_code::null_pointer,
        "fc"}});
}

/// The cases every backend runs.
template <class Backend> void check_swiglu_all(const Backend& be) {
  check_swiglu<Backend, float>(be, 3, 2736);
  check_swiglu<Backend, bf16>(be, 20, 1003);
  check_swiglu<Backend, f16>(be, 2, 45);
  check_swiglu<Backend, float>(be, 0, 5);
  check_swiglu_bad_arguments(be);
}

} // namespace rodimus::test
