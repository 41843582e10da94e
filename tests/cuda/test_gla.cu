// gla_scan and gla_chunked on CUDA: the shared body (tests/cases/gla_cases.hpp) against the scalar
// reference, the invariants between runs, state-slot pools (in place, padding), the bad arguments,
// and the sequences a device run skips where the host would refuse them; then gla_chunked in the
// rounded mode (bf16 tensor cores) within its bound, its skip rule, and every column tile of
// cuda_tuning (within the bound, the same bits as the default). Without a GPU every case
// prints "skipped: no CUDA device" and passes.
#include "cases/gla_cases.hpp"
#include "rodimus/backend/cuda/gla.cuh"
#include "support/cuda_support.hpp"

using namespace rodimus;

TEST_CASE("cuda gla_scan and gla_chunked match the scalar reference") {
  RODIMUS_REQUIRE_CUDA_DEVICE();
  test::check_gla_all(test::cuda_backend());
}

TEST_CASE("cuda gla: chunked == scan, split prefill, packed == separate") {
  RODIMUS_REQUIRE_CUDA_DEVICE();
  test::check_gla_invariants(test::cuda_backend());
}

TEST_CASE("cuda gla: slot pools, in place and with padding sequences") {
  RODIMUS_REQUIRE_CUDA_DEVICE();
  test::check_gla_slots(test::cuda_backend());
}

TEST_CASE("cuda gla: bad arguments give the reference's status, nothing written") {
  RODIMUS_REQUIRE_CUDA_DEVICE();
  test::check_gla_bad_arguments(test::cuda_backend());
}

TEST_CASE("cuda gla: sequences with slots the host would refuse are skipped, in bounds") {
  RODIMUS_REQUIRE_CUDA_DEVICE();
  test::check_gla_skipped_sequences(test::cuda_backend());
}

// be.matmul = cuda_matmul::rounded: gla_chunked on the bf16 tensor cores (gla_chunked_mma.cuh)
// within its per-element bound (tests/cases/gla_cases.hpp), and its skip rule.
TEST_CASE("cuda gla_chunked with cuda_matmul::rounded (bf16 tensor cores) is within its bound") {
  RODIMUS_REQUIRE_CUDA_DEVICE();
  auto be = test::cuda_backend();
  be.matmul = cuda_matmul::rounded;
  test::check_gla_rounded_all(be);
}

TEST_CASE("cuda gla_chunked with cuda_matmul::rounded: sequences with slots outside the pool are "
          "skipped, in bounds") {
  RODIMUS_REQUIRE_CUDA_DEVICE();
  auto be = test::cuda_backend();
  be.matmul = cuda_matmul::rounded;
  // Pool of N + 3 = 8 rows: sequences 0 (-1), 2 (9), 3 (-5) skipped, their o rows left NaN and
  // no pool row touched; the others within the bound.
  test::gla_rounded_case c;
  c.lengths = {10, 20, 1, 14, 80};
  c.slots = true;
  c.given_slots = {-1, 2, 9, -5, 0};
  c.in_place = true;
  c.positive = true;
  test::check_gla_rounded<cuda<90>, float>(be, c);
  // Offsets no host backend would take: every access stays inside q, k, v, g, o
  // (compute-sanitizer memcheck checks that on the GPU).
  const index_t T = 60, K = 64, V = 40;
  auto r = test::rng(43);
  const test::gla_inputs<float, float> in(r, 1, 1, T, K, V, test::gla_decays::mild);
  std::vector<float> o(in.v.size()), pool(std::size_t(4 * K * V), 0.5f);
  test::poison(o);
  const std::vector<std::int64_t> bad_cu = {0, 50, 20, 1000000, -9, T};
  const std::vector<std::int32_t> slots = {0, 1, 2, 3, -1};
  test::backend_arrays<cuda<90>> mem(be);
  float* d_pool = mem.put(pool);
  auto a = test::gla_views<float, float, float>(1, 1, T, K, V, mem.put(in.q), mem.put(in.k),
                                                mem.put(in.v), mem.put(in.g), mem.put(o), d_pool, 4,
                                                d_pool, 4, mem.put(bad_cu), 5, in.scale);
  a.slot = mem.put(slots);
  CHECK(test::gla_run(be, a, test::gla_mode::chunked, 64).ok());
  CHECK(synchronize(be).ok());
}

