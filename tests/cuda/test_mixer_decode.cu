// mixer_decode on CUDA (one fused kernel: channel gate, DDTS, GLA decode step, internal skip)
// against the scalar reference, the composition of the four scalar primitives: the shared body
// (tests/cases/mixer_decode_cases.hpp, tolerances explained there; both forms of the channel
// gate's pre-activation, u_preact and the low-rank h . ch_gate_up^T), and rows whose slot is
// outside the pool, which CUDA cannot refuse (the slots live in device memory) and skips like
// padding: o row still NaN, the pool bit for bit as it was. Arguments it cannot take (N > 256) are
// `unsupported` naming "r", before any launch.
#include "cases/mixer_decode_cases.hpp"
#include "rodimus/backend/cuda/mixer_decode.cuh"
#include "support/cuda_support.hpp"

using namespace rodimus;

TEST_CASE("cuda mixer_decode matches the composed scalar reference") {
  RODIMUS_REQUIRE_CUDA_DEVICE();
  test::check_mixer_decode_all(test::cuda_backend());
}

TEST_CASE("cuda mixer_decode skips rows whose slot is outside the pool") {
  RODIMUS_REQUIRE_CUDA_DEVICE();
  const auto be = test::cuda_backend();
  // narrow 16-byte tiles; wide tiles; the scalar-access tile
  test::check_mixer_decode(be, {6, 64, 4096, 8, true, 1, 2, 0, true}, 901);
  test::check_mixer_decode(be, {20, 64, 4096, 24, true, 2, 3, 0, true}, 902);
  test::check_mixer_decode(be, {5, 32, 77, 6, true, 0, 2, 1, false}, 903);
  // the low-rank form (bf16 weights, R = 32): narrow and wide tiles
  test::check_mixer_decode<bf16>(be, {6, 64, 4096, 8, true, 1, 2, 0, true, 32}, 904);
  test::check_mixer_decode<bf16>(be, {20, 64, 4096, 24, true, 2, 3, 0, true, 32}, 905);
}

TEST_CASE("cuda mixer_decode refuses a key width beyond 256 before launching") {
  // Host pointers are never dereferenced: runs without a GPU.
  float dummy[8] = {};
  const index_t M = 1, N = 300, E = 4;
  mixer_decode_args a;
  a.x = make_view<const float>(dummy, M, E);
  a.u_preact = a.x;
  a.c = a.x;
  a.ch_gate_bias = make_view<const float>(dummy, E);
  a.residual_weight = a.ch_gate_bias;
  a.r = make_view<const float>(dummy, M, N);
  a.k = a.r;
  a.psi = make_view<const float>(dummy, M, 2 * N);
  a.o = make_view(dummy, M, E);
  a.state = make_view(dummy, M, index_t(1), N, E);
  const cuda<90> gpu{};
  test::check_status(mixer_decode(gpu, a), status_code::unsupported, "r");
  CHECK(mixer_decode_workspace_bytes(gpu, a) == 0);
}
