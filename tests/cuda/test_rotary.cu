// Rotary on CUDA: the shared body (tests/cases/rotary_cases.hpp) against the scalar reference,
// with the same tolerances and shape checks as the CPU backends; and malformed index arrays in
// device memory (which the CUDA backend cannot check) leave the kernel in bounds (run it under
// compute-sanitizer memcheck: the arrays are allocated to their exact sizes).
#include <cstdint>
#include <vector>

#include "cases/rotary_cases.hpp"
#include "rodimus/backend/cuda/rotary.cuh"
#include "support/cuda_support.hpp"

using namespace rodimus;

TEST_CASE("cuda rotary matches the scalar reference") {
  RODIMUS_REQUIRE_CUDA_DEVICE();
  test::check_rotary_all(test::cuda_backend());
}

TEST_CASE("cuda rotary stays in bounds for malformed cu_seqlens and offsets") {
  RODIMUS_REQUIRE_CUDA_DEVICE();
  const auto be = test::cuda_backend();
  constexpr index_t T = 10, H = 2, D = 8;
  auto g = test::rng(5);
  const auto x = test::uniform<float>(g, std::size_t(T * H * D));
  const std::vector<std::vector<std::int64_t>> cus = {
      {0, 7, 3, 100, -5}, // not monotone, past T, negative
      {3, 5, 6, 8, 9},    // does not start at 0 or end at T (tokens 0-2 and 9 in no sequence)
      {-100, -50, 1000, 2000, 1 << 30},
      {0, 0, 0, 0, 0}, // every sequence empty
  };
  const std::vector<std::int64_t> offsets = {-7, 1 << 30, 0, -1};
  for (const auto& cu : cus) {
    CAPTURE(cu[1]);
    test::backend_arrays<cuda<90>> mem(be);
    std::vector<float> got(x.size());
    float* d_x = mem.put(x);
    rotary_args<float> a;
    a.x = make_view(d_x, 1, T, H, D);
    a.cu_seqlens = mem.put(cu);
    a.num_seqs = std::int64_t(cu.size()) - 1;
    a.position_offset = mem.put(offsets);
    REQUIRE(rotary(be, a).ok()); // contents are not checked on CUDA
    REQUIRE(synchronize(be).ok());
    mem.get(got, d_x);
    for (float v : got)
      CHECK(std::isfinite(v));
  }
}
