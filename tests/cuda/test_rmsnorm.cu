// RMSNorm with the fused residual add on CUDA: the shared body (tests/cases/rmsnorm_cases.hpp)
// against the scalar reference, with the same tolerances and bad arguments as the CPU backends.
#include "cases/rmsnorm_cases.hpp"
#include "rodimus/backend/cuda/rmsnorm.cuh"
#include "support/cuda_support.hpp"

using namespace rodimus;

TEST_CASE("cuda rmsnorm matches the scalar reference") {
  RODIMUS_REQUIRE_CUDA_DEVICE();
  test::check_rmsnorm_all(test::cuda_backend());
}
