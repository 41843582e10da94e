// What the CUDA benchmark binaries share: error checks, CUDA-event timing of back-to-back launches
// (optionally replayed from a CUDA graph), the machine limits they report ratios against (device
// copy bandwidth, bf16 matrix-product rate through cuBLAS), device inputs, and main().
//
// Timing: CUDA events around `launches` back-to-back launches, per-launch time = elapsed /
// launches; the benchmarks report the median over the iterations. With a graph, the launches are
// captured once and replayed: the time per launch is the kernels' own (no launch gaps), the figure
// for small-batch latency. Without a GPU a binary prints "skipped: no CUDA device" and exits 0.
#pragma once

#include <benchmark/benchmark.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "rodimus/core/dtype.hpp"

#define BENCH_CUDA(call)                                                                           \
  do {                                                                                             \
    const cudaError_t e_ = (call);                                                                 \
    if (e_ != cudaSuccess) {                                                                       \
      std::fprintf(stderr, "%s: %s\n", #call, cudaGetErrorString(e_));                             \
      std::exit(1);                                                                                \
    }                                                                                              \
  } while (0)

#define BENCH_CUBLAS(call)                                                                         \
  do {                                                                                             \
    const cublasStatus_t e_ = (call);                                                              \
    if (e_ != CUBLAS_STATUS_SUCCESS) {                                                             \
      std::fprintf(stderr, "%s: cuBLAS status %d\n", #call, int(e_));                              \
      std::exit(1);                                                                                \
    }                                                                                              \
  } while (0)

namespace rodimus::bench {

inline double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

struct event_pair {
  cudaEvent_t start{}, stop{};
  event_pair() {
    BENCH_CUDA(cudaEventCreate(&start));
    BENCH_CUDA(cudaEventCreate(&stop));
  }
  event_pair(const event_pair&) = delete;
  event_pair& operator=(const event_pair&) = delete;
  ~event_pair() {
    (void)cudaEventDestroy(start);
    (void)cudaEventDestroy(stop);
  }
  double elapsed_ms() {
    BENCH_CUDA(cudaEventSynchronize(stop));
    float ms = 0;
    BENCH_CUDA(cudaEventElapsedTime(&ms, start, stop));
    return ms;
  }
};

/// Device-to-device copy bandwidth (bytes read + written per second) of 1 GiB, median of 10 after
/// two warm-ups, measured once per binary.
inline double copy_bandwidth() {
  static const double bw = [] {
    const std::size_t bytes = std::size_t(1) << 30;
    void *a = nullptr, *b = nullptr;
    BENCH_CUDA(cudaMalloc(&a, bytes));
    BENCH_CUDA(cudaMalloc(&b, bytes));
    BENCH_CUDA(cudaMemset(a, 0x3c, bytes));
    BENCH_CUDA(cudaMemset(b, 0x5a, bytes));
    event_pair ev;
    std::vector<double> t;
    for (int i = 0; i < 12; ++i) {
      BENCH_CUDA(cudaEventRecord(ev.start));
      BENCH_CUDA(cudaMemcpyAsync(i % 2 ? a : b, i % 2 ? b : a, bytes, cudaMemcpyDeviceToDevice));
      BENCH_CUDA(cudaEventRecord(ev.stop));
      const double ms = ev.elapsed_ms();
      if (i >= 2) t.push_back(ms); // two warm-ups
    }
    BENCH_CUDA(cudaFree(a));
    BENCH_CUDA(cudaFree(b));
    return 2.0 * double(bytes) / (median(t) * 1e-3);
  }();
  return bw;
}

/// The bf16 matrix-product rate (FLOP/s): cuBLAS GemmEx of 8192 x 8192 x 8192 bf16 operands with
/// f32 accumulation (tensor cores), median of 10 after two warm-ups, measured once per binary.
inline double bf16_gemm_rate() {
  static const double rate = [] {
    const int n = 8192;
    const std::size_t elems = std::size_t(n) * n;
    void *a = nullptr, *b = nullptr, *c = nullptr;
    BENCH_CUDA(cudaMalloc(&a, elems * 2));
    BENCH_CUDA(cudaMalloc(&b, elems * 2));
    BENCH_CUDA(cudaMalloc(&c, elems * 2));
    BENCH_CUDA(cudaMemset(a, 0x3c, elems * 2)); // bf16 0x3c3c: about 0.0115
    BENCH_CUDA(cudaMemset(b, 0x3c, elems * 2));
    cublasHandle_t h = nullptr;
    BENCH_CUBLAS(cublasCreate(&h));
    const float alpha = 1.0f, beta = 0.0f;
    event_pair ev;
    std::vector<double> t;
    for (int i = 0; i < 12; ++i) {
      BENCH_CUDA(cudaEventRecord(ev.start));
      BENCH_CUBLAS(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &alpha, a, CUDA_R_16BF, n, b,
                                CUDA_R_16BF, n, &beta, c, CUDA_R_16BF, n, CUBLAS_COMPUTE_32F,
                                CUBLAS_GEMM_DEFAULT));
      BENCH_CUDA(cudaEventRecord(ev.stop));
      const double ms = ev.elapsed_ms();
      if (i >= 2) t.push_back(ms);
    }
    BENCH_CUBLAS(cublasDestroy(h));
    BENCH_CUDA(cudaFree(a));
    BENCH_CUDA(cudaFree(b));
    BENCH_CUDA(cudaFree(c));
    return 2.0 * double(n) * n * n / (median(t) * 1e-3);
  }();
  return rate;
}

/// The copy-bandwidth probe as a benchmark row (its figure in the JSON beside the kernels').
inline void bm_copy_d2d(benchmark::State& st) {
  for (auto _ : st)
    st.SetIterationTime(2.0 * double(std::size_t(1) << 30) / copy_bandwidth());
  st.counters["copy_GBps"] = copy_bandwidth() / 1e9;
}

/// The matrix-product probe as a benchmark row.
inline void bm_gemm_bf16(benchmark::State& st) {
  for (auto _ : st)
    st.SetIterationTime(2.0 * 8192.0 * 8192.0 * 8192.0 / bf16_gemm_rate());
  st.counters["gemm_TFLOPs"] = bf16_gemm_rate() / 1e12;
}

/// Deterministic pseudo-random values in [lo, hi) (a hash of the index), filled on the device.
template <class T>
__global__ void fill_hash(T* p, std::size_t n, std::uint64_t seed, float lo, float hi) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n;
       i += std::size_t(gridDim.x) * blockDim.x) {
    std::uint64_t x = (i + 1) * 0x9e3779b97f4a7c15ull ^ seed;
    x ^= x >> 31;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 29;
    const float u = float(x >> 40) * (1.0f / 16777216.0f);
    p[i] = store_as<T>(lo + (hi - lo) * u);
  }
}