// cuda_tuning's column tiles of the tensor-core kernel: each within the bound on every rounded
// case, each the same bits as the default tile (o and the final state), an unlisted pair refused
// with nothing written.
TEST_CASE("cuda gla_chunked with cuda_matmul::rounded: every cuda_tuning column tile") {
  RODIMUS_REQUIRE_CUDA_DEVICE();
  auto be = test::cuda_backend();
  be.matmul = cuda_matmul::rounded;
  const int tiles[][2] = {{32, 8}, {64, 8}, {128, 8}, {128, 16}};
  for (const auto& tile : tiles) {
    CAPTURE(tile[0]);
    CAPTURE(tile[1]);
    be.tuning = {tile[0], tile[1]};
    test::check_gla_rounded_all(be);
  }
  // Same bits: 3 sequences of 200 tokens, V = 300 (partial last tile at every width), K = 64.
  const index_t B = 3, H = 1, T = 200, K = 64, V = 300;
  auto r = test::rng(59);
  const test::gla_inputs<float, float> in(r, B, H, T, K, V, test::gla_decays::extreme);
  const std::vector<float> s0 = test::uniform<float>(r, std::size_t(B * H * K * V));
  auto run = [&](const cuda_tuning& tuning, std::vector<float>& o, std::vector<float>& fs) {
    auto b = be;
    b.tuning = tuning;
    o.assign(in.v.size(), 0.0f);
    fs.assign(s0.size(), 0.0f);
    test::poison(o);
    test::poison(fs);
    test::backend_arrays<cuda<90>> mem(b);
    float* d_o = mem.put(o);
    float* d_fs = mem.put(fs);
    auto a = test::gla_views<float, float, float>(B, H, T, K, V, mem.put(in.q), mem.put(in.k),
                                                  mem.put(in.v), mem.put(in.g), d_o, mem.put(s0), B,
                                                  d_fs, B, nullptr, B, in.scale);
    const status st = test::gla_run(b, a, test::gla_mode::chunked, 64);
    mem.get(o, d_o);
    mem.get(fs, d_fs);
    return st;
  };
  std::vector<float> o_default, fs_default;
  REQUIRE(run(cuda_tuning{}, o_default, fs_default).ok());
  for (const auto& tile : tiles) {
    CAPTURE(tile[0]);
    CAPTURE(tile[1]);
    std::vector<float> o, fs;
    REQUIRE(run(cuda_tuning{tile[0], tile[1]}, o, fs).ok());
    CHECK(std::memcmp(o.data(), o_default.data(), o.size() * sizeof(float)) == 0);
    CHECK(std::memcmp(fs.data(), fs_default.data(), fs.size() * sizeof(float)) == 0);
  }
  const int unlisted[][2] = {{96, 8}, {64, 16}, {32, 0}, {0, 8}, {-64, 8}};
  for (const auto& tile : unlisted) {
    CAPTURE(tile[0]);
    CAPTURE(tile[1]);
    std::vector<float> o, fs;
    const status st = run(cuda_tuning{tile[0], tile[1]}, o, fs);
    CHECK(st.code == status_code::unsupported);
    CHECK(std::string(st.what) == "tuning");
    std::vector<float> poisoned(o.size()), poisoned_fs(fs.size()); // nothing written
    test::poison(poisoned);
    test::poison(poisoned_fs);
    CHECK(std::memcmp(o.data(), poisoned.data(), o.size() * sizeof(float)) == 0);
    CHECK(std::memcmp(fs.data(), poisoned_fs.data(), fs.size() * sizeof(float)) == 0);
  }
}
