// gla_chunked on CUDA at the rodimus-1.6b prefill shape: H = 1, K = 64, V = 4096, f32 states
// (the pool updated in place, as the mixer does), chunk 64.
//
//   bm_gla_prefill<f32>/B/T/R/C/W   B sequences of T tokens (batched rows), f32 q, k, v, g and o
//                                   (the model's activations); R = 0: cuda_matmul::exact (the f32
//                                   kernel of gla.cuh), R = 1: cuda_matmul::rounded (the bf16
//                                   tensor-core kernels, gla_chunked_mma.cuh, with their
//                                   workspace), R = 2: gla_scan (the f32 token-by-token kernel,
//                                   for short prompts: session 18's ncu had the exact chunked
//                                   kernel at 167 us a layer for one 128-token prompt); C, W:
//                                   cuda_tuning{C, W}, C value columns per CTA on W warps (0, 0:
//                                   the tile the call chooses itself)
//   bm_gla_prefill<bf16>/B/T/1/C/W  the same with bf16 q, k, v, g and o (the issue's goal shape:
//                                   ../shared/ANCHORS.md measures fla's chunk_gla so)
//
// Bytes (one pass): q, k, g read once (3 B T K e), v read and o written once (2 B T V e), the
// state read and written once (2 B K V 4), e the element size; limit = the copy bandwidth measured
// by this binary (cuda_bench_support.cuh). Counters: median_us (per call, median over the
// iterations; CUDA events around 3 back-to-back calls), GBps, copy_GBps, limit_ratio = GBps /
// copy_GBps. Without a GPU the binary prints "skipped: no CUDA device".
#include <benchmark/benchmark.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "cuda/cuda_bench_support.cuh"
#include "rodimus/backend/cuda/gla.cuh"
#include "rodimus/core/error.hpp"

using namespace rodimus;
using bench::device_random;

namespace {

constexpr index_t kH = 1, kK = 64, kV = 4096;
constexpr int kChunk = 64;

template <class Act> void bm_gla_prefill(benchmark::State& st) {
  const index_t B = st.range(0), T = st.range(1);
  const bool rounded = st.range(2) == 1, scan = st.range(2) == 2;
  std::mt19937_64 rng(11);
  Act* q = device_random<Act>(std::size_t(B * kH * T * kK), rng, -1, 1);
  Act* k = device_random<Act>(std::size_t(B * kH * T * kK), rng, -1, 1);
  Act* g = device_random<Act>(std::size_t(B * kH * T * kK), rng, -0.5, 0);
  Act* v = device_random<Act>(std::size_t(B * kH * T * kV), rng, -1, 1);
  Act* o = device_random<Act>(std::size_t(B * kH * T * kV), rng, -1, 1);
  float* state = device_random<float>(std::size_t(B * kH * kK * kV), rng, -1, 1);
  cudaStream_t stream = nullptr;
  BENCH_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  cuda<90> gpu{stream};
  gpu.matmul = rounded ? cuda_matmul::rounded : cuda_matmul::exact;
  gpu.tuning = {int(st.range(3)), int(st.range(4))};
  gla_args<Act, Act, float> a;
  a.q = make_view<const Act>(q, B, kH, T, kK);
  a.k = make_view<const Act>(k, B, kH, T, kK);
  a.v = make_view<const Act>(v, B, kH, T, kV);
  a.g = make_view<const Act>(g, B, kH, T, kK);
  a.o = make_view(o, B, kH, T, kV);
  a.initial_state = make_view<const float>(state, B, kH, kK, kV);
  a.final_state = make_view(state, B, kH, kK, kV); // in place
  a.scale = 0.125f;
  const std::size_t ws_bytes = gla_chunked_workspace_bytes(gpu, a, kChunk);
  void* ws = nullptr;
  BENCH_CUDA(cudaMalloc(&ws, std::max<std::size_t>(ws_bytes, 1)));
  std::string err;
  auto step = [&]() {
    const status s =
        scan ? gla_scan(gpu, a) : gla_chunked(gpu, a, kChunk, workspace{ws, ws_bytes, 0});
    if (!s.ok() && err.empty()) err = to_string(s);
  };
  const auto ms = bench::time_steps(st, stream, 3, step);
  if (!err.empty()) st.SkipWithError(err.c_str());
  const double e = double(sizeof(Act));
  const double bytes = double(B * kH) * (e * (3.0 * double(T * kK) + 2.0 * double(T * kV)) +
                                         4.0 * 2.0 * double(kK * kV));
  const double s = bench::median(ms) * 1e-3;
  const double copy = bench::copy_bandwidth();
  st.counters["median_us"] = s * 1e6;
  st.counters["GBps"] = bytes / s / 1e9;
  st.counters["copy_GBps"] = copy / 1e9;
  st.counters["limit_ratio"] = bytes / s / copy;
  st.counters["workspace_MiB"] = double(ws_bytes) / double(1 << 20);
  BENCH_CUDA(cudaStreamDestroy(stream));
  for (Act* p : {q, k, g, v, o})
    BENCH_CUDA(cudaFree(p));
  BENCH_CUDA(cudaFree(state));
  BENCH_CUDA(cudaFree(ws));
}

/// Each cuda_tuning column tile at B x T = 8 x 2048 and 1 x 32768.
void gla_tiles(benchmark::internal::Benchmark* b) {
  for (const auto& bt : {std::pair<int, int>{8, 2048}, {1, 32768}})
    for (const auto& cw : {std::pair<int, int>{32, 8}, {64, 8}, {128, 8}, {128, 16}})
      b->Args({bt.first, bt.second, 1, cw.first, cw.second});
}

} // namespace

BENCHMARK(bench::bm_copy_d2d)->UseManualTime()->Iterations(1);
BENCHMARK(bm_gla_prefill<float>)
    ->Args({8, 2048, 0, 0, 0})
    ->Args({8, 2048, 1, 0, 0})
    ->Args({8, 8192, 1, 0, 0})
    ->Apply(gla_tiles)
    ->UseManualTime()
    ->Iterations(5);
// Short prompts (the time to a first token): the exact chunked kernel, the rounded one and the
// token-by-token scan at 1 x 128, 1 x 512 and 8 x 128 tokens.
BENCHMARK(bm_gla_prefill<float>)
    ->ArgsProduct({{1}, {128, 512}, {0, 1, 2}, {0}, {0}})
    ->ArgsProduct({{8}, {128}, {0, 1, 2}, {0}, {0}})
    ->UseManualTime()
    ->Iterations(20);
BENCHMARK(bm_gla_prefill<bf16>)
    ->Args({8, 2048, 1, 0, 0})
    ->Args({8, 8192, 1, 0, 0})
    ->Args({8, 32768, 1, 0, 0})
    ->Args({1, 32768, 1, 0, 0})
    ->Apply(gla_tiles)
    ->UseManualTime()
    ->Iterations(5);

int main(int argc, char** argv) { return bench::run_cuda_benchmarks(argc, argv); }
