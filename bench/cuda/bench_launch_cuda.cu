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
//                         same as one rmsnorm_linear call (the GEMV, its norm prologue staged).
//                         O = 0: serial, 1: overlapped.
//
//   bm_gemv_config<R, U, Warps, Split, Pro, Stage>/N/cap/K/input/M   the GEMV kernel alone at
//                         one tuning configuration (linear_policy's choices), N x K bf16 weights,
//                         M = 1 or 2 rows of x, overlapped; cap: at most that many CTAs (0: one per
//                         row group); Pro: with the input prologue of rmsnorm_linear or
//                         swiglu_linear (input: 0 residual + norm, 1 the same with sum_out, 2 gate
//                         + norm, 3 gate alone), in the loop or (Stage) staged in shared memory.
//
//   bm_gemv_kernel<Choice>/N/K/input/M   the GEMV as linear_policy dispatches it (linear,
//                         rmsnorm_linear's and swiglu_linear's launches; input 4: no prologue)
//                         with cuda_tuning::gemv = Choice (2: the streamed kernel of
//                         linear_stream.cuh where it applies; 1: the register kernel), at the
//                         shapes of a rodimus-plus-1.6b decode step.
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

/// What goes through the GEMV's input prologue in bm_gemv_config (range(3)).
enum class gemv_input {
  residual_norm = 0,     // x + residual, RMSNorm (rmsnorm_linear without the stream kept)
  residual_norm_sum = 1, // the same, s kept in sum_out (a sub-block's first projection)
  gated_norm = 2,        // x * silu(gate), RMSNorm (the mixer's gated norm before out_proj)
  gated = 3,             // x * silu(gate), no norm (swiglu_linear, the FFN's down projection)
};

/// The device arrays of a GEMV benchmark: M x K f32 x and the prologue's inputs, M x N y, and a
/// chain's kChain N x K bf16 weight matrices (more than the L2 holds); freed with the stream.
struct gemv_bench_data {
  index_t M, N, K;
  cudaStream_t stream = nullptr;
  float *x, *y, *res, *gate, *sum, *nw;
  std::vector<bf16*> w;

  gemv_bench_data(index_t m, index_t n, index_t k, std::uint64_t seed) : M(m), N(n), K(k) {
    std::mt19937_64 rng(seed);
    BENCH_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    const auto MK = std::size_t(M * K);
    x = device_random<float>(MK, rng, -1, 1);
    y = device_random<float>(std::size_t(M * N), rng, -1, 1);
    res = device_random<float>(MK, rng, -1, 1);
    gate = device_random<float>(MK, rng, -4, 4);
    sum = device_random<float>(MK, rng, -1, 1);
    nw = device_random<float>(std::size_t(K), rng, 0.5, 1.5);
    w.assign(kChain, nullptr);
    for (auto& p : w)
      p = device_random<bf16>(std::size_t(N * K), rng, -0.05, 0.05);
  }
  gemv_bench_data(const gemv_bench_data&) = delete;
  gemv_bench_data& operator=(const gemv_bench_data&) = delete;
  ~gemv_bench_data() {
    for (auto* p : w)
      BENCH_CUDA(cudaFree(p));
    for (float* p : {x, y, res, gate, sum, nw})
      BENCH_CUDA(cudaFree(p));
    BENCH_CUDA(cudaStreamDestroy(stream));
  }

  /// The input prologue of `input` over these arrays.
  detail::linear_input_prologue prologue(gemv_input input) const {
    detail::linear_input_prologue np;
    if (input == gemv_input::gated_norm || input == gemv_input::gated) {
      np.gate = gate;
      np.gate_stride = K;
    } else {
      np.residual = res;
      np.residual_stride = K;
    }
    if (input == gemv_input::residual_norm_sum) {
      np.sum_out = sum;
      np.sum_stride = K;
    }
    if (input != gemv_input::gated) {
      np.weight = nw;
      np.eps = 1e-5f;
    }
    return np;
  }

  /// The call-th product of the chain (weights promised constant).
  linear_args<float, bf16> args(int call) const {
    return {make_view<const float>(x, M, K),
            make_view<const bf16>(w[std::size_t(call % kChain)], N, K), make_view(y, M, N), true};
  }

