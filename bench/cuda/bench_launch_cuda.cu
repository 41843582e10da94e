// What an overlapped launch (cuda_launch::overlapped, backend/cuda/launch.cuh) saves per kernel:
// chains of 24 identical library calls captured in one CUDA graph and replayed, launched serially
// and overlapped, at the sizes of a batch-1 decode step of rodimus-plus-1.6b.
//
//   bm_launch_chain/K/O   K = 0: rmsnorm of one row of 2048 f32 (with the residual add: a small
//                         kernel, all latency); K = 1: linear, one f32 row times a 2048 x 2048 bf16
//                         weight (8 MiB, the q or o projection; weights promised constant, so the
//                         GEMV loads them before its wait); K = 2: the same GEMV with 4096 x 2048
//                         weights (16 MiB); K = 3: the pre-norm of a sub-block as two kernels,
//                         rmsnorm (residual add, stream kept) then the 2048 x 2048 GEMV; K = 4: the
//                         same as one rmsnorm_linear call (the GEMV with its norm prologue).
//                         O = 0: serial, 1: overlapped.
//
//   bm_gemv_config<R, U, Warps, Split, Pro>/N/cap   the GEMV kernel alone at one tuning
//                         configuration (linear_policy's choices), N x 2048 bf16 weights, batch 1,
//                         overlapped; cap: at most that many CTAs (0: one per row group).
//
// Counters: median_us per call (CUDA events around a graph replay of the chain / 24), and for the
// GEMV the weight bytes per second and limit_ratio against the copy bandwidth this binary measures
// (bytes read only, so a ratio near 1 means the weights stream at the copy rate). The difference
// between O = 0 and O = 1 of one K is the per-kernel gap an overlapped launch removes.
#include <benchmark/benchmark.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <random>
#include <vector>

#include "cuda_bench_support.cuh"
#include "rodimus/backend/cuda/linear.cuh"
#include "rodimus/backend/cuda/rmsnorm.cuh"
#include "rodimus/backend/cuda/rmsnorm_linear.cuh"

using namespace rodimus;
using namespace rodimus::bench;

