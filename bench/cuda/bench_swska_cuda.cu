// SW-SKA on CUDA at the rodimus-plus-1.6b attention shape: 16 query heads on one shared key head,
// 16 value heads, D = 128, bf16, window_left 2048 (rings of W = 2049 slots).
//
//   bm_swska_ring_store/N/L   N sequences of L tokens (packed; start positions spread over the
//                             ring) stored into their rings: the profile's prefill call is 64 x 16,
//                             a long prefill 8 x 2048. Bytes: the stored rows, read and written,
//                             2 x N x min(L, W) x (Hk + Hv) x D x 2; limit = copy bandwidth.
//   bm_swska_prefill<A>/B/T/R/L/RW/BK
//                             B sequences of T tokens, no history, activations A (bf16; float: the
//                             model's), window_left L (2048: the rings' window; 1024:
//                             rodimus-plus-1.6b's), R = 0: cuda_matmul::exact (the f32 kernel),
//                             R = 1: cuda_matmul::rounded (the bf16 tensor-core kernel,
//                             swska_prefill_mma.cuh) with the tile cuda_tuning{.., RW, BK} (query
//                             rows per warp, keys per tile; 0 / 0 the default). FLOPs: 4 x D x Hq
//                             x (keys each query sees), i.e. QK^T and PV counted as matrix
//                             products; limit = the bf16 matrix-product rate (cuBLAS, measured
//                             here).
//   bm_swska_decode/B/P/G/R/K
//                             one decode step (attend and, when the window is split, combine) of B
//                             rows at position P (4096: a full window, 2049 keys; 128: a short
//                             history, 129 keys); G = 1: 20 steps replayed from a CUDA graph (no
//                             launch gaps, the B = 1 latency); R = 0: q and k arrive rotated, R =
//                             1: RoPE inside the step (rotary_dim = D), R = 2: the rotary kernel on
//                             q and k (one call, k after q in each row, as the layer did before)
//                             and then the step: R = 1 against R = 2 is the launch the in-step RoPE
//                             saves; K: the fewest keys of a piece
//                             (cuda_tuning::swska_decode_min_keys; 0: the policy's 16). Bytes: the
//                             keys and values each row attends, B x keys x (Hk + Hv) x D x 2 (the
//                             window cache actually read; the own key comes from k, v); limit =
//                             copy bandwidth; the counter `splits` is the number of pieces per row
//                             launched (a row uses at most ceil(keys / K) of them). The rings
//                             rotate through a pool of >= 1 GiB (each step uses the next B slots),
//                             so no step finds its ring in the 50-60 MB L2.
//
// Counters: median_us (per call, median over the iterations; timing in cuda_bench_support.cuh),
// GBps or TFLOPs achieved, the limit measured by this binary (copy_GBps, gemm_TFLOPs) and
// limit_ratio = achieved / limit. Without a GPU the binary prints "skipped: no CUDA device".
#include <benchmark/benchmark.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "cuda/cuda_bench_support.cuh"
#include "rodimus/backend/cuda/rotary.cuh"
#include "rodimus/backend/cuda/swska.cuh"
#include "rodimus/core/error.hpp"

using namespace rodimus;
using bench::device_copy;
using bench::device_random;

