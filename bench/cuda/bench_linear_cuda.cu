// linear() at decode batches on the GPU: f32 x (M rows) times bf16 weights (N x K) the way a
// decode step of rodimus-plus-1.6b at batch M multiplies them, by the paths linear.cuh has.
//
//   bm_linear_decode/N/K/M/path   path 0: cuda_matmul::exact as two GEMMs (y = w . hi, then
//                                 y += w . lo: the weights read twice; linear.cuh before
//                                 2026-12-07); 1: exact with the parts stacked (one GEMM of 2M
//                                 columns into a workspace, then the halves added: the weights
//                                 read once; linear_policy::gemm_stacked_max_m); 2: the GEMV
//                                 kernel (exact x, groups of up to 8 rows of x; past 8 rows it
//                                 re-reads the weights from L2 per group); 3: cuda_matmul::rounded
//                                 (x rounded once, one GEMM: the floor of what the exact paths
//                                 can reach). Paths 0, 1, 3 include the split of x.
//
// Shapes: the mixer's fc (8192 x 2048), its out_proj (2048 x 4096) and the LM head
// (126464 x 2048), at M = 4 .. 128. Each step uses the next of several weight copies (together
// more than the L2 holds), so the weights come from HBM as in a decode step.
// Counters: median_us per call (CUDA events around a graph replay of the steps), weight_GBps
// (weight bytes / time) and limit_ratio against the copy bandwidth this binary measures.
#include <benchmark/benchmark.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

#include "cuda_bench_support.cuh"
#include "rodimus/backend/cuda/context.cuh"
#include "rodimus/backend/cuda/linear.cuh"

using namespace rodimus;
using namespace rodimus::bench;

namespace {

enum class decode_path { two_gemms = 0, stacked = 1, gemv = 2, rounded = 3 };

void bm_linear_decode(benchmark::State& st) {
  const index_t N = st.range(0), K = st.range(1), M = st.range(2);
  const auto path = decode_path(st.range(3));
  if (path == decode_path::stacked && !detail::linear_stacks_parts<90>(M, K)) {
    st.SkipWithError("not stacked at this M and K (linear_stacks_parts)");
    return;
  }
  std::mt19937_64 rng(13);
  cudaStream_t stream = nullptr;
  BENCH_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  cuda_context ctx(stream);
  cuda<90> gpu;
  gpu.stream = stream;
  gpu.context = &ctx;
  gpu.matmul = path == decode_path::rounded ? cuda_matmul::rounded : cuda_matmul::exact;
  const std::size_t w_bytes = std::size_t(N * K) * sizeof(bf16);
  const int copies = int(std::max<std::size_t>(2, (std::size_t(160) << 20) / w_bytes + 1));
  std::vector<bf16*> w(std::size_t(copies), nullptr);
  for (auto& p : w)
    p = device_random<bf16>(std::size_t(N * K), rng, -0.05, 0.05);
  float* x = device_random<float>(std::size_t(M * K), rng, -1, 1);
  float* y = device_random<float>(std::size_t(M * N), rng, -1, 1);
  linear_args<float, bf16> probe{make_view<const float>(x, M, K), make_view<const bf16>(w[0], N, K),
                                 make_view(y, M, N), true};
  // Every path's workspace fits in the stacked sizing (parts and sums).
  const std::size_t ws_bytes = detail::linear_parts_bytes<90, bf16>(M, K, N);
  void* ws_mem = nullptr;
  BENCH_CUDA(cudaMalloc(&ws_mem, ws_bytes));
  int call = 0;
  const auto step = [&] {
    linear_args<float, bf16> a = probe;
    a.w = make_view<const bf16>(w[std::size_t(call++ % copies)], N, K);
    workspace ws{ws_mem, ws_bytes};
    const auto on = detail::launch_on(gpu);
    status s = status::success();
    if (path == decode_path::gemv) {
      s = detail::linear_gemv<90>(a, on);
    } else if (path == decode_path::two_gemms) {
      const auto parts = detail::linear_take_parts<90, bf16>(gpu, M, K, N, ws);
      s = detail::linear_split(on, a.x, parts.hi, parts.lo, linear_policy<90>::convert_threads);
      if (s.ok())
        s = detail::linear_gemm_parts(gpu, a, parts.hi, CUDA_R_16BF, K, parts.lo, nullptr);
    } else {
      s = detail::linear_gemm(gpu, a, /*convert=*/true, ws); // stacked where linear_stacks_parts
    }
    if (!s.ok()) st.SkipWithError("linear failed");
  };
  const auto t = time_steps(st, stream, copies, step, /*graph=*/true);
  const double us = median(t) * 1e3, gbps = double(w_bytes) / (us * 1e-6) / 1e9;
  st.counters["median_us"] = us;
  st.counters["weight_GBps"] = gbps;
  st.counters["limit_ratio"] = gbps * 1e9 / copy_bandwidth();
  for (auto* p : w)
    BENCH_CUDA(cudaFree(p));
  for (void* p : {static_cast<void*>(x), static_cast<void*>(y), ws_mem})
    BENCH_CUDA(cudaFree(p));
  BENCH_CUDA(cudaStreamDestroy(stream));
}

} // namespace

BENCHMARK(bench::bm_copy_d2d)->UseManualTime()->Iterations(1);
BENCHMARK(bm_linear_decode)
    ->ArgsProduct({{8192}, {2048}, {4, 8, 16, 32, 64, 128, 256}, {0, 1, 2, 3}})
    ->ArgsProduct({{2048}, {4096}, {16, 64}, {0, 1, 2, 3}})
    ->ArgsProduct({{126464}, {2048}, {8, 16, 64}, {0, 1, 2, 3}})
    ->UseManualTime()
    ->Iterations(20);

int main(int argc, char** argv) { return bench::run_cuda_benchmarks(argc, argv); }
