// Gated RMSNorm on CUDA: the shared body (tests/cases/gated_rmsnorm_cases.hpp) against the scalar
// reference, with the same tolerances and bad arguments as the CPU backends.
#include "cases/gated_rmsnorm_cases.hpp"
#include "rodimus/backend/cuda/gated_rmsnorm.cuh"
#include "support/cuda_support.hpp"

using namespace rodimus;

TEST_CASE("cuda gated_rmsnorm matches the scalar reference") {
  RODIMUS_REQUIRE_CUDA_DEVICE();
  test::check_gated_rmsnorm_all(test::cuda_backend());
}
