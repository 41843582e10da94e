// linear on CUDA: the shared bodies (tests/cases/linear_cases.hpp, tolerances derived there)
// against the scalar reference, on the test stream with its shared cuda_context; the GEMV path
// without a context; the errors of the cuBLAS path (no context, a context of another stream, a
// workspace too small); a cuda_context made and destroyed on its own stream; and both paths
// captured in a CUDA graph and replayed. Without a GPU every case prints "skipped" and passes,
// except the streamed GEMV's layout rules and shape choice, which are host code and run anywhere.
#include "rodimus/backend/cuda/linear.cuh" // before the cases: they look up linear_rounds_x

#include "cases/linear_cases.hpp"
#include "support/cuda_support.hpp"

using namespace rodimus;

// Every case with both GEMV kernels at 1 or 2 rows of x (cuda_tuning::gemv; the policy takes one of
// them): the streamed one where it applies (f32 x, 16-bit weights in 16-byte rows, K % 8 == 0:
// linear_stream.cuh), and the register kernel.
TEST_CASE("cuda linear matches the scalar reference") {
  RODIMUS_REQUIRE_CUDA_DEVICE();
  for (cuda_gemv choice : {cuda_gemv::streamed, cuda_gemv::registers}) {
    CAPTURE(int(choice));
    cuda<90> be = test::cuda_backend_with_context();
    be.tuning.gemv = choice;
    test::check_linear_kernel_shapes(be);
    test::check_linear_all(be);
  }
}

TEST_CASE("cuda linear: the GEMV path needs no context") {
  RODIMUS_REQUIRE_CUDA_DEVICE();
  for (cuda_gemv choice : {cuda_gemv::streamed, cuda_gemv::registers}) {
    CAPTURE(int(choice));
    cuda<90> be = test::cuda_backend(); // context == nullptr
    be.tuning.gemv = choice;
    REQUIRE(be.context == nullptr);
    static_assert(linear_policy<90>::gemv_max_m == 2, "the rows below: the GEMV's, then cuBLAS's");
    for (index_t M : {1, 2}) {
      test::check_linear<cuda<90>, float, bf16>(be, M, 2056, 517, 0);
      test::check_linear<cuda<90>, float, float>(be, M, 515, 131, 0);
    }
    // Strided x takes the GEMV kernel at any M (the 4- and 8-row variants), so it needs no context
    // either.
    for (index_t M : {3, 8, 64})
      test::check_linear<cuda<90>, float, bf16>(be, M, 515, 131, 0, 0, 0, true);
    // Both GEMV layouts: fewer row groups than linear_policy::gemv_split_below_groups split K over
    // a CTA's warps (every case above); at least that many take a warp per row group (the LM head).
    using pol = linear_policy<90>;
    const index_t wide_small_m = pol::gemv_split_below_groups * pol::gemv_rows_small_m + 3;
    const index_t wide = pol::gemv_split_below_groups * pol::gemv_rows + 5;
    test::check_linear<cuda<90>, float, bf16>(be, 1, 520, wide_small_m, 0);
    test::check_linear<cuda<90>, float, float>(be, 2, 133, wide_small_m, 0);
    test::check_linear<cuda<90>, float, bf16>(be, 5, 264, wide, 0, 0, 0, true); // strided x
    // A K range shorter than the split: most warps of the CTA get no items.
    test::check_linear<cuda<90>, float, bf16>(be, 1, 24, 77, 0);
    test::check_linear<cuda<90>, float, f16>(be, 2, 9, 40, 0);
    // More row groups than the K split's CTAs (gemv_split_max_ctas): each CTA takes two or three
    // rounds, its warps issuing the next round's first weights before this round's sums; the last
    // K slice shorter than a warp's (K = 300), with 16-byte rows (w padded: the kernel's element
    // tail past the last whole piece) and without (element loads); strided x of 9 rows adds a pass
    // of row 8 to each round (the same group's weights preloaded), split and unsplit.
    const index_t rounds_small_m = 2 * pol::gemv_split_max_ctas * pol::gemv_rows_small_m + 7;
    const index_t rounds_wide = 2 * pol::gemv_split_max_ctas * pol::gemv_rows + 3;
    static_assert(2 * pol::gemv_split_max_ctas < pol::gemv_split_below_groups, "split K at both");
    for (index_t M : {1, 2})
      test::check_linear<cuda<90>, float, bf16>(be, M, 2048, rounds_small_m, 0);
    test::check_linear<cuda<90>, float, bf16>(be, 1, 300, rounds_small_m, 0, 4);
    test::check_linear<cuda<90>, float, bf16>(be, 1, 300, rounds_small_m, 0);
    test::check_linear<cuda<90>, float, bf16>(be, 9, 136, rounds_wide, 0, 0, 0, true);
    test::check_linear<cuda<90>, float, bf16>(be, 9, 64, wide, 0, 0, 0, true);
  }
}