/// n device values in [lo, hi) (cudaFree them).
template <class T> T* device_random(std::size_t n, std::mt19937_64& rng, double lo, double hi) {
  T* p = nullptr;
  BENCH_CUDA(cudaMalloc(reinterpret_cast<void**>(&p), std::max<std::size_t>(n, 1) * sizeof(T)));
  fill_hash<<<1024, 256>>>(p, n, rng(), float(lo), float(hi));
  BENCH_CUDA(cudaGetLastError());
  BENCH_CUDA(cudaDeviceSynchronize());
  return p;
}

/// A device copy of a host vector (cudaFree it).
template <class T> T* device_copy(const std::vector<T>& host) {
  T* p = nullptr;
  BENCH_CUDA(
      cudaMalloc(reinterpret_cast<void**>(&p), std::max<std::size_t>(host.size(), 1) * sizeof(T)));
  BENCH_CUDA(cudaMemcpy(p, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice));
  return p;
}

/// Times `step()` (which enqueues one launch, or a few, on `stream`) for every iteration of `st`:
/// three warm-up steps, then per iteration `launches` steps between two events (or one replay of
/// a graph of `launches` steps captured once). Returns the per-step times in ms and sets each
/// iteration's manual time.
template <class Step>
std::vector<double> time_steps(benchmark::State& st, cudaStream_t stream, int launches, Step step,
                               bool graph = false) {
  for (int i = 0; i < 3; ++i)
    step(); // warm-up: module load
  BENCH_CUDA(cudaStreamSynchronize(stream));
  cudaGraph_t g_graph = nullptr;
  cudaGraphExec_t g_exec = nullptr;
  if (graph) {
    BENCH_CUDA(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
    for (int i = 0; i < launches; ++i)
      step();
    BENCH_CUDA(cudaStreamEndCapture(stream, &g_graph));
    BENCH_CUDA(cudaGraphInstantiate(&g_exec, g_graph, 0));
    BENCH_CUDA(cudaGraphLaunch(g_exec, stream)); // warm-up
    BENCH_CUDA(cudaStreamSynchronize(stream));
  }
  event_pair ev;
  std::vector<double> per_launch_ms;
  for (auto _ : st) {
    BENCH_CUDA(cudaEventRecord(ev.start, stream));
    if (graph) {
      BENCH_CUDA(cudaGraphLaunch(g_exec, stream));
    } else {
      for (int i = 0; i < launches; ++i)
        step();
    }
    BENCH_CUDA(cudaEventRecord(ev.stop, stream));
    const double ms = ev.elapsed_ms() / launches;
    per_launch_ms.push_back(ms);
    st.SetIterationTime(ms * 1e-3);
  }
  BENCH_CUDA(cudaGetLastError());
  if (graph) {
    BENCH_CUDA(cudaGraphExecDestroy(g_exec));
    BENCH_CUDA(cudaGraphDestroy(g_graph));
  }
  return per_launch_ms;
}

/// main() of a CUDA benchmark binary: skips without a device, records the device in the context.
inline int run_cuda_benchmarks(int argc, char** argv) {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
    std::printf("skipped: no CUDA device\n");
    return 0;
  }
  cudaDeviceProp prop{};
  BENCH_CUDA(cudaGetDeviceProperties(&prop, 0));
  benchmark::AddCustomContext("device", prop.name);
  benchmark::AddCustomContext("sm_count", std::to_string(prop.multiProcessorCount));
  benchmark::AddCustomContext("l2_bytes", std::to_string(prop.l2CacheSize));
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

} // namespace rodimus::bench
