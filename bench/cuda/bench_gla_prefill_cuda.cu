// gla_chunked on CUDA at the rodimus-1.6b prefill shape: H = 1, K = 64, V = 4096, f32 q, k, v, g
// and o, f32 states (the pool updated in place, as the mixer does), chunk 64.
//
//   bm_gla_prefill/B/T/R   B sequences of T tokens (batched rows), R = 0: cuda_matmul::exact (the
//                          f32 kernel of gla.cuh), R = 1: cuda_matmul::rounded (the bf16
//                          tensor-core kernel, gla_chunked_mma.cuh).
//
// Bytes (one pass): q, k, g read once (3 B T K 4), v read and o written once (2 B T V 4), the
// state read and written once (2 B K V 4); limit = the copy bandwidth measured by this binary
// (cuda_bench_support.cuh). Counters: median_us (per call, median over the iterations; CUDA events
// around 3 back-to-back calls), GBps, copy_GBps, limit_ratio = GBps / copy_GBps. Without a GPU the
// binary prints "skipped: no CUDA device".
#include <benchmark/benchmark.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "cuda/cuda_bench_support.cuh"
#include "rodimus/backend/cuda/gla.cuh"
#include "rodimus/core/error.hpp"

using namespace rodimus;
using bench::device_random;

namespace {

constexpr index_t kH = 1, kK = 64, kV = 4096;
constexpr int kChunk = 64;

void bm_gla_prefill(benchmark::State& st) {
  const index_t B = st.range(0), T = st.range(1);
  const bool rounded = st.range(2) != 0;
  std::mt19937_64 rng(11);
  float* q = device_random<float>(std::size_t(B * kH * T * kK), rng, -1, 1);
  float* k = device_random<float>(std::size_t(B * kH * T * kK), rng, -1, 1);
  float* g = device_random<float>(std::size_t(B * kH * T * kK), rng, -0.5, 0);
  float* v = device_random<float>(std::size_t(B * kH * T * kV), rng, -1, 1);
  float* o = device_random<float>(std::size_t(B * kH * T * kV), rng, -1, 1);
  float* state = device_random<float>(std::size_t(B * kH * kK * kV), rng, -1, 1);
  cudaStream_t stream = nullptr;
  BENCH_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  cuda<90> gpu{stream};
  gpu.matmul = rounded ? cuda_matmul::rounded : cuda_matmul::exact;
  gla_args<float, float, float> a;
  a.q = make_view<const float>(q, B, kH, T, kK);
  a.k = make_view<const float>(k, B, kH, T, kK);
  a.v = make_view<const float>(v, B, kH, T, kV);
  a.g = make_view<const float>(g, B, kH, T, kK);
  a.o = make_view(o, B, kH, T, kV);
  a.initial_state = make_view<const float>(state, B, kH, kK, kV);
  a.final_state = make_view(state, B, kH, kK, kV); // in place
  a.scale = 0.125f;
  std::string err;
  auto step = [&]() {
    const status s = gla_chunked(gpu, a, kChunk);
    if (!s.ok() && err.empty()) err = to_string(s);
  };
  const auto ms = bench::time_steps(st, stream, 3, step);
  if (!err.empty()) st.SkipWithError(err.c_str());
  const double bytes =
      4.0 * double(B * kH) * (3.0 * double(T * kK) + 2.0 * double(T * kV) + 2.0 * double(kK * kV));
  const double s = bench::median(ms) * 1e-3;
  const double copy = bench::copy_bandwidth();
  st.counters["median_us"] = s * 1e6;
  st.counters["GBps"] = bytes / s / 1e9;
  st.counters["copy_GBps"] = copy / 1e9;
  st.counters["limit_ratio"] = bytes / s / copy;
  BENCH_CUDA(cudaStreamDestroy(stream));
  for (float* p : {q, k, g, v, o, state})
    BENCH_CUDA(cudaFree(p));
}

} // namespace

BENCHMARK(bench::bm_copy_d2d)->UseManualTime()->Iterations(1);
BENCHMARK(bm_gla_prefill)
    ->Args({8, 2048, 0})
    ->Args({8, 2048, 1})
    ->Args({8, 8192, 0})
    ->Args({8, 8192, 1})
    ->UseManualTime()
    ->Iterations(5);

int main(int argc, char** argv) { return bench::run_cuda_benchmarks(argc, argv); }
