// Rotary embedding on any backend against the scalar reference (one body, stamped per backend: see
// support/backend_support.hpp): the whole head and a partial rotary_dim (channels past it
// untouched), rotary_dim 0 (the identity), per-sequence position offsets (small and ~10^5) or none,
// packed varlen batches with empty sequences, heads inside a wider row (strided x, the gaps
// untouched), a head wider than 1024 rotated channels, f32, bf16 and f16; no tokens; and every bad
// argument: the shape checks on every backend (the same status as the reference, x untouched), the
// checks that read cu_seqlens and position_offset where the backend's memory is host memory (on
// CUDA they live in device memory and are the caller's; see backend/cuda/rotary.cuh).
//
// Tolerances, relative to max|want|: f32 1e-5 (theta is the reference's expression on every
// backend, the angle one f32 product; cos/sin differ by a few ulp between libm and CUDA; the
// rotation is two f32 products and a sum). 16-bit 2^-7: the cos/sin tables are rounded to the
// 16-bit type like the reference, and a few-ulp difference in cos can still round them one step
// apart (2^-9 of |x| at most); with the output's own rounding that stays below 2^-7 max|x|.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "rodimus/backend/scalar/rotary.hpp"
#include "support/backend_support.hpp"
#include "support/primitive_support.hpp"

