// argmax_rows on any backend against the scalar reference (one body, stamped per backend: see
// support/backend_support.hpp): random rows with the maximum repeated later in the row (the first
// index must win), NaN entries and a row of NaN only, -0 against +0, -inf rows, a column slice
// (row stride > V), V = 1, the LM head's width (126 464); out poisoned with -7. Exact: every
// backend must give the reference's indices.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "rodimus/backend/scalar/argmax_rows.hpp"
#include "rodimus/core/memory.hpp"
#include "support/backend_support.hpp"
#include "support/primitive_support.hpp"

namespace rodimus::test {

/// M rows of V random entries in an (M, V + pad) matrix; `special` adds the edge rows (needs V >=
/// 8).
template <class Backend>
void check_argmax_rows(const Backend& be, index_t M, index_t V, index_t pad, bool special) {
  CAPTURE(M);
  CAPTURE(V);
  CAPTURE(pad);
  auto g = rng(std::uint64_t(M * 131 + V));
  const index_t ld = V + pad;
  auto in = uniform<float>(g, std::size_t(M * ld), -30, 30);
  for (index_t m = 0; m < M; ++m) {
    // The row's maximum repeated at a later index: the first must win.
    float* row = &in[std::size_t(m * ld)];
    index_t best = 0;
    for (index_t i = 1; i < V; ++i)
      if (row[i] > row[best]) best = i;
    if (V > 2) row[(best + 1 + index_t(g() % std::uint64_t(V - 1))) % V] = row[best];
  }
  if (special && M >= 4 && V >= 8) {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    const float inf = std::numeric_limits<float>::infinity();
    for (index_t i = 0; i < V; ++i) {
      in[std::size_t(0 * ld + i)] = nan;                                   // row 0: NaN only -> 0
      in[std::size_t(1 * ld + i)] = i % 3 ? nan : -1.0f - float(i);        // NaN skipped -> 0
      in[std::size_t(2 * ld + i)] = i == 5 ? 0.0f : i == 2 ? -0.0f : -inf; // +0 beats -0
      in[std::size_t(3 * ld + i)] = -inf;                                  // all -inf -> 0
    }
  }
  std::vector<std::int64_t> out(std::size_t(M), -7), out_ref(out);
  backend_arrays<Backend> mem(be);
  std::int64_t* dout = mem.put(out);
  argmax_rows_args a;
  a.in = tensor_view<const float, 2>::strided(mem.put(in), {M, V}, {ld, 1});
  a.out = dout;
  REQUIRE(argmax_rows(be, a).ok());
  mem.get(out, dout);
  a.in = tensor_view<const float, 2>::strided(in.data(), {M, V}, {ld, 1});
  a.out = out_ref.data();
  REQUIRE(argmax_rows(scalar{}, a).ok());
  for (index_t m = 0; m < M; ++m) {
    CAPTURE(m);
    CHECK(out[std::size_t(m)] == out_ref[std::size_t(m)]);
  }
}

/// Every bad argument gives the backend the same status as the reference.
template <class Backend> void check_argmax_rows_bad_arguments(const Backend& be) {
  const index_t M = 3, V = 5;
  std::vector<float> in(std::size_t(M * V), 1.0f);
  std::vector<std::int64_t> out(std::size_t(M), -7);
  backend_arrays<Backend> mem(be);
  argmax_rows_args valid;
  valid.in = make_view<const float>(mem.put(in), M, V);
  valid.out = mem.put(out);
  using A = argmax_rows_args;
  auto run = [&](const A& a) { return argmax_rows(be, a); };
  check_bad_cases(
      valid, run,
      {{"negative rows", [](A& a) { a.in.shape[0] = -1; }, status_code::bad_shape, "in"},
       {"empty rows", [](A& a) { a.in.shape[1] = 0; }, status_code::bad_shape, "in"},
       {"V beyond 32 bits", [](A& a) { a.in.shape[1] = index_t(1) << 32; }, status_code::bad_shape,
        "in"},
       {"null in", [](A& a) { a.in.data = nullptr; }, status_code::null_pointer, "in"},
       {"null out", [](A& a) { a.out = nullptr; }, status_code::null_pointer, "out"}});
  std::vector<std::int64_t> after(out.size());
  mem.get(after, valid.out);
  for (std::int64_t v : after)
    CHECK(v == -7); // nothing written by the refused calls
}

/// The cases every backend runs.
template <class Backend> void check_argmax_rows_all(const Backend& be) {
  check_argmax_rows(be, 6, 126464, 0, true);
  check_argmax_rows(be, 70, 1000, 3, true);
  check_argmax_rows(be, 5, 1, 0, false);
  check_argmax_rows(be, 0, 10, 0, false);
  check_argmax_rows_bad_arguments(be);
}

/// The scalar reference against the formula written out here (first maximum by >, NaN skipped).
inline void check_argmax_rows_formula() {
  auto g = rng(17);
  const index_t M = 9, V = 333;
  auto in = uniform<float>(g, std::size_t(M * V), -4, 4);
  for (index_t m = 0; m < M; ++m) {
    in[std::size_t(m * V + index_t(g() % 333))] = 9.0f; // ties at the top, sometimes
    in[std::size_t(m * V + index_t(g() % 333))] = 9.0f;
    in[std::size_t(m * V + index_t(g() % 333))] = std::numeric_limits<float>::quiet_NaN();
  }
  std::vector<std::int64_t> out(std::size_t(M), -7);
  argmax_rows_args a;
  a.in = make_view<const float>(in.data(), M, V);
  a.out = out.data();
  REQUIRE(argmax_rows(scalar{}, a).ok());
  for (index_t m = 0; m < M; ++m) {
    index_t want = -1;
    for (index_t i = 0; i < V; ++i) {
      const float v = in[std::size_t(m * V + i)];
      if (!std::isnan(v) && (want < 0 || v > in[std::size_t(m * V + want)])) want = i;
    }
    CAPTURE(m);
    CHECK(out[std::size_t(m)] == want);
  }
}

} // namespace rodimus::test
