// embedding on any backend against the scalar reference (one body, stamped per backend: see
// support/backend_support.hpp): f32, bf16 and f16 tables, a table that is a column slice of a wider
// one (row stride > D), repeated ids and the first and last row, scale 1 and not, odd widths; out
// poisoned with NaN. Tolerance 0: every backend computes the f32 product f32(table) * scale, which
// is what the reference's double product rounds to. Bad shapes give every backend the reference's
// status; bad ids only on the host backends, which write nothing then (CUDA writes NaN rows
// instead: tests/cuda/test_runtime_ops.cu).
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "rodimus/backend/scalar/embedding.hpp"
#include "rodimus/core/memory.hpp"
#include "support/backend_support.hpp"
#include "support/primitive_support.hpp"

namespace rodimus::test {

/// M ids in [0, V): the first and last row included, repeats likely when M > V.
inline std::vector<std::int64_t> random_ids(std::mt19937_64& g, index_t M, index_t V) {
  std::uniform_int_distribution<std::int64_t> d(0, V - 1);
  std::vector<std::int64_t> ids(static_cast<std::size_t>(M));
  for (auto& id : ids)
    id = d(g);
  if (M > 0) ids[0] = V - 1;
  if (M > 1) ids[std::size_t(M - 1)] = 0;
  return ids;
}

/// The table is columns [0, D) of a (V, D + pad) matrix.
template <class Backend, class Table>
void check_embedding(const Backend& be, index_t V, index_t D, index_t M, float scale,
                     index_t pad = 0) {
  CAPTURE(V);
  CAPTURE(D);
  CAPTURE(M);
  CAPTURE(scale);
  CAPTURE(pad);
  auto g = rng(std::uint64_t(V * 3 + D * 5 + M));
  auto table = uniform<Table>(g, std::size_t(V * (D + pad)), -2, 2);
  const auto ids = random_ids(g, M, V);
  std::vector<float> out(std::size_t(M * D)), out_ref(out.size());
  poison(out);
  poison(out_ref);
  backend_arrays<Backend> mem(be);
  float* dout = mem.put(out);
  embedding_args<Table> a;
  a.table = tensor_view<const Table, 2>::strided(mem.put(table), {V, D}, {D + pad, 1});
  a.ids = mem.put(ids);
  a.num_ids = M;
  a.out = make_view(dout, M, D);
  a.scale = scale;
  REQUIRE(embedding(be, a).ok());
  mem.get(out, dout);
  a.table = tensor_view<const Table, 2>::strided(table.data(), {V, D}, {D + pad, 1});
  a.ids = ids.data();
  a.out = make_view(out_ref.data(), M, D);
  REQUIRE(embedding(scalar{}, a).ok());
  check_close(out, out_ref, 0.0, 0.0, "out");
}

/// Every bad argument gives the backend the same status as the reference.
template <class Backend> void check_embedding_bad_arguments(const Backend& be) {
  const index_t V = 5, D = 6, M = 3;
  std::vector<bf16> table(std::size_t(V * D));
  std::vector<float> out(std::size_t(M * D));
  poison(out);
  const std::vector<std::int64_t> ids = {0, 4, 2};
  backend_arrays<Backend> mem(be);
  float* dout = mem.put(out);
  embedding_args<bf16> valid;
  valid.table = make_view<const bf16>(mem.put(table), V, D);
  valid.ids = mem.put(ids);
  valid.num_ids = M;
  valid.out = make_view(dout, M, D);
  using A = embedding_args<bf16>;
  auto run = [&](const A& a) { return embedding(be, a); };
  check_bad_cases(
      valid, run,
      {{"negative num_ids", [](A& a) { a.num_ids = -1; }, status_code::bad_shape, "num_ids"},
       {"null table", [](A& a) { a.table.data = nullptr; }, status_code::null_pointer, "table"},
       {"null ids", [](A& a) { a.ids = nullptr; }, status_code::null_pointer, "ids"},
       {"null out", [](A& a) { a.out.data = nullptr; }, status_code::null_pointer, "out"},
       {"negative vocabulary", [](A& a) { a.table.shape[0] = -1; }, status_code::bad_shape,
        "table"},
       {"out width", [](A& a) { a.out.shape[1] = D + 1; }, status_code::bad_shape, "out"},
       {"out rows", [](A& a) { a.num_ids = M - 1; }, status_code::bad_shape, "out"}});
  if constexpr (memory_traits<Backend>::host_accessible) {
    check_bad_cases(valid, run,
                    {{"id == V",
                      [](A& a) {
                        static const std::int64_t bad[] = {0, 5, 2};
                        a.ids = bad;
                      },
                      status_code::bad_argument, "ids"},
                     {"negative id",
                      [](A& a) {
                        static const std::int64_t bad[] = {0, 1, -1};
                        a.ids = bad;
                      },
                      status_code::bad_argument, "ids"}});
    mem.get(out, dout);
    CHECK(all_nan(out)); // nothing written by the refused calls
  }
}

/// The cases every backend runs.
template <class Backend> void check_embedding_all(const Backend& be) {
  check_embedding<Backend, float>(be, 50, 129, 7, 1.0f);
  check_embedding<Backend, bf16>(be, 300, 2048, 5, 1.0f);
  check_embedding<Backend, bf16>(be, 4, 77, 9, 8.0f, 3); // repeats, sqrt(64) scale, a column slice
  check_embedding<Backend, f16>(be, 31, 250, 3, 0.37f);
  check_embedding<Backend, float>(be, 10, 33, 0, 1.0f); // no ids
  check_embedding_bad_arguments(be);
}

/// The scalar reference against the formula written out here.
inline void check_embedding_formula() {
  auto g = rng(5);
  const index_t V = 20, D = 13, M = 6;
  const float scale = 3.0f;
  auto table = uniform<bf16>(g, std::size_t(V * D), -2, 2);
  const auto ids = random_ids(g, M, V);
  std::vector<float> out(std::size_t(M * D));
  poison(out);
  embedding_args<bf16> a;
  a.table = make_view<const bf16>(table.data(), V, D);
  a.ids = ids.data();
  a.num_ids = M;
  a.out = make_view(out.data(), M, D);
  a.scale = scale;
  REQUIRE(embedding(scalar{}, a).ok());
  std::vector<float> want(out.size());
  for (index_t m = 0; m < M; ++m)
    for (index_t d = 0; d < D; ++d)
      want[std::size_t(m * D + d)] = float(table[std::size_t(ids[std::size_t(m)] * D + d)]) * scale;
  check_close(out, want, 0.0, 0.0, "out");
}

} // namespace rodimus::test
