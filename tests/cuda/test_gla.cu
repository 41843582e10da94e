// gla_scan and gla_chunked on CUDA: the shared body (tests/cases/gla_cases.hpp) against the scalar
// reference, the invariants between runs, state-slot pools (in place, padding), the bad arguments,
// and the sequences a device run skips where the host would refuse them. Without a GPU every case
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

TEST_CASE("cuda gla: state_slot pools, in place and with padding sequences") {
  RODIMUS_REQUIRE_CUDA_DEVICE();
  test::check_gla_state_slots(test::cuda_backend());
}

TEST_CASE("cuda gla: bad arguments give the reference's status, nothing written") {
  RODIMUS_REQUIRE_CUDA_DEVICE();
  test::check_gla_bad_arguments(test::cuda_backend());
}

TEST_CASE("cuda gla: sequences with slots the host would refuse are skipped, in bounds") {
  RODIMUS_REQUIRE_CUDA_DEVICE();
  test::check_gla_skipped_sequences(test::cuda_backend());
}