namespace {

// Host arrays for the streamed GEMV's layout rules (they read shapes, strides and alignment only).
alignas(16) float stream_xs[2 * 8300];
alignas(16) bf16 stream_ws[4 * 8300];

/// Whether linear() at (M, K, N) with x rows at stride K + x_pad and w rows at K + w_pad takes the
/// streamed kernel where CTAs may have `limit` bytes of shared memory.
bool streams(index_t M, index_t K, index_t N, index_t x_pad, index_t w_pad, std::size_t limit) {
  linear_args<float, bf16> a;
  a.x = tensor_view<const float, 2>::strided(stream_xs, {M, K}, {K + x_pad, 1});
  a.w = tensor_view<const bf16, 2>::strided(stream_ws, {N, K}, {K + w_pad, 1});
  return detail::linear_stream_fits<90>(a, limit);
}

} // namespace

TEST_CASE("cuda linear: the streamed GEMV's layout rules and shape choice (host code, no GPU)") {
  // The policy's cap, below what an H100 or H200 lets a CTA opt in to.
  const std::size_t cap = linear_policy<90>::gemv_stream_smem_bytes;
  CHECK(streams(1, 2048, 4, 0, 0, cap));
  CHECK(streams(2, 4096, 4, 0, 0, cap));
  CHECK(streams(1, 8192, 4, 0, 0, cap));
  CHECK(streams(1, 1032, 3, 0, 8, cap));       // padded rows of 16-byte multiples
  CHECK(streams(2, 1032, 3, 4, 0, cap));       // x rows 16-byte aligned
  CHECK_FALSE(streams(1, 8200, 4, 0, 0, cap)); // x past the staging's 32 KiB
  CHECK_FALSE(streams(2, 4104, 4, 0, 0, cap));
  CHECK_FALSE(streams(3, 64, 4, 0, 0, cap));   // 3 rows: never
  CHECK_FALSE(streams(1, 1029, 4, 0, 3, cap)); // K % 8 != 0
  CHECK_FALSE(streams(1, 1032, 4, 0, 3, cap)); // w rows not 16-byte aligned
  CHECK_FALSE(streams(2, 1032, 4, 1, 0, cap)); // x rows not 16-byte aligned
  // Where one stage of 4 warps does not fit (K = 8192: 32 KiB of x and 128 KiB of buffers).
  CHECK_FALSE(streams(1, 8192, 4, 0, 0, 100 * 1024));
  CHECK(streams(1, 2048, 4, 0, 0, 100 * 1024));
  // f32 weights and 16-bit activations take the register kernel.
  linear_args<float, float> f32;
  f32.x = make_view<const float>(stream_xs, 1, 2048);
  f32.w = make_view<const float>(stream_xs, 4, 2048);
  CHECK_FALSE(detail::linear_stream_fits<90>(f32, cap));
  linear_args<bf16, bf16> b16;
  b16.x = make_view<const bf16>(stream_ws, 1, 2048);
  b16.w = make_view<const bf16>(stream_ws, 4, 2048);
  CHECK_FALSE(detail::linear_stream_fits<90>(b16, cap));

  // The shape choice (warps, stages) against its contract, over decode shapes, CTA counts and
  // limits: it fits; no stage more than a warp's row groups or linear_stream_max_stages; no other
  // shape within the same rules holds more buffers (8 warps on a tie); none only where not even 4
  // warps of one stage fit.
  const auto smem = [](int warps, int stages, index_t M, index_t K) {
    return detail::linear_stream_smem_bytes(warps, stages, M, K, sizeof(bf16));
  };
  for (index_t M : {1, 2})
    for (index_t K : {8, 264, 1032, 2048, 2736, 4096, 8192})
      for (index_t N : {1, 5, 2048, 4224, 8192, 10944, 126464})
        for (index_t ctas : {1, 3, 78, 132})
          for (std::size_t limit : {cap, std::size_t(100 * 1024), std::size_t(48 * 1024)}) {
            CAPTURE(M);
            CAPTURE(K);
            CAPTURE(N);
            CAPTURE(ctas);
            CAPTURE(limit);
            const auto got = detail::linear_stream_choose(M, K, N, sizeof(bf16), ctas, limit);
            const index_t groups =
                (N + detail::linear_stream_rows - 1) / detail::linear_stream_rows;
            const auto allowed = [&](int w, int st) {
              const index_t per_warp = (groups + ctas * w - 1) / (ctas * w);
              return st >= 1 && st <= detail::linear_stream_max_stages && st <= per_warp &&
                     smem(w, st, M, K) <= limit;
            };
            if (got.warps == 0) {
              CHECK(smem(4, 1, M, K) > limit);
              continue;
            }
            REQUIRE((got.warps == 8 || got.warps == 4));
            CHECK(allowed(got.warps, got.stages));
            for (int w : {8, 4})
              for (int st = 1; st <= detail::linear_stream_max_stages; ++st)
                if (allowed(w, st)) {
                  CHECK(w * st <= got.warps * got.stages);
                  if (w * st == got.warps * got.stages && w == 8) CHECK(got.warps == 8);
                }
          }
  // The shapes docs/PERFORMANCE.md 2.1 names, at 132 multiprocessors: the mixer's fc (K = 2048)
  // keeps 3 groups a warp in flight on 8 warps; K = 8192 at one row fits 4 warps of one stage.
  const auto fc = detail::linear_stream_choose(1, 2048, 8192, sizeof(bf16), 132, cap);
  CHECK(fc.warps == 8);
  CHECK(fc.stages == 3);
  const auto wide = detail::linear_stream_choose(1, 8192, 2048, sizeof(bf16), 132, cap);
  CHECK(wide.warps == 4);
  CHECK(wide.stages == 1);
}

