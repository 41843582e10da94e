// gather_rows on any backend against the scalar reference (one body, stamped per backend: see
// support/backend_support.hpp): padding rows (-1), repeated rows, more output rows than input rows,
// an input that is a column slice (row stride > D), odd widths, no rows; out poisoned with NaN.
// Tolerance 0: a copy. Bad shapes give every backend the reference's status; bad rows only on the
// host backends, which write nothing then (CUDA writes NaN rows instead:
// tests/cuda/test_runtime_ops.cu).
#pragma once

#include <cstdint>
#include <vector>

#include "rodimus/backend/scalar/gather_rows.hpp"
#include "rodimus/core/memory.hpp"
#include "support/backend_support.hpp"
#include "support/primitive_support.hpp"

namespace rodimus::test {

/// `in` is columns [0, D) of an (M, D + pad) matrix.
template <class Backend>
void check_gather_rows(const Backend& be, index_t M, index_t D, std::vector<std::int64_t> rows,
                       index_t pad = 0) {
  CAPTURE(M);
  CAPTURE(D);
  CAPTURE(rows.size());
  CAPTURE(pad);
  auto g = rng(std::uint64_t(M * 7 + D));
  const index_t R = index_t(rows.size());
  auto in = uniform<float>(g, std::size_t(M * (D + pad)), -5, 5);
  std::vector<float> out(std::size_t(R * D)), out_ref(out.size());
  poison(out);
  poison(out_ref);
  backend_arrays<Backend> mem(be);
  float* dout = mem.put(out);
  gather_rows_args a;
  a.in = tensor_view<const float, 2>::strided(mem.put(in), {M, D}, {D + pad, 1});
  a.rows = mem.put(rows);
  a.num_rows = R;
  a.out = make_view(dout, R, D);
  REQUIRE(gather_rows(be, a).ok());
  mem.get(out, dout);
  a.in = tensor_view<const float, 2>::strided(in.data(), {M, D}, {D + pad, 1});
  a.rows = rows.data();
  a.out = make_view(out_ref.data(), R, D);
  REQUIRE(gather_rows(scalar{}, a).ok());
  check_close(out, out_ref, 0.0, 0.0, "out");
}

/// Every bad argument gives the backend the same status as the reference.
template <class Backend> void check_gather_rows_bad_arguments(const Backend& be) {
  const index_t M = 4, D = 5, R = 3;
  std::vector<float> in(std::size_t(M * D)), out(std::size_t(R * D));
  poison(out);
  const std::vector<std::int64_t> rows = {3, -1, 0};
  backend_arrays<Backend> mem(be);
  float* dout = mem.put(out);
  gather_rows_args valid;
  valid.in = make_view<const float>(mem.put(in), M, D);
  valid.rows = mem.put(rows);
  valid.num_rows = R;
  valid.out = make_view(dout, R, D);
  using A = gather_rows_args;
  auto run = [&](const A& a) { return gather_rows(be, a); };
  check_bad_cases(
      valid, run,
      {{"negative num_rows", [](A& a) { a.num_rows = -2; }, status_code::bad_shape, "num_rows"},
       {"null in", [](A& a) { a.in.data = nullptr; }, status_code::null_pointer, "in"},
       {"null rows", [](A& a) { a.rows = nullptr; }, status_code::null_pointer, "rows"},
       {"null out", [](A& a) { a.out.data = nullptr; }, status_code::null_pointer, "out"},
       {"negative in rows", [](A& a) { a.in.shape[0] = -1; }, status_code::bad_shape, "in"},
       {"out width", [](A& a) { a.out.shape[1] = D - 1; }, status_code::bad_shape, "out"},
       {"out rows", [](A& a) { a.num_rows = R + 1; }, status_code::bad_shape, "out"}});
  if constexpr (memory_traits<Backend>::host_accessible) {
    check_bad_cases(valid, run,
                    {{"row == M",
                      [](A& a) {
                        static const std::int64_t bad[] = {0, 4, 1};
                        a.rows = bad;
                      },
                      status_code::bad_argument, "rows"},
                     {"row -2",
                      [](A& a) {
                        static const std::int64_t bad[] = {-2, 1, 1};
                        a.rows = bad;
                      },
                      status_code::bad_argument, "rows"}});
    mem.get(out, dout);
    CHECK(all_nan(out)); // nothing written by the refused calls
  }
}

/// The cases every backend runs.
template <class Backend> void check_gather_rows_all(const Backend& be) {
  check_gather_rows(be, 9, 2048, {8, -1, 0, 3});
  check_gather_rows(be, 3, 77, {2, 2, -1, 0, 1, -1, 2}, 5);
  check_gather_rows(be, 1, 1, {-1, 0});
  check_gather_rows(be, 5, 40, {});
  check_gather_rows_bad_arguments(be);
}

/// The scalar reference against the formula written out here.
inline void check_gather_rows_formula() {
  auto g = rng(9);
  const index_t M = 4, D = 7;
  auto in = uniform<float>(g, std::size_t(M * D));
  const std::vector<std::int64_t> rows = {3, -1, 3, 0};
  const index_t R = index_t(rows.size());
  std::vector<float> out(std::size_t(R * D));
  poison(out);
  gather_rows_args a;
  a.in = make_view<const float>(in.data(), M, D);
  a.rows = rows.data();
  a.num_rows = R;
  a.out = make_view(out.data(), R, D);
  REQUIRE(gather_rows(scalar{}, a).ok());
  std::vector<float> want;
  for (std::int64_t r : rows)
    for (index_t d = 0; d < D; ++d)
      want.push_back(r < 0 ? 0.0f : in[std::size_t(r * D + d)]);
  check_close(out, want, 0.0, 0.0, "out");
}

} // namespace rodimus::test