namespace {

using Act = bf16; // everything but bm_swska_prefill<float>
constexpr index_t kHq = 16, kHk = 1, kHv = 16, kD = 128;
constexpr int kWindowLeft = 2048;
constexpr index_t kW = kWindowLeft + 1;
constexpr int kLaunches = 20;
constexpr double kActBytes = sizeof(Act);

/// Ring pools of P rings, (P, W, Hk, D) keys and (P, W, Hv, D) values, random contents.
struct ring_pool {
  index_t P = 0;
  Act* k = nullptr;
  Act* v = nullptr;
  ring_pool(index_t pools, std::mt19937_64& rng) : P(pools) {
    k = device_random<Act>(std::size_t(P * kW * kHk * kD), rng, -1, 1);
    v = device_random<Act>(std::size_t(P * kW * kHv * kD), rng, -1, 1);
  }
  ring_pool(const ring_pool&) = delete;
  ring_pool& operator=(const ring_pool&) = delete;
  ~ring_pool() {
    (void)cudaFree(k);
    (void)cudaFree(v);
  }
  tensor_view<Act, 4> keys() const { return make_view(k, P, kW, kHk, kD); }
  tensor_view<Act, 4> values() const { return make_view(v, P, kW, kHv, kD); }
};

void report(benchmark::State& st, const std::vector<double>& per_call_ms, double amount,
            const char* rate_name, double rate_unit, const char* limit_name, double limit) {
  const double s = bench::median(per_call_ms) * 1e-3;
  st.counters["median_us"] = s * 1e6;
  st.counters[rate_name] = amount / s / rate_unit;
  st.counters[limit_name] = limit / rate_unit;
  st.counters["limit_ratio"] = amount / s / limit;
}

void bm_swska_ring_store(benchmark::State& st) {
  const index_t N = st.range(0), L = st.range(1), T = N * L;
  std::mt19937_64 rng(7);
  Act* k = device_random<Act>(std::size_t(T * kHk * kD), rng, -1, 1);
  Act* v = device_random<Act>(std::size_t(T * kHv * kD), rng, -1, 1);
  ring_pool rings(N, rng);
  std::vector<std::int64_t> cu = {0}, start;
  std::vector<std::int32_t> slot;
  for (index_t n = 0; n < N; ++n) {
    cu.push_back(cu.back() + L);
    start.push_back(std::int64_t((n * 977) % kW)); // continuing chunks, spread over the ring
    slot.push_back(std::int32_t(N - 1 - n));
  }
  std::int64_t* d_cu = device_copy(cu);
  std::int64_t* d_start = device_copy(start);
  std::int32_t* d_slot = device_copy(slot);
  cudaStream_t stream = nullptr;
  BENCH_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  const cuda<90> gpu{stream};
  swska_ring_store_args<Act> a;
  a.k = make_view<const Act>(k, 1, T, kHk, kD);
  a.v = make_view<const Act>(v, 1, T, kHv, kD);
  a.ring_k = rings.keys();
  a.ring_v = rings.values();
  a.slot = d_slot;
  a.start_position = d_start;
  a.cu_seqlens = d_cu;
  a.num_seqs = N;
  std::string err;
  auto step = [&]() {
    const status s = swska_ring_store(gpu, a);
    if (!s.ok() && err.empty()) err = to_string(s);
  };
  const auto ms = bench::time_steps(st, stream, kLaunches, step);
  if (!err.empty()) st.SkipWithError(err.c_str());
  const double bytes = 2.0 * double(N * std::min(L, kW) * (kHk + kHv) * kD) * kActBytes;
  report(st, ms, bytes, "GBps", 1e9, "copy_GBps", bench::copy_bandwidth());
  BENCH_CUDA(cudaStreamDestroy(stream));
  for (void* p : {static_cast<void*>(k), static_cast<void*>(v), static_cast<void*>(d_cu),
                  static_cast<void*>(d_start), static_cast<void*>(d_slot)})
    BENCH_CUDA(cudaFree(p));
}

template <class A> void bm_swska_prefill(benchmark::State& st) {
  using Act = A;
  const index_t B = st.range(0), T = st.range(1);
  const bool rounded = st.range(2) != 0;
  const int window_left = int(st.range(3));
  std::mt19937_64 rng(8);
  Act* q = device_random<Act>(std::size_t(B * T * kHq * kD), rng, -1, 1);
  Act* k = device_random<Act>(std::size_t(B * T * kHk * kD), rng, -1, 1);
  Act* v = device_random<Act>(std::size_t(B * T * kHv * kD), rng, -1, 1);
  Act* o = device_random<Act>(std::size_t(B * T * kHq * kD), rng, -1, 1);
  cudaStream_t stream = nullptr;
  BENCH_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  cuda<90> gpu{stream};
  gpu.matmul = rounded ? cuda_matmul::rounded : cuda_matmul::exact;
  gpu.tuning.swska_rows = int(st.range(4));
  gpu.tuning.swska_keys = int(st.range(5));
  swska_args<Act> a;
  a.q = make_view<const Act>(q, B, T, kHq, kD);
  a.k = make_view<const Act>(k, B, T, kHk, kD);
  a.v = make_view<const Act>(v, B, T, kHv, kD);
  a.o = make_view(o, B, T, kHq, kD);
  a.window_left = window_left;
  void* ws_mem = nullptr; // the rounded mode's bf16 copies of k and v (f32 Act)
  const std::size_t ws_bytes = swska_prefill_workspace_bytes(gpu, a);
  BENCH_CUDA(cudaMalloc(&ws_mem, std::max<std::size_t>(ws_bytes, 1)));
  std::string err;
  auto step = [&]() {
    const status s = swska_prefill(gpu, a, workspace{ws_mem, ws_bytes, 0});
    if (!s.ok() && err.empty()) err = to_string(s);
  };
  const auto ms = bench::time_steps(st, stream, 3, step); // one call is milliseconds
  if (!err.empty()) st.SkipWithError(err.c_str());
  double keys = 0; // keys seen by all queries of one sequence
  for (index_t t = 0; t < T; ++t)
    keys += double(std::min<index_t>(t, window_left) + 1);
  const double flops = 4.0 * double(kD) * double(kHq) * double(B) * keys;
  report(st, ms, flops, "TFLOPs", 1e12, "gemm_TFLOPs", bench::bf16_gemm_rate());
  BENCH_CUDA(cudaStreamDestroy(stream));
  for (void* p : {static_cast<void*>(q), static_cast<void*>(k), static_cast<void*>(v),
                  static_cast<void*>(o), ws_mem})
    BENCH_CUDA(cudaFree(p));
}

void bm_swska_decode(benchmark::State& st) {
  const index_t B = st.range(0), position = st.range(1);
  const bool graph = st.range(2) != 0;
  const int rope = int(st.range(3));
  const int min_keys = int(st.range(4)); // 0: the policy's
  const index_t ring_bytes = kW * (kHk + kHv) * kD * index_t(sizeof(Act));
  const index_t P = std::max<index_t>(2 * B, (index_t(1) << 30) / ring_bytes + 1); // >= 1 GiB
  std::mt19937_64 rng(9);
  const index_t qk_row = (kHq + kHk) * kD; // row b: its query heads, then its key head
  Act* qk = device_random<Act>(std::size_t(B * qk_row), rng, -1, 1);
  Act* v = device_random<Act>(std::size_t(B * kHv * kD), rng, -1, 1);
  Act* o = device_random<Act>(std::size_t(B * kHq * kD), rng, -1, 1);
  ring_pool rings(P, rng);
  std::vector<std::int32_t> slots_h(std::size_t(P + B));
  for (std::size_t i = 0; i < slots_h.size(); ++i)
    slots_h[i] = std::int32_t(index_t(i) % P);
  std::int32_t* slots = device_copy(slots_h);
  std::int64_t* pos = device_copy(std::vector<std::int64_t>(std::size_t(B), position));
  cudaStream_t stream = nullptr;
  BENCH_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  cuda<90> gpu{stream};
  gpu.tuning.swska_decode_min_keys = min_keys;
  swska_decode_args<Act> a;
  const index_t q_shape[3] = {B, kHq, kD}, k_shape[3] = {B, kHk, kD},
                qk_stride[3] = {qk_row, kD, 1};
  a.q = tensor_view<const Act, 3>::strided(qk, q_shape, qk_stride);
  a.k = tensor_view<const Act, 3>::strided(qk + kHq * kD, k_shape, qk_stride);
  a.v = make_view<const Act>(v, B, kHv, kD);
  a.o = make_view(o, B, kHq, kD);
  a.ring_k = rings.keys();
  a.ring_v = rings.values();
  a.position = pos;
  a.window_left = kWindowLeft;
  a.slot = slots;
  a.rotary_dim = rope == 1 ? int(kD) : 0;
  rotary_args<Act> ra; // R = 2: q and k of every row in one call
  ra.x = make_view(qk, B, index_t(1), kHq + kHk, kD);
  ra.position_offset = pos;
  ra.rotary_dim = int(kD);
  void* ws_mem = nullptr;
  const std::size_t ws_bytes = swska_decode_workspace_bytes(gpu, a);
  BENCH_CUDA(cudaMalloc(&ws_mem, std::max<std::size_t>(ws_bytes, 1)));
  index_t offset = 0;
  std::string err;
  auto step = [&]() {
    a.slot = slots + offset;
    offset = (offset + B) % P;
    status s = rope == 2 ? rotary(gpu, ra) : status::success();
    if (s.ok()) s = swska_decode(gpu, a, workspace{ws_mem, ws_bytes, 0});
    if (!s.ok() && err.empty()) err = to_string(s);
  };
  const auto ms = bench::time_steps(st, stream, kLaunches, step, graph);
  if (!err.empty()) st.SkipWithError(err.c_str());
  const index_t keys = std::min<index_t>(position, kWindowLeft) + 1;
  const double bytes = double(B * keys * (kHk + kHv) * kD) * kActBytes;
  report(st, ms, bytes, "GBps", 1e9, "copy_GBps", bench::copy_bandwidth());
  st.counters["splits"] =
      double(detail::swska_decode_splits<90>(a, detail::swska_decode_min_keys<90>(gpu.tuning)));
  BENCH_CUDA(cudaStreamDestroy(stream));
  for (void* p : {static_cast<void*>(qk), static_cast<void*>(v), static_cast<void*>(o),
                  static_cast<void*>(slots), static_cast<void*>(pos), ws_mem})
    BENCH_CUDA(cudaFree(p));
}

} // namespace