TEST_CASE("cuda linear: the streamed GEMV's stages reused and the shapes it takes, on a GPU") {
  RODIMUS_REQUIRE_CUDA_DEVICE();
  cuda<90> be = test::cuda_backend();
  be.tuning.gemv = cuda_gemv::streamed;
  const std::size_t limit = detail::linear_stream_smem_limit<90>();
  REQUIRE(limit > 0);

  // Each warp of a CTA per multiprocessor owns more row groups than it has stages, so its buffers
  // are refilled and their barriers' phases flip several times (short rows: eight stages), with a
  // last group of one row, weights promised constant or not (N's parity; check_linear promises
  // them on even M + K + N); at 1 and 2 rows of x, f16 and bf16; padded rows of w, x and y; the
  // widest x staged; a warp with a single group (N small) or none (N < the CTAs' warps).
  const index_t sms = detail::device_sm_count();
  const index_t many = sms * 8 * detail::linear_stream_rows * 9 + 1;
  const auto check = [&](index_t M, index_t K, index_t N, index_t x_pad = 0, index_t w_pad = 0,
                         index_t y_pad = 0) {
    REQUIRE(streams(M, K, std::min<index_t>(N, 4), x_pad, w_pad, limit)); // not the registers
    test::check_linear<cuda<90>, float, bf16>(be, M, K, N, x_pad, w_pad, y_pad);
  };
  for (index_t M : {1, 2}) {
    check(M, 264, many);
    check(M, 264, many + 1);
    test::check_linear<cuda<90>, float, f16>(be, M, 264, many, 0);
    check(M, 1032, 3 * sms + 2, 0, 8, 3);
    check(M, 1032, 2 * sms + 1, 4 * (M - 1), 0, 1);
    check(M, 8192 / M, 3 * sms + 1);
    check(M, 8192 / M, 3 * sms + 2);
    check(M, 2048, 5);
    check(M, 8, 1);
  }
}

