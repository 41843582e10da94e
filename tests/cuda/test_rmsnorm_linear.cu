// rmsnorm_linear and swiglu_linear on CUDA: the shared bodies
// (tests/cases/rmsnorm_linear_cases.hpp, swiglu_linear_cases.hpp) against the scalar reference,
// with the same tolerances and bad arguments as the CPU backends, in both matmul modes past the
// GEMV; and which calls fuse: one or two rows of the model's shapes in the GEMV (no workspace:
// the composed path would need one for its normed rows), rows past the GEMV into cuBLAS's operand
// (linear's workspace only) from 3 rows on.
#include "cases/rmsnorm_linear_cases.hpp"
#include "cases/swiglu_linear_cases.hpp"
#include "rodimus/backend/cuda/rmsnorm_linear.cuh"
#include "rodimus/backend/cuda/swiglu_linear.cuh"
#include "support/cuda_support.hpp"

using namespace rodimus;

// Both GEMV kernels at 1 or 2 rows (cuda_tuning::gemv; the policy takes one of them): the streamed
// one where it applies (linear_stream.cuh), and the register kernel.
TEST_CASE("cuda rmsnorm_linear matches the scalar reference") {
  RODIMUS_REQUIRE_CUDA_DEVICE();
  for (cuda_gemv choice : {cuda_gemv::streamed, cuda_gemv::registers}) {
    CAPTURE(int(choice));
    auto be = test::cuda_backend_with_context();
    be.tuning.gemv = choice;
    test::check_rmsnorm_linear_all(be); // M = 9 runs cuBLAS
  }
}

TEST_CASE("cuda swiglu_linear matches the scalar reference") {
  RODIMUS_REQUIRE_CUDA_DEVICE();
  for (cuda_gemv choice : {cuda_gemv::streamed, cuda_gemv::registers}) {
    CAPTURE(int(choice));
    auto be = test::cuda_backend_with_context();
    be.tuning.gemv = choice;
    test::check_swiglu_linear_all(be);
  }
}

// cuda_matmul::rounded past the GEMV: the operand written once as the weight's dtype (hi only).
TEST_CASE("cuda rmsnorm_linear and swiglu_linear with cuda_matmul::rounded past the GEMV") {
  RODIMUS_REQUIRE_CUDA_DEVICE();
  auto be = test::cuda_backend_with_context();
  be.matmul = cuda_matmul::rounded;
  test::check_rmsnorm_linear_past_gemv(be, true);
  test::check_swiglu_linear_past_gemv(be, true);
}

TEST_CASE("cuda rmsnorm_linear fuses in the GEMV at 1 or 2 rows, into cuBLAS's operand past 2") {
  // No stream and no device: the choice reads shapes, strides and alignment only, so this runs
  // (and must pass) on machines without a GPU too; host arrays stand in for device memory.
  const cuda<90> be{};
  alignas(16) static float x[9 * 2048], nw[2048], y[9 * 16];
  alignas(16) static bf16 w[16 * 2048];
  rmsnorm_linear_args<bf16> a;
  auto shaped = [&](index_t M, index_t K) {
    a.x = make_view<const float>(x, M, K);
    a.norm_weight = make_view<const float>(nw, K);
    a.w = make_view<const bf16>(w, 16, K);
    a.y = make_view(y, M, 16);
    return rmsnorm_linear_workspace_bytes(be, a);
  };
  // Staged at 1 or 2 rows; from 3 (past linear_policy::gemv_max_m) the operand and cuBLAS, with
  // linear's workspace (the parts, and the stacked sums up to gemm_stacked_max_m rows).
  static_assert(linear_policy<90>::gemv_max_m == 2, "the rows below: the GEMV's, then cuBLAS's");
  for (index_t M = 1; M <= 9; ++M) {
    CAPTURE(M);
    CHECK(linear_fuses_input(be, M));
    const std::size_t bytes = shaped(M, 2048); // (sets a's shapes for the line below)
    CHECK(bytes == (M <= 2 ? 0 : linear_workspace_bytes(be, rmsnorm_linear_product(a, a.x))));
  }
  CHECK(shaped(1, 8192) == 0);
  CHECK(shaped(1, 8200) > 0); // past the staging's 32 KiB: composed
  CHECK_FALSE(linear_fuses_input(be, 0));
  CHECK(linear_fuses_input(be, 9));
  CHECK(linear_fuses_input(be, 16384));
  // Past the GEMV the operand path takes linear's workspace (the two 16-bit parts), the composed
  // path the f32 normed rows on top of it.
  const std::size_t parts = shaped(9, 2048);
  CHECK(parts == linear_workspace_bytes(be, rmsnorm_linear_product(a, a.x)));
  CHECK(parts >= 2 * 9 * 2048 * sizeof(bf16));
  CHECK(rmsnorm_linear_composed_workspace_bytes(be, a) > parts);
  const std::size_t odd = shaped(9, 2046); // K % 4 != 0: composed
  CHECK(odd == rmsnorm_linear_composed_workspace_bytes(be, a));
  CHECK(shaped(1, 2044) > 0); // not a whole number of 16-byte bf16 pieces
  // swiglu_linear at the 1.6B FFN's down projection (F = 2728): fused at one row; three rows: the
  // operand path (its workspace); F = 2724 at one row: composed.
  alignas(16) static float fc[2 * 2728];
  swiglu_linear_args<bf16> s{make_view<const float>(fc, 1, 2 * 2728),
                             make_view<const bf16>(w, 16, 2728), make_view(y, 1, 16), true};
  CHECK(swiglu_linear_workspace_bytes(be, s) == 0);
  s.fc.shape[0] = 3;
  s.y.shape[0] = 3;
  CHECK(swiglu_linear_workspace_bytes(be, s) > 0);
  s.fc.shape[0] = 1;
  s.y.shape[0] = 1;
  s.fc.shape[1] = 2 * 2724;
  s.w.shape[1] = 2724;
  CHECK(swiglu_linear_workspace_bytes(be, s) > 0);
}

TEST_CASE("cuda's fused GEMV stages its prologue at 1 or 2 rows of at most 32 KiB") {
  // The widths the staged cases of rmsnorm_linear_cases.hpp and swiglu_linear_cases.hpp sit on:
  // at the limit and just past it (no device needed: the choice reads M and K only).
  if (!linear_policy<90>::gemv_stage_prologue) return; // the in-loop prologue everywhere
  CHECK(detail::linear_gemv_stages<90>(1, 2048));
  CHECK(detail::linear_gemv_stages<90>(1, 8192));
  CHECK_FALSE(detail::linear_gemv_stages<90>(1, 8200));
  CHECK(detail::linear_gemv_stages<90>(2, 4096));
  CHECK_FALSE(detail::linear_gemv_stages<90>(2, 4104));
  CHECK_FALSE(detail::linear_gemv_stages<90>(3, 64)); // 3 rows and more: never staged
}