BENCHMARK(bench::bm_copy_d2d)->UseManualTime()->Iterations(1);
BENCHMARK(bench::bm_gemm_bf16)->UseManualTime()->Iterations(1);
BENCHMARK(bm_swska_ring_store)->Args({64, 16})->Args({8, 2048})->UseManualTime()->Iterations(30);
BENCHMARK(bm_swska_prefill<bf16>)
    ->Args({8, 2048, 0, 2048, 0, 0})
    ->Args({8, 2048, 1, 2048, 0, 0})
    ->Args({8, 2048, 1, 2048, 16, 64})
    ->Args({8, 2048, 1, 2048, 32, 32})
    ->Args({8, 2048, 1, 2048, 32, 64})
    ->Args({8, 2048, 0, 1024, 0, 0})
    ->Args({8, 2048, 1, 1024, 0, 0})
    ->Args({1, 8192, 1, 2048, 16, 64})
    ->Args({1, 8192, 1, 2048, 32, 32})
    ->Args({1, 8192, 1, 2048, 32, 64})
    ->UseManualTime()
    ->Iterations(5);
// The model's call: f32 activations (k and v rounded to bf16 by the pre-pass).
BENCHMARK(bm_swska_prefill<float>)
    ->Args({8, 2048, 1, 2048, 16, 64})
    ->Args({8, 2048, 1, 2048, 32, 32})
    ->Args({8, 2048, 1, 2048, 32, 64})
    ->UseManualTime()
    ->Iterations(5);