  /// median_us, weight_GBps and limit_ratio (against the copy bandwidth) of the step times t (ms).
  void report(benchmark::State& st, const std::vector<double>& t) const {
    const double us = median(t) * 1e3, gbps = double(N * K * 2) / (us * 1e-6) / 1e9;
    st.counters["median_us"] = us;
    st.counters["weight_GBps"] = gbps;
    st.counters["limit_ratio"] = gbps * 1e9 / copy_bandwidth();
  }
};

/// One launch of linear.cuh's GEMV kernel with MR rows of x at one configuration (Stage: with its
/// shared memory).
template <int MR, int R, int U, int Warps, bool Split, bool Pro, bool Stage>
cudaError_t launch_gemv_config(const detail::launch_target& on, unsigned grid,
                               const linear_args<float, bf16>& a,
                               const detail::linear_input_prologue& np) {
  constexpr int KS = Split ? Warps : 1;
  const std::size_t smem = Stage ? std::size_t(detail::linear_stage_bytes(MR, a.x.shape[1])) : 0;
  return detail::launch(
      on, detail::linear_gemv_kernel<float, bf16, MR, R, U, Warps, KS, true, Pro, Stage>, grid,
      Warps * 32, smem, a, np);
}

/// The GEMV kernel of linear.cuh at one configuration (R weight rows per warp, U 16-byte loads per
/// row and lane in flight, Warps per CTA, K split over the CTA's warps or not; Pro: with an input
/// prologue, applied in the loop, or Stage: staged in shared memory once per CTA), f32 x, bf16
/// weights promised constant, N x K (range(0), range(2)), at most range(1) CTAs (0: one per row
/// group or warp group; fewer loop over the groups), prologue range(3) (gemv_input), M = range(4)
/// rows of x (1 or 2). Same chain of 24 overlapped calls in a graph as bm_launch_chain: the sweep
/// that chooses linear_policy, and the A / B of the prologue's two forms against the plain kernel.
template <int R, int U, int Warps, bool Split, bool Pro = false, bool Stage = false>
void bm_gemv_config(benchmark::State& st) {
  const index_t N = st.range(0), cap = st.range(1), K = st.range(2), M = st.range(4);
  const auto input = gemv_input(st.range(3));
  if (M != 1 && M != 2) {
    st.SkipWithError("M: 1 or 2");
    return;
  }
  const gemv_bench_data d(M, N, K, 12);
  cuda<90> gpu;
  gpu.stream = d.stream;
  const index_t groups = (N + R - 1) / R, full = Split ? groups : (groups + Warps - 1) / Warps;
  const unsigned grid = unsigned(cap > 0 && cap < full ? cap : full);
  const detail::linear_input_prologue np =
      Pro ? d.prologue(input) : detail::linear_input_prologue{};
  int call = 0;
  const auto step = [&] {
    const auto a = d.args(call++);
    const auto on = detail::launch_on(gpu);
    if (M == 1)
      BENCH_CUDA((launch_gemv_config<1, R, U, Warps, Split, Pro, Stage>(on, grid, a, np)));
    else
      BENCH_CUDA((launch_gemv_config<2, R, U, Warps, Split, Pro, Stage>(on, grid, a, np)));
  };
  d.report(st, time_steps(st, d.stream, kChain, step, /*graph=*/true));
}

/// The fused GEMVs of a rodimus-plus-1.6b decode step at batch 1 and 2 ({N, cap, K, input, M}),
/// as linear_policy launches them: split over 8 warps (at most 528 CTAs) below 2048 row groups ...
void fused_gemvs_split(benchmark::internal::Benchmark* b) {
  for (index_t M : {1, 2}) {
    b->Args({2048, 528, 2048, int(gemv_input::residual_norm), M}); // the 2026-12-06 A / B's size
    b->Args({2048, 528, 4096, int(gemv_input::gated_norm), M});    // the mixer's out_proj
    b->Args({2048, 528, 2728, int(gemv_input::gated), M});         // the FFN's out_proj
  }
}

/// ... and unsplit (4 warps per CTA, a CTA per 4 row groups) above: qkv, the FFN's fc and the
/// mixer's fc, each writing the stream (and the mixer's fc without it, the 2026-12-06 A / B's).
void fused_gemvs_unsplit(benchmark::internal::Benchmark* b) {
  for (index_t M : {1, 2}) {
    for (index_t N : {4224, 5456, 8192})
      b->Args({N, 0, 2048, int(gemv_input::residual_norm_sum), M});
    b->Args({8192, 0, 2048, int(gemv_input::residual_norm), M});
  }
}

