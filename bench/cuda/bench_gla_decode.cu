// gla_decode on CUDA: one decode step of the Rodimus shape (H = 1, K = 64, V = 4096; Act bf16 or
// f32, Gate f32, state f32) for B in {1, 64, 256}.
//
// Timing: CUDA events around 20 back-to-back launches, per-launch time = elapsed / 20; the median
// over the iterations is reported (counter `median_us`). Bytes: the state traffic, 2 x B x H x K x
// V x 4 (read once, written once); q, k, g, v, o are under 0.3% more and not counted. The states
// rotate through a pool of >= 512 MiB (each launch uses the next B slots through the slot array),
// so no launch finds its state in the 60 MB L2. `copy_GBps` is a cudaMemcpy device-to-device of 1
// GiB measured by this binary (bytes read + written, median of 10); `ratio` = state GB/s / copy
// GB/s. Without a GPU the binary prints "skipped: no CUDA device" and exits 0.
#include <benchmark/benchmark.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "cuda/cuda_bench_support.cuh"
#include "rodimus/backend/cuda/gla_decode.cuh"
#include "rodimus/core/error.hpp"

using namespace rodimus;
using bench::copy_bandwidth;
using bench::device_random;
using bench::median;

namespace {

/// Times `launch(args, stream)` on the Rodimus shape with B = st.range(0).
/// With `graph`, the 20 launches are captured once in a CUDA graph and replayed: the time per
/// launch is then the kernel's own (no launch gaps), the figure for B = 1 latency.
template <class Act, class Launch>
void run_decode(benchmark::State& st, Launch launch, bool graph = false) {
  using Gate = float;
  const index_t B = st.range(0), H = 1, K = 64, V = 4096;
  const index_t slot_bytes = H * K * V * index_t(sizeof(float));
  const index_t P = std::max<index_t>(2 * B, (index_t(512) << 20) / slot_bytes); // >= 512 MiB
  const int launches = 20;
  std::mt19937_64 rng(12345);
  Act* q = device_random<Act>(std::size_t(B * H * K), rng, -1, 1);
  Gate* k = device_random<Gate>(std::size_t(B * H * K), rng, -1, 1);
  Act* v = device_random<Act>(std::size_t(B * H * V), rng, -1, 1);
  Gate* g = device_random<Gate>(std::size_t(B * H * K), rng, -1, 0);
  Act* o = nullptr;
  BENCH_CUDA(cudaMalloc(reinterpret_cast<void**>(&o), std::size_t(B * H * V) * sizeof(Act)));
  float* pool = device_random<float>(std::size_t(P * H * K * V), rng, -1, 1);
  std::vector<std::int32_t> slots_h(std::size_t(P + B));
  for (std::size_t i = 0; i < slots_h.size(); ++i)
    slots_h[i] = std::int32_t(index_t(i) % P);
  std::int32_t* slots = nullptr;
  BENCH_CUDA(cudaMalloc(reinterpret_cast<void**>(&slots), slots_h.size() * sizeof(std::int32_t)));
  BENCH_CUDA(cudaMemcpy(slots, slots_h.data(), slots_h.size() * sizeof(std::int32_t),
                        cudaMemcpyHostToDevice));

  gla_decode_args<Act, Gate, float> a;
  a.q = make_view<const Act>(q, B, H, K);
  a.k = make_view<const Gate>(k, B, H, K);
  a.v = make_view<const Act>(v, B, H, V);
  a.g = make_view<const Gate>(g, B, H, K);
  a.o = make_view(o, B, H, V);
  a.state = make_view(pool, P, H, K, V);
  a.scale = 0.125f;
  cudaStream_t stream = nullptr;
  BENCH_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  const cuda<90> gpu{stream};
  index_t offset = 0;
  std::string err;
  auto step = [&]() {
    a.slot = slots + offset;
    offset = (offset + B) % P;
    const status s = launch(a, gpu);
    if (!s.ok() && err.empty()) err = to_string(s);
  };
  const std::vector<double> per_launch_ms = bench::time_steps(st, stream, launches, step, graph);
  if (!err.empty()) st.SkipWithError(err.c_str());

  const double state_bytes = 2.0 * double(B * H * K * V) * sizeof(float);
  const double med_s = median(per_launch_ms) * 1e-3;
  st.counters["median_us"] = med_s * 1e6;
  st.counters["state_GBps"] = state_bytes / med_s / 1e9;
  st.counters["copy_GBps"] = copy_bandwidth() / 1e9;
  st.counters["ratio"] = state_bytes / med_s / copy_bandwidth();
  st.SetBytesProcessed(std::int64_t(state_bytes) * std::int64_t(st.iterations()));

  BENCH_CUDA(cudaStreamDestroy(stream));
  for (void* p :
       {static_cast<void*>(q), static_cast<void*>(k), static_cast<void*>(v), static_cast<void*>(g),
        static_cast<void*>(o), static_cast<void*>(pool), static_cast<void*>(slots)})
    BENCH_CUDA(cudaFree(p));
}

/// The library entry point (its own choice of tile).
template <class Act> void bm_gla_decode(benchmark::State& st) {
  run_decode<Act>(st, [](const gla_decode_args<Act, float, float>& a, const cuda<90>& gpu) {
    return gla_decode(gpu, a);
  });
}

/// The library entry point, 20 launches replayed from a CUDA graph.
template <class Act> void bm_gla_decode_graph(benchmark::State& st) {
  run_decode<Act>(
      st,
      [](const gla_decode_args<Act, float, float>& a, const cuda<90>& gpu) {
        return gla_decode(gpu, a);
      },
      true);
}

/// One fixed tile shape (BV columns x Threads threads, 16-byte accesses, MaxK 64, MinBlocks CTAs
/// per SM asked of the register allocator, 0: the library's default): the data gla_decode_policy
/// was chosen from. Arguments: B, and 1 to time graph replays (see run_decode).
template <int BV, int Threads, int MinBlocks> void bm_gla_decode_tile(benchmark::State& st) {
  constexpr int mb =
      MinBlocks ? MinBlocks : detail::gla_decode_tile<64, BV, 4, Threads>::min_blocks;
  run_decode<bf16>(
      st,
      [](const gla_decode_args<bf16, float, float>& a, const cuda<90>& gpu) {
        return detail::gla_decode_launch<64, BV, 4, Threads, mb>(a, detail::launch_on(gpu));
      },
      st.range(1) != 0);
}

} // namespace