TEST_CASE("cuda linear: cuBLAS path errors, workspace sizes and rounding") {
  RODIMUS_REQUIRE_CUDA_DEVICE();
  const index_t M = 64, K = 40, N = 24;
  test::backend_arrays<cuda<90>> mem(test::cuda_backend());
  std::vector<float> x(std::size_t(M * K), 0.5f), y(std::size_t(M * N));
  std::vector<bf16> w(std::size_t(N * K), bf16(0.25f));
  linear_args<float, bf16> a;
  a.x = make_view<const float>(mem.put(x), M, K);
  a.w = make_view<const bf16>(mem.put(w), N, K);
  a.y = make_view(mem.put(y), M, N);

  cuda<90> be = test::cuda_backend_with_context();
  const std::size_t bytes = linear_workspace_bytes(be, a);
  CHECK(bytes >= std::size_t(M * K) * sizeof(bf16));
  CHECK(linear_rounds_x(be, a));
  test::backend_workspace<cuda<90>> ws(be, bytes);

  cuda<90> no_context = be;
  no_context.context = nullptr;
  test::check_status(linear(no_context, a, ws.get()), status_code::null_pointer, "context");

  cudaStream_t other = nullptr;
  REQUIRE(cudaStreamCreateWithFlags(&other, cudaStreamNonBlocking) == cudaSuccess);
  cuda<90> wrong_stream = be;
  wrong_stream.stream = other;
  test::check_status(linear(wrong_stream, a, ws.get()), status_code::bad_argument, "context");
  REQUIRE(cudaStreamDestroy(other) == cudaSuccess);

  workspace small = ws.get();
  small.bytes = bytes / 2;
  test::check_status(linear(be, a, small), status_code::workspace_too_small, "ws");
  test::check_status(linear(be, a), status_code::workspace_too_small, "ws");

  // Nothing was written by the failed calls; the valid call writes y = K * 0.5 * 0.25.
  std::vector<float> back(y.size());
  mem.get(back, a.y.data);
  for (float v : back)
    REQUIRE(v == 0.0f);
  REQUIRE(linear(be, a, ws.get()).ok());
  mem.get(back, a.y.data);
  for (float v : back)
    REQUIRE(v == 5.0f);

  // The GEMV path (M <= gemv_max_m) and f32 weights need no workspace and never round x.
  linear_args<float, bf16> decode = a;
  decode.x.shape[0] = decode.y.shape[0] = linear_policy<90>::gemv_max_m;
  CHECK(linear_workspace_bytes(be, decode) == 0);
  CHECK_FALSE(linear_rounds_x(be, decode));
  std::vector<float> wf(std::size_t(N * K));
  linear_args<float, float> f32;
  f32.x = a.x;
  f32.w = make_view<const float>(mem.put(wf), N, K);
  f32.y = a.y;
  CHECK(linear_workspace_bytes(be, f32) == 0);
  CHECK_FALSE(linear_rounds_x(be, f32));
}

