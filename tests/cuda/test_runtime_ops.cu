// The small primitives that keep the model runner on the device (embedding, channel_gate,
// scale_add, gather_rows, argmax_rows) on CUDA: the shared bodies (tests/cases/<name>_cases.hpp)
// against the scalar reference, and what CUDA does with index contents it cannot check (they live
// in device memory; the host backends refuse them with bad_argument): an embedding id outside [0,
// V) and a gather row outside [-1, M) write a row of NaN, the other rows are exact.
#include "cases/argmax_rows_cases.hpp"
#include "cases/channel_gate_cases.hpp"
#include "cases/embedding_cases.hpp"
#include "cases/gather_rows_cases.hpp"
#include "cases/scale_add_cases.hpp"
#include "rodimus/backend/cuda/argmax_rows.cuh"
#include "rodimus/backend/cuda/channel_gate.cuh"
#include "rodimus/backend/cuda/embedding.cuh"
#include "rodimus/backend/cuda/gather_rows.cuh"
#include "rodimus/backend/cuda/scale_add.cuh"
#include "support/cuda_support.hpp"

#include <cmath>

using namespace rodimus;

TEST_CASE("cuda embedding, channel_gate, scale_add, gather_rows and argmax_rows match the scalar "
          "reference") {
  RODIMUS_REQUIRE_CUDA_DEVICE();
  const auto be = test::cuda_backend();
  test::check_embedding_all(be);
  test::check_channel_gate_all(be);
  test::check_scale_add_all(be);
  test::check_gather_rows_all(be);
  test::check_argmax_rows_all(be);
}

namespace {

/// True when row r of an (R, D) matrix is all NaN.
bool row_all_nan(const std::vector<float>& v, index_t D, index_t r) {
  for (index_t d = 0; d < D; ++d)
    if (!std::isnan(v[std::size_t(r * D + d)])) return false;
  return true;
}

} // namespace

TEST_CASE("cuda embedding: an id outside [0, V) writes a row of NaN") {
  RODIMUS_REQUIRE_CUDA_DEVICE();
  const auto be = test::cuda_backend();
  auto g = test::rng(31);
  const index_t V = 7, D = 300;
  const std::vector<std::int64_t> ids = {3, 7, -1, 0, std::int64_t(1) << 40, 6};
  const index_t M = index_t(ids.size());
  auto table = test::uniform<bf16>(g, std::size_t(V * D), -2, 2);
  std::vector<float> out(std::size_t(M * D));
  test::poison(out);
  test::backend_arrays<cuda<90>> mem(be);
  float* dout = mem.put(out);
  embedding_args<bf16> a;
  a.table = make_view<const bf16>(mem.put(table), V, D);
  a.ids = mem.put(ids);
  a.num_ids = M;
  a.out = make_view(dout, M, D);
  REQUIRE(embedding(be, a).ok());
  mem.get(out, dout);
  for (index_t m = 0; m < M; ++m) {
    CAPTURE(m);
    const std::int64_t id = ids[std::size_t(m)];
    if (id < 0 || id >= V) {
      CHECK(row_all_nan(out, D, m));
      continue;
    }
    bool same = true;
    for (index_t d = 0; d < D; ++d)
      same = same && out[std::size_t(m * D + d)] == float(table[std::size_t(id * D + d)]);
    CHECK(same);
  }
}

TEST_CASE("cuda gather_rows: a row outside [-1, M) writes a row of NaN") {
  RODIMUS_REQUIRE_CUDA_DEVICE();
  const auto be = test::cuda_backend();
  auto g = test::rng(37);
  const index_t M = 4, D = 129;
  const std::vector<std::int64_t> rows = {3, 4, -1, -2, 0, std::int64_t(-1) << 40};
  const index_t R = index_t(rows.size());
  auto in = test::uniform<float>(g, std::size_t(M * D));
  std::vector<float> out(std::size_t(R * D));
  test::poison(out);
  test::backend_arrays<cuda<90>> mem(be);
  float* dout = mem.put(out);
  gather_rows_args a;
  a.in = make_view<const float>(mem.put(in), M, D);
  a.rows = mem.put(rows);
  a.num_rows = R;
  a.out = make_view(dout, R, D);
  REQUIRE(gather_rows(be, a).ok());
  mem.get(out, dout);
  for (index_t i = 0; i < R; ++i) {
    CAPTURE(i);
    const std::int64_t r = rows[std::size_t(i)];
    if (r < -1 || r >= M) {
      CHECK(row_all_nan(out, D, i));
      continue;
    }
    bool same = true;
    for (index_t d = 0; d < D; ++d)
      same = same && out[std::size_t(i * D + d)] == (r < 0 ? 0.0f : in[std::size_t(r * D + d)]);
    CHECK(same);
  }
}
