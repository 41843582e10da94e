// SwiGLU on CUDA: the shared body (tests/cases/swiglu_cases.hpp) against the scalar reference.
#include "cases/swiglu_cases.hpp"
#include "rodimus/backend/cuda/swiglu.cuh"
#include "support/cuda_support.hpp"

using namespace rodimus;

TEST_CASE("cuda swiglu matches the scalar reference") {
  RODIMUS_REQUIRE_CUDA_DEVICE();
  test::check_swiglu_all(test::cuda_backend());
}
