// DDTS on CUDA: the shared body (tests/cases/ddts_cases.hpp) against the scalar reference, with
// the same tolerances and bad arguments as the CPU backends (extreme gates element by element).
#include "cases/ddts_cases.hpp"
#include "rodimus/backend/cuda/ddts.cuh"
#include "support/cuda_support.hpp"

using namespace rodimus;

TEST_CASE("cuda ddts matches the scalar reference") {
  RODIMUS_REQUIRE_CUDA_DEVICE();
  test::check_ddts_all(test::cuda_backend());
}