BENCHMARK(bm_swska_decode)
    ->Args({1, 4096, 0, 0, 0})
    ->Args({1, 4096, 1, 0, 0})
    ->Args({1, 4096, 1, 1, 0})
    ->Args({1, 4096, 1, 2, 0})
    ->Args({1, 128, 0, 0, 0})
    ->Args({1, 128, 1, 0, 0})
    ->Args({1, 128, 1, 1, 0})
    ->Args({1, 128, 1, 2, 0})
    ->Args({16, 4096, 0, 0, 0})
    ->Args({16, 4096, 0, 1, 0})
    ->Args({16, 128, 0, 0, 0})
    ->Args({64, 4096, 0, 0, 0})
    ->Args({64, 4096, 0, 1, 0})
    ->Args({64, 128, 0, 0, 0})
    ->UseManualTime()
    ->Iterations(30);
// The fewest keys of a piece (cuda_tuning::swska_decode_min_keys; swska_policy: 16) at a short
// history and a full window, B = 1 / 16 / 64, in graphs at B = 1 (its latency) as above.
BENCHMARK(bm_swska_decode)
    ->ArgsProduct({{1}, {128, 4096}, {1}, {0}, {16, 32, 64, 128}})
    ->ArgsProduct({{16, 64}, {128, 4096}, {0}, {0}, {16, 32, 64, 128}})
    ->UseManualTime()
    ->Iterations(30);

int main(int argc, char** argv) { return bench::run_cuda_benchmarks(argc, argv); }