namespace rodimus::test {

template <class Act> double rotary_tol() { return std::is_same_v<Act, float> ? 1e-5 : 1.0 / 128; }

/// One rotary case: x (B, T, H, D) with rows of H * (D + gap) elements, rotary_dim, packed
/// sequences (cu non-empty: B = 1), offsets n * offset_step + 7 (offset_step < 0: none).
struct rotary_case {
  index_t T = 33, H = 3, D = 128;
  int rotary_dim = -1;
  std::vector<std::int64_t> cu;
  std::int64_t offset_step = 1000;
  index_t gap = 0; // elements between heads (a head of a wider row, like q inside qkv)
};

template <class Backend, class Act> void check_rotary(const Backend& be, const rotary_case& c) {
  const index_t T = c.T, H = c.H, D = c.D, Dp = D + c.gap;
  CAPTURE(T);
  CAPTURE(H);
  CAPTURE(D);
  CAPTURE(c.rotary_dim);
  CAPTURE(c.cu.size());
  CAPTURE(c.offset_step);
  CAPTURE(c.gap);
  auto g = rng(std::uint64_t(T * 3 + H + D));
  const index_t B = c.cu.empty() ? 2 : 1;
  const index_t N = c.cu.empty() ? B : index_t(c.cu.size()) - 1;
  auto x = uniform<Act>(g, std::size_t(B * T * H * Dp));
  auto x_ref = x;
  std::vector<std::int64_t> off;
  for (index_t n = 0; n < N; ++n)
    off.push_back(n * c.offset_step + 7);
  const index_t shape[4] = {B, T, H, D}, stride[4] = {T * H * Dp, H * Dp, Dp, 1};

  backend_arrays<Backend> mem(be);
  Act* d_x = mem.put(x);
  rotary_args<Act> a;
  a.x = tensor_view<Act, 4>::strided(d_x, shape, stride);
  if (c.offset_step >= 0) a.position_offset = mem.put(off);
  a.rotary_dim = c.rotary_dim;
  if (!c.cu.empty()) {
    a.cu_seqlens = mem.put(c.cu);
    a.num_seqs = N;
  }
  REQUIRE(rotary(be, a).ok());
  mem.get(x, d_x);

  a.x = tensor_view<Act, 4>::strided(x_ref.data(), shape, stride);
  if (c.offset_step >= 0) a.position_offset = off.data();
  if (!c.cu.empty()) a.cu_seqlens = c.cu.data();
  REQUIRE(rotary(scalar{}, a).ok());
  if (c.rotary_dim == 0) CHECK(widen(x) == widen(x_ref)); // the identity, bit for bit
  check_close(x, x_ref, rotary_tol<Act>(), 0.0, "x");
  // Channels past rotary_dim and the gaps between heads are never written: equal bit for bit.
  const index_t r = c.rotary_dim < 0 ? D : index_t(c.rotary_dim);
  std::size_t changed = 0;
  for (std::size_t i = 0; i < x.size(); ++i)
    if (index_t(i) % Dp >= r && !(load_as<double>(x[i]) == load_as<double>(x_ref[i]))) ++changed;
  CHECK(changed == 0);
}

/// Every bad argument gives the backend the same status as the reference and leaves x untouched.
template <class Backend> void check_rotary_bad_arguments(const Backend& be) {
  std::vector<float> x(2 * 3 * 2 * 8);
  poison(x);
  const std::vector<std::int64_t> cu = {0, 1, 3}, offs = {4, 5};
  backend_arrays<Backend> mem(be);
  float* d_x = mem.put(x);
  rotary_args<float> valid; // (B 2, T 3, H 2, D 8), two sequences
  valid.x = make_view(d_x, 2, 3, 2, 8);
  valid.position_offset = mem.put(offs);
  using A = rotary_args<float>;
  check_bad_cases(
      valid, [&](const A& a) { return rotary(be, a); },
      {
          {"rotary_dim = 5", [](A& a) { a.rotary_dim = 5; }, status_code::bad_argument,
           "rotary_dim"},
          {"rotary_dim = 10", [](A& a) { a.rotary_dim = 10; }, status_code::bad_argument,
           "rotary_dim"},
          {"rotary_dim = -2", [](A& a) { a.rotary_dim = -2; }, status_code::bad_argument,
           "rotary_dim"},
          {"base = 0", [](A& a) { a.base = 0.0f; }, status_code::bad_argument, "base"},
          {"base = inf", [](A& a) { a.base = INFINITY; }, status_code::bad_argument, "base"},
          {"x.shape[3] = 0", [](A& a) { a.x.shape[3] = 0; }, status_code::bad_shape, "x"},
          {"x.shape[0] = -1", [](A& a) { a.x.shape[0] = -1; }, status_code::bad_shape, "x"},
          {"x.data = nullptr", [](A& a) { a.x.data = nullptr; }, status_code::null_pointer, "x"},
      });
  // Packed: cu_seqlens with B = 2, and a negative num_seqs.
  A packed = valid;
  packed.cu_seqlens = mem.put(cu);
  packed.num_seqs = 2;
  check_status(rotary(be, packed), status_code::bad_shape, "cu_seqlens");
  packed.x = make_view(d_x, 1, 6, 2, 8);
  packed.num_seqs = -1;
  check_status(rotary(be, packed), status_code::bad_shape, "num_seqs");
  if constexpr (memory_traits<Backend>::host_accessible) {
    // The checks that read the index arrays (host memory here).
    const std::vector<std::int64_t> bad_cu = {0, 1, 4}, bad_offs = {4, -1};
    packed.num_seqs = 2;
    packed.cu_seqlens = mem.put(bad_cu); // ends at 4, not T = 6
    check_status(rotary(be, packed), status_code::bad_argument, "cu_seqlens");
    A negative = valid;
    negative.position_offset = mem.put(bad_offs);
    check_status(rotary(be, negative), status_code::bad_argument, "position_offset");
  }
  mem.get(x, d_x);
  CHECK(all_nan(x)); // a rejected call writes nothing
}

/// The cases every backend runs.
template <class Backend> void check_rotary_all(const Backend& be) {
  rotary_case c; // the whole head (rotary_dim -1), offsets n * 1000 + 7
  check_rotary<Backend, float>(be, c);
  c = {};
  c.T = 40;
  c.H = 2;
  c.D = 100;
  c.rotary_dim = 60;
  c.cu = {0, 5, 5, 40};
  check_rotary<Backend, float>(be, c);
  c = {};
  c.T = 9;
  c.H = 4;
  c.D = 64;
  c.rotary_dim = 32;
  check_rotary<Backend, bf16>(be, c);
  // Large positions (~10^5: the angle's f32 rounding and cos/sin range reduction), no offsets.
  c = {};
  c.T = 17;
  c.H = 2;
  c.D = 128;
  c.offset_step = 100000;
  check_rotary<Backend, float>(be, c);
  c.offset_step = -1;
  check_rotary<Backend, f16>(be, c);
  // Packed with empty sequences first and last, heads inside a wider row.
  c = {};
  c.T = 50;
  c.H = 5;
  c.D = 96;
  c.rotary_dim = 64;
  c.cu = {0, 0, 7, 8, 30, 50, 50};
  c.gap = 24;
  check_rotary<Backend, bf16>(be, c);
  c.rotary_dim = 0; // the identity
  check_rotary<Backend, float>(be, c);
  // A head of 1100 rotated channels: pairs past the 512-entry theta table on CUDA.
  c = {};
  c.T = 5;
  c.H = 1;
  c.D = 1102;
  c.rotary_dim = 1100;
  c.offset_step = 3;
  check_rotary<Backend, float>(be, c);
  c = {}; // no tokens
  c.T = 0;
  check_rotary<Backend, float>(be, c);
  c.cu = {0}; // no sequences
  check_rotary<Backend, float>(be, c);
  check_rotary_bad_arguments(be);
}

} // namespace rodimus::test