TEST_CASE("cuda linear: exact parts stacked at decode batches, their sums in the workspace") {
  RODIMUS_REQUIRE_CUDA_DEVICE();
  const cuda<90> be = test::cuda_backend_with_context();
  const index_t M = 16, K = 1032, N = 131; // past the GEMV, 8 M <= K: stacked
  REQUIRE(detail::linear_stacks_parts<90>(M, K));
  REQUIRE_FALSE(
      detail::linear_stacks_parts<90>(linear_policy<90>::gemm_stacked_max_m + 1, 8 * K * K));
  REQUIRE_FALSE(detail::linear_stacks_parts<90>(M, 8 * M - 1));
  auto g = test::rng(91);
  const auto x = test::uniform<float>(g, std::size_t(M * K));
  const auto w = test::uniform<bf16>(g, std::size_t(N * K), -0.5, 0.5);
  std::vector<float> y(std::size_t(M * N));
  test::poison(y);
  test::backend_arrays<cuda<90>> mem(be);
  float* dy = mem.put(y);
  float* dy_two = mem.put(y);
  linear_args<float, bf16> a;
  a.x = make_view<const float>(mem.put(x), M, K);
  a.w = make_view<const bf16>(mem.put(w), N, K);
  a.y = make_view(dy, M, N);

  // The workspace holds both parts and the 2 M x N f32 sums; without room for the sums the call
  // is refused before anything runs.
  const std::size_t bytes = linear_workspace_bytes(be, a);
  CHECK(bytes >= 2 * std::size_t(M * K) * sizeof(bf16) + 2 * std::size_t(M * N) * sizeof(float));
  test::backend_workspace<cuda<90>> ws(be, bytes);
  workspace parts_only = ws.get();
  parts_only.bytes = bytes - std::size_t(M * N) * sizeof(float);
  test::check_status(linear(be, a, parts_only), status_code::workspace_too_small, "ws");
  std::vector<float> back(y.size());
  mem.get(back, dy);
  for (float v : back)
    REQUIRE(std::isnan(v));

  // Stacked against the two GEMMs of the same parts (y = w . hi, y += w . lo): the same products
  // of the same parts in f32, added once; only cuBLAS's order of summation may differ.
  REQUIRE(linear(be, a, ws.get()).ok());
  workspace two_ws = ws.get();
  const auto parts = detail::linear_take_parts<90, bf16>(be, M, K, N, two_ws);
  REQUIRE(parts.lo != nullptr);
  REQUIRE(parts.sums != nullptr);
  linear_args<float, bf16> two = a;
  two.y = make_view(dy_two, M, N);
  REQUIRE(detail::linear_split(detail::launch_on(be), a.x, parts.hi, parts.lo,
                               linear_policy<90>::convert_threads)
              .ok());
  REQUIRE(detail::linear_gemm_parts(be, two, parts.hi, CUDA_R_16BF, K, parts.lo).ok());
  std::vector<float> got(y.size()), want(y.size());
  mem.get(got, dy);
  mem.get(want, dy_two);
  test::check_close(got, want, 1e-5, 1e-6, "stacked y");
}

TEST_CASE("cuda_context: made, used and destroyed on its own stream") {
  RODIMUS_REQUIRE_CUDA_DEVICE();
  cudaStream_t stream = nullptr;
  REQUIRE(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking) == cudaSuccess);
  {
    cuda_context ctx(stream, std::size_t(4) << 20);
    CHECK(ctx.stream() == stream);
    CHECK(ctx.cublas() != nullptr);
    CHECK(ctx.cublas_workspace_bytes() == (std::size_t(4) << 20));
    const cuda<90> be = ctx.backend<90>();
    CHECK(be.stream == stream);
    CHECK(be.context == &ctx);
    test::check_linear<cuda<90>, float, float>(be, 64, 515, 131, 0);
    test::check_linear<cuda<90>, float, f16>(be, 17, 515, 131, 0);
    REQUIRE(cudaStreamSynchronize(stream) == cudaSuccess);
  }
  REQUIRE(cudaStreamDestroy(stream) == cudaSuccess);
  REQUIRE(cudaGetLastError() == cudaSuccess);
}