namespace {

constexpr int kChain = 24;

void bm_launch_chain(benchmark::State& st) {
  const int kind = int(st.range(0));
  const bool overlapped = st.range(1) != 0;
  const index_t D = 2048, N = kind == 2 ? 4096 : 2048;
  std::mt19937_64 rng(11);
  cudaStream_t stream = nullptr;
  BENCH_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  cuda<90> gpu;
  gpu.stream = stream;
  gpu.launch = overlapped ? cuda_launch::overlapped : cuda_launch::serial;
  float* x = device_random<float>(std::size_t(N), rng, -1, 1);
  float* res = device_random<float>(std::size_t(N), rng, -1, 1);
  float* y = device_random<float>(std::size_t(N), rng, -1, 1);
  float* nw = device_random<float>(std::size_t(D), rng, 0.5, 1.5);
  float* normed = device_random<float>(std::size_t(D), rng, -1, 1);
  float* stream_out = device_random<float>(std::size_t(D), rng, -1, 1);
  // One weight matrix per call of the chain (24 x 8 or 16 MiB: more than the L2 holds).
  std::vector<bf16*> w(kChain, nullptr);
  if (kind != 0)
    for (auto& p : w)
      p = device_random<bf16>(std::size_t(N * D), rng, -0.05, 0.05);
  int call = 0;
  const auto step = [&] {
    if (kind == 0) {
      rmsnorm_args<float, float> a;
      a.x = make_view<const float>(x, 1, D);
      a.residual = make_view<const float>(res, 1, D);
      a.residual_out = make_view(res, 1, D);
      a.weight = tensor_view<const float, 1>::contiguous(nw, {D});
      a.y = make_view(y, 1, D);
      a.eps = 1e-5f;
      if (!rmsnorm(gpu, a).ok()) st.SkipWithError("rmsnorm failed");
    } else if (kind == 4) {
      rmsnorm_linear_args<bf16> a;
      a.x = make_view<const float>(x, 1, D);
      a.residual = make_view<const float>(res, 1, D);
      a.sum_out = make_view(stream_out, 1, D);
      a.norm_weight = tensor_view<const float, 1>::contiguous(nw, {D});
      a.w = make_view<const bf16>(w[std::size_t(call % kChain)], N, D);
      a.y = make_view(y, 1, N);
      a.w_constant = true;
      if (!rmsnorm_linear(gpu, a).ok()) st.SkipWithError("rmsnorm_linear failed");
    } else {
      const float* in = x;
      if (kind == 3) { // the norm as its own kernel first
        rmsnorm_args<float, float> a;
        a.x = make_view<const float>(x, 1, D);
        a.residual = make_view<const float>(res, 1, D);
        a.residual_out = make_view(stream_out, 1, D);
        a.weight = tensor_view<const float, 1>::contiguous(nw, {D});
        a.y = make_view(normed, 1, D);
        a.eps = 1e-5f;
        if (!rmsnorm(gpu, a).ok()) st.SkipWithError("rmsnorm failed");
        in = normed;
      }
      linear_args<float, bf16> a{make_view(in, 1, D),
                                 make_view<const bf16>(w[std::size_t(call % kChain)], N, D),
                                 make_view(y, 1, N), true};
      if (!linear(gpu, a).ok()) st.SkipWithError("linear failed");
    }
    ++call;
  };
  const auto t = time_steps(st, stream, kChain, step, /*graph=*/true);
  const double us = median(t) * 1e3;
  st.counters["median_us"] = us;
  if (kind != 0) {
    const double gbps = double(N * D * 2) / (us * 1e-6) / 1e9;
    st.counters["weight_GBps"] = gbps;
    st.counters["copy_GBps"] = copy_bandwidth() / 1e9;
    st.counters["limit_ratio"] = gbps * 1e9 / copy_bandwidth();
  }
  for (auto* p : w)
    BENCH_CUDA(cudaFree(p));
  for (float* p : {x, res, y, nw, normed, stream_out})
    BENCH_CUDA(cudaFree(p));
  BENCH_CUDA(cudaStreamDestroy(stream));
}

/// The GEMV kernel of linear.cuh at one configuration (R weight rows per warp, U 16-byte loads per
/// row and lane in flight, Warps per CTA, K split over the CTA's warps or not, Pro: with the
/// input prologue of rmsnorm_linear, residual add and norm), batch 1, f32 x, bf16 weights promised
/// constant, N x 2048, at most range(1) CTAs (0: one per row group or warp group; fewer loop over
/// the groups): the sweep that chooses linear_policy. Same chain of 24 overlapped calls in a graph
/// as bm_launch_chain.
template <int R, int U, int Warps, bool Split, bool Pro = false>
void bm_gemv_config(benchmark::State& st) {
  const index_t N = st.range(0), D = 2048, cap = st.range(1);
  std::mt19937_64 rng(12);
  cudaStream_t stream = nullptr;
  BENCH_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  cuda<90> gpu;
  gpu.stream = stream;
  float* x = device_random<float>(std::size_t(D), rng, -1, 1);
  float* y = device_random<float>(std::size_t(N), rng, -1, 1);
  float* res = device_random<float>(std::size_t(D), rng, -1, 1);
  float* nw = device_random<float>(std::size_t(D), rng, 0.5, 1.5);
  std::vector<bf16*> w(kChain, nullptr);
  for (auto& p : w)
    p = device_random<bf16>(std::size_t(N * D), rng, -0.05, 0.05);
  constexpr int KS = Split ? Warps : 1;
  const index_t groups = (N + R - 1) / R, full = Split ? groups : (groups + Warps - 1) / Warps;
  const unsigned grid = unsigned(cap > 0 && cap < full ? cap : full);
  detail::linear_input_prologue np;
  if (Pro) {
    np.residual = res;
    np.weight = nw;
    np.eps = 1e-5f;
  }
  int call = 0;
  const auto step = [&] {
    linear_args<float, bf16> a{make_view<const float>(x, 1, D),
                               make_view<const bf16>(w[std::size_t(call++ % kChain)], N, D),
                               make_view(y, 1, N), true};
    BENCH_CUDA(
        detail::launch(detail::launch_on(gpu),
                       detail::linear_gemv_kernel<float, bf16, 1, R, U, Warps, KS, true, Pro>, grid,
                       Warps * 32, 0, a, np));
  };
  const auto t = time_steps(st, stream, kChain, step, /*graph=*/true);
  const double us = median(t) * 1e3, gbps = double(N * D * 2) / (us * 1e-6) / 1e9;
  st.counters["median_us"] = us;
  st.counters["weight_GBps"] = gbps;
  st.counters["limit_ratio"] = gbps * 1e9 / copy_bandwidth();
  for (auto* p : w)
    BENCH_CUDA(cudaFree(p));
  for (float* p : {x, y, res, nw})
    BENCH_CUDA(cudaFree(p));
  BENCH_CUDA(cudaStreamDestroy(stream));
}

} // namespace

BENCHMARK(bench::bm_copy_d2d)->UseManualTime()->Iterations(1);
// linear_policy today: R = 2, U = 2; split over 8 warps below 2048 row groups (at most 528
// CTAs), else 4 warps. Rows: the o projection (2048), qkv (4224), the FFN's fc (5456) and the
// mixer's fc (8192), all with K = 2048.
#define RODIMUS_GEMV_SWEEP(R, U, W, S, CAP)                                                        \
  BENCHMARK(bm_gemv_config<R, U, W, S>)                                                            \
      ->ArgsProduct({{2048, 4224, 5456, 8192}, {CAP}})                                             \
      ->UseManualTime()                                                                            \
      ->Iterations(30)
RODIMUS_GEMV_SWEEP(2, 2, 8, true, 528);
RODIMUS_GEMV_SWEEP(2, 2, 4, false, 0);
// The prologue's cost against the plain kernel: 2048 rows (split, 528 CTAs) and 8192 (unsplit).
#define RODIMUS_GEMV_PRO(R, U, W, S, PRO, N, CAP)                                                  \
  BENCHMARK(bm_gemv_config<R, U, W, S, PRO>)                                                       \
      ->ArgsProduct({{N}, {CAP}})                                                                  \
      ->UseManualTime()                                                                            \
      ->Iterations(30)
RODIMUS_GEMV_PRO(2, 2, 8, true, true, 2048, 528);
RODIMUS_GEMV_PRO(2, 2, 4, false, true, 8192, 0);
#undef RODIMUS_GEMV_PRO
#undef RODIMUS_GEMV_SWEEP
BENCHMARK(bm_launch_chain)->ArgsProduct({{0, 1, 2, 3, 4}, {0, 1}})->UseManualTime()->Iterations(50);

int main(int argc, char** argv) { return bench::run_cuda_benchmarks(argc, argv); }