/// ... and the LM head with the final norm (126464 x 2048, unsplit): one CTA per 4 row groups
/// (15808, each staging its row when staged), and at most 1056 (8 per SM of 132: each CTA stages
/// once for 15 rounds).
void fused_gemv_head(benchmark::internal::Benchmark* b) {
  b->Args({126464, 0, 2048, int(gemv_input::residual_norm), 1});
  b->Args({126464, 1056, 2048, int(gemv_input::residual_norm), 1});
}

/// The three K-split GEMVs of a batch-1 decode step at other CTA caps than linear_policy's 528 (2
/// / 4 / 8 per SM of 132): the o projection (2048 x 2048, plain), the mixer's out_proj (2048 x
/// 4096, gated norm) and the FFN's down projection (2048 x 2728, gate); plain where Pro is off.
void split_gemvs_caps(benchmark::internal::Benchmark* b) {
  for (index_t cap : {264, 528, 1056}) {
    b->Args({2048, cap, 2048, int(gemv_input::residual_norm), 1});
    b->Args({2048, cap, 4096, int(gemv_input::gated_norm), 1});
    b->Args({2048, cap, 2728, int(gemv_input::gated), 1});
  }
}

/// The GEMV of linear / rmsnorm_linear / swiglu_linear as linear_policy dispatches it, with
/// cuda_tuning::gemv = Choice: N x K bf16 weights promised constant (range(0), range(1)), input
/// range(2) (gemv_input, or 4: none, plain linear), M = range(3) rows of x; the same chain of 24
/// overlapped calls in a graph as bm_gemv_config.
template <int Choice> void bm_gemv_kernel(benchmark::State& st) {
  const index_t N = st.range(0), K = st.range(1), M = st.range(3);
  const int input = int(st.range(2));
  const gemv_bench_data d(M, N, K, 13);
  cuda<90> gpu;
  gpu.stream = d.stream;
  const auto choice = Choice == 2 ? cuda_gemv::streamed : cuda_gemv::registers;
  const detail::linear_input_prologue np =
      input == 4 ? detail::linear_input_prologue{} : d.prologue(gemv_input(input));
  int call = 0;
  const auto step = [&] {
    const auto a = d.args(call++);
    const auto on = detail::launch_on(gpu);
    const status s = input == 4 ? detail::linear_gemv<90>(a, on, {}, choice)
                                : detail::linear_gemv<90, true>(a, on, np, choice);
    if (!s.ok()) st.SkipWithError("linear_gemv failed");
  };
  d.report(st, time_steps(st, d.stream, kChain, step, /*graph=*/true));
}

/// The GEMVs of a rodimus-plus-1.6b decode step ({N, K, input, M}): the mixer's fc (8192), the
/// two-row projection (in_proj, mem_gate, ch_gate_down: 2 x 4096 -> 288 + 32 rows), out_proj
/// (gated norm), q / k / v (4224), o_proj (plain), the FFN's fc (5456) and down (gate), the LM
/// head; at one row and (the batch-2 step) two.
void decode_gemvs(benchmark::internal::Benchmark* b) {
  for (index_t M : {1, 2}) {
    b->Args({8192, 2048, int(gemv_input::residual_norm_sum), M});
    b->Args({4224, 2048, int(gemv_input::residual_norm_sum), M});
    b->Args({5456, 2048, int(gemv_input::residual_norm_sum), M});
    b->Args({2048, 4096, int(gemv_input::gated_norm), M});
    b->Args({2048, 2048, 4, M});
    b->Args({2048, 2728, int(gemv_input::gated), M});
  }
  b->Args({320, 4096, 4, 2});
  b->Args({126464, 2048, int(gemv_input::residual_norm), 1});
}

} // namespace