BENCHMARK(bench::bm_copy_d2d)->UseManualTime()->Iterations(1);
BENCHMARK_TEMPLATE(bm_gla_decode, bf16)->Arg(1)->Arg(64)->Arg(256)->UseManualTime()->Iterations(50);
BENCHMARK_TEMPLATE(bm_gla_decode, float)
    ->Arg(1)
    ->Arg(64)
    ->Arg(256)
    ->UseManualTime()
    ->Iterations(50);
BENCHMARK_TEMPLATE(bm_gla_decode_graph, bf16)->Arg(1)->Arg(64)->UseManualTime()->Iterations(50);
#define RODIMUS_BENCH_TILE(bv, threads, min_blocks)                                                \
  BENCHMARK_TEMPLATE(bm_gla_decode_tile, bv, threads, min_blocks)                                  \
      ->Args({1, 1})                                                                               \
      ->Args({1, 0})                                                                               \
      ->Args({64, 0})                                                                              \
      ->Args({256, 0})                                                                             \
      ->UseManualTime()                                                                            \
      ->Iterations(50)
RODIMUS_BENCH_TILE(16, 128, 0);
RODIMUS_BENCH_TILE(32, 128, 0);
RODIMUS_BENCH_TILE(32, 256, 0);
RODIMUS_BENCH_TILE(64, 256, 0);
RODIMUS_BENCH_TILE(128, 128, 0);
RODIMUS_BENCH_TILE(128, 256, 0);
RODIMUS_BENCH_TILE(128, 256, 4); // 64-register cap: 4 CTAs per SM, 32 bytes of spills
RODIMUS_BENCH_TILE(128, 512, 0);
RODIMUS_BENCH_TILE(256, 512, 0);

int main(int argc, char** argv) { return bench::run_cuda_benchmarks(argc, argv); }