TEST_CASE("cuda linear: both paths captured in a CUDA graph and replayed") {
  RODIMUS_REQUIRE_CUDA_DEVICE();
  const cuda<90> be = test::cuda_backend_with_context();
  const index_t K = 520, N = 263, Mg = 64, Mv = 2; // a GEMM (x converted to bf16) and a GEMV
  auto g = test::rng(77);
  auto x = test::uniform<float>(g, std::size_t(Mg * K));
  auto w = test::uniform<bf16>(g, std::size_t(N * K), -0.5, 0.5);
  std::vector<float> y(std::size_t(Mg * N));
  test::poison(y);
  test::backend_arrays<cuda<90>> mem(be);
  float* dx = mem.put(x);
  float* dyg = mem.put(y);
  float* dyv = mem.put(y);
  linear_args<float, bf16> gemm, gemv;
  gemm.x = make_view<const float>(dx, Mg, K);
  gemm.w = make_view<const bf16>(mem.put(w), N, K);
  gemm.y = make_view(dyg, Mg, N);
  gemv = gemm;
  gemv.x.shape[0] = gemv.y.shape[0] = Mv;
  gemv.y.data = dyv;
  REQUIRE(linear_rounds_x(be, gemm));
  test::backend_workspace<cuda<90>> ws(be, linear_workspace_bytes(be, gemm));
  // One uncaptured run first: lazy module loading and cuBLAS's first-call set-up happen outside
  // the capture (as an engine warms up before capturing).
  REQUIRE(linear(be, gemm, ws.get()).ok());
  REQUIRE(linear(be, gemv).ok());
  REQUIRE(synchronize(be).ok());
  test::poison(y);
  mem.set(dyg, y);
  mem.set(dyv, y);
  REQUIRE(synchronize(be).ok());

  cudaGraph_t graph = nullptr;
  REQUIRE(cudaStreamBeginCapture(be.stream, cudaStreamCaptureModeGlobal) == cudaSuccess);
  const status sg = linear(be, gemm, ws.get());
  const status sv = linear(be, gemv);
  REQUIRE(cudaStreamEndCapture(be.stream, &graph) == cudaSuccess);
  REQUIRE(sg.ok());
  REQUIRE(sv.ok());
  cudaGraphExec_t exec = nullptr;
  REQUIRE(cudaGraphInstantiate(&exec, graph, 0) == cudaSuccess);

  for (int replay = 0; replay < 2; ++replay) {
    CAPTURE(replay);
    if (replay == 1) { // new inputs: the graph reads x at replay time
      x = test::uniform<float>(g, x.size());
      mem.set(dx, x);
    }
    REQUIRE(cudaGraphLaunch(exec, be.stream) == cudaSuccess);
    std::vector<float> yg(y.size()), yv(std::size_t(Mv * N));
    mem.get(yg, dyg);
    mem.get(yv, dyv);
    // References: the GEMM multiplies x as hi + lo in bf16, the GEMV the exact x (tolerances as
    // in check 1 of linear_cases.hpp).
    std::vector<float> xr = x, ref(yg.size());
    for (auto& v : xr) {
      const float hi = float(bf16(v));
      v = hi + float(bf16(v - hi));
    }
    linear_args<float, bf16> r;
    r.w = make_view<const bf16>(w.data(), N, K);
    r.x = make_view<const float>(xr.data(), Mg, K);
    r.y = make_view(ref.data(), Mg, N);
    REQUIRE(linear(scalar{}, r).ok());
    test::check_close(yg, ref, 1e-5, 0.0, "graph gemm y");
    r.x = make_view<const float>(x.data(), Mv, K);
    r.y = make_view(ref.data(), Mv, N);
    REQUIRE(linear(scalar{}, r).ok());
    ref.resize(yv.size());
    test::check_close(yv, ref, 1e-5, 0.0, "graph gemv y");
  }
  REQUIRE(cudaGraphExecDestroy(exec) == cudaSuccess);
  REQUIRE(cudaGraphDestroy(graph) == cudaSuccess);
}

TEST_CASE("cuda linear: cuda_matmul::rounded multiplies x rounded once, within its bound") {
  RODIMUS_REQUIRE_CUDA_DEVICE();
  cuda<90> be = test::cuda_backend_with_context();
  be.matmul = cuda_matmul::rounded;
  for (index_t M : {9, 64, 300}) {
    test::check_linear<cuda<90>, float, bf16>(be, M, 520, 131, 0);
    test::check_linear<cuda<90>, float, f16>(be, M, 517, 263, 3);
  }
  // The GEMV path (M <= gemv_max_m) and f32 weights stay exact whatever the mode.
  test::check_linear<cuda<90>, float, bf16>(be, linear_policy<90>::gemv_max_m, 1032, 77, 0);
  test::check_linear<cuda<90>, float, float>(be, 64, 515, 131, 0);
}