BENCHMARK(bm_gemv_kernel<2>)->Apply(decode_gemvs)->UseManualTime()->Iterations(30);
BENCHMARK(bm_gemv_kernel<1>)->Apply(decode_gemvs)->UseManualTime()->Iterations(30);
BENCHMARK(bench::bm_copy_d2d)->UseManualTime()->Iterations(1);
// linear_policy today: R = 2, U = 2; split over 8 warps below 2048 row groups (at most 528
// CTAs), else 4 warps. Rows: the o projection (2048), qkv (4224), the FFN's fc (5456) and the
// mixer's fc (8192), all with K = 2048.
#define RODIMUS_GEMV_SWEEP(R, U, W, S, CAP)                                                        \
  BENCHMARK(bm_gemv_config<R, U, W, S>)                                                            \
      ->ArgsProduct({{2048, 4224, 5456, 8192}, {CAP}, {2048}, {0}, {1}})                           \
      ->UseManualTime()                                                                            \
      ->Iterations(30)
RODIMUS_GEMV_SWEEP(2, 2, 8, true, 528);
RODIMUS_GEMV_SWEEP(2, 2, 4, false, 0);
#undef RODIMUS_GEMV_SWEEP
// The input prologue against the plain kernel at the same launches: plain (the prologue's inputs
// ignored), Pro (applied in the loop, the form before staging) and Pro + Stage (staged in shared
// memory once per CTA, linear_policy::gemv_stage_prologue); the staged unsplit launch also with 8
// warps per CTA (half the CTAs, each staging for twice the rows); the LM head also with a capped
// grid (fewer stagings).
#define RODIMUS_GEMV_AB(W, S, PRO, STAGE, SHAPES)                                                  \
  BENCHMARK(bm_gemv_config<2, 2, W, S, PRO, STAGE>)->Apply(SHAPES)->UseManualTime()->Iterations(30)
RODIMUS_GEMV_AB(8, true, false, false, fused_gemvs_split);
RODIMUS_GEMV_AB(8, true, true, false, fused_gemvs_split);
RODIMUS_GEMV_AB(8, true, true, true, fused_gemvs_split);
RODIMUS_GEMV_AB(4, false, false, false, fused_gemvs_unsplit);
RODIMUS_GEMV_AB(4, false, true, false, fused_gemvs_unsplit);
RODIMUS_GEMV_AB(4, false, true, true, fused_gemvs_unsplit);
RODIMUS_GEMV_AB(8, false, true, true, fused_gemvs_unsplit);
RODIMUS_GEMV_AB(4, false, false, false, fused_gemv_head);
RODIMUS_GEMV_AB(4, false, true, false, fused_gemv_head);
RODIMUS_GEMV_AB(4, false, true, true, fused_gemv_head);
#undef RODIMUS_GEMV_AB
// The K split's shape (the bm_gemv_config<R, U, W, true[, true, true]> rows at the caps of
// split_gemvs_caps): rows per warp R, loads in flight U, warps per CTA over which K is split,
// plain and staged. A warp's K range is whole steps of 32 x U pieces, so at K = 2048 (256 pieces)
// with U = 2 only 4 warps have one (8 at U = 1), at K = 2728 6, at 4096 8. Rows repeat others:
// <2, 2, 8> at cap 528 is linear_policy's launch (fused_gemvs_split's M = 1 rows); a cap above
// the row groups (1024 at R = 2, 512 at R = 4) is the uncapped grid.
#define RODIMUS_GEMV_SPLIT(R, U, W)                                                                \
  BENCHMARK(bm_gemv_config<R, U, W, true>)                                                         \
      ->Apply(split_gemvs_caps)                                                                    \
      ->UseManualTime()                                                                            \
      ->Iterations(30);                                                                            \
  BENCHMARK(bm_gemv_config<R, U, W, true, true, true>)                                             \
      ->Apply(split_gemvs_caps)                                                                    \
      ->UseManualTime()                                                                            \
      ->Iterations(30)
RODIMUS_GEMV_SPLIT(2, 2, 8);
RODIMUS_GEMV_SPLIT(2, 1, 8);
RODIMUS_GEMV_SPLIT(2, 1, 16);
RODIMUS_GEMV_SPLIT(2, 2, 16);
RODIMUS_GEMV_SPLIT(4, 1, 8);
RODIMUS_GEMV_SPLIT(1, 2, 8);
#undef RODIMUS_GEMV_SPLIT
BENCHMARK(bm_launch_chain)->ArgsProduct({{0, 1, 2, 3, 4}, {0, 1}})->UseManualTime()->Iterations(50);

int main(int argc, char** argv) { return bench::run_cuda_benchmarks(argc, argv); }
