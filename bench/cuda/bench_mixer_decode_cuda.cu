// mixer_decode on CUDA: the fused decode step of the Rodimus mixer's memory (channel gate, DDTS,
// GLA update and readout, internal skip) at the rodimus-plus-1.6b mixer geometry (d_inner E =
// 4096, mem_size N = 64), B in {1, 16, 64}; against the same step as the four kernels it replaces
// (channel_gate, ddts, gla_decode, scale_add), on the same inputs. `_low_rank` variants: the
// channel gate's up-projection too (R = 32, W1 (E, R) bf16, h (B, R)), folded into the fused
// kernel (`bm_mixer_decode_low_rank`: the block's decode path) against the GEMV u = h W1^T (linear)
// followed by the fused kernel's u_preact form (`bm_mixer_decode_low_rank_gemv`: the path before),
// so the difference is the cost of the launch the fold saves (the `_graph` pair at B = 1).
//
// Timing: CUDA events around 20 back-to-back steps, per-step time = elapsed / 20, median over the
// iterations (`median_us`); `_graph` variants replay the 20 steps from one CUDA graph (the decode
// runner's way: kernel time without launch gaps, the B = 1 latency figure). Bytes: the state
// read and written (2 x B x N x E x 4) plus the per-row vectors read and written (x, u_preact,
// c, o: 4 x B x E x 4; r, k, psi: 4 x B x N x 4); the weights (3 x E + 2N floats) stay in L2 and
// are not counted; nor are W1 (256 KiB) and h in the `_low_rank` variants (the same bytes for
// both: u_preact, written and read back by the GEMV pair, is counted for both). The states rotate
// through a pool of >= 512 MiB (each step uses the next B slots), so no step finds its state in the
// L2. `copy_GBps` is a device-to-device cudaMemcpy of 1 GiB measured by this binary; `limit_ratio`
// = bytes / time / copy bandwidth. Without a GPU the binary prints "skipped: no CUDA device" and
// exits 0.
#include <benchmark/benchmark.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "cuda/cuda_bench_support.cuh"
#include "rodimus/backend/cuda/channel_gate.cuh"
#include "rodimus/backend/cuda/context.cuh"
#include "rodimus/backend/cuda/ddts.cuh"
#include "rodimus/backend/cuda/gla_decode.cuh"
#include "rodimus/backend/cuda/linear.cuh"
#include "rodimus/backend/cuda/mixer_decode.cuh"
#include "rodimus/backend/cuda/scale_add.cuh"
#include "rodimus/core/error.hpp"

using namespace rodimus;
using bench::copy_bandwidth;
using bench::device_random;
using bench::median;

namespace {

/// The four kernels the fused one replaces, as blocks/mixer.hpp ran them before it: u is the
/// channel gate's in/out buffer (re-gated every step: the timing is what matters), k_hat and
/// log_decay two (B, N) buffers.
struct unfused_buffers {
  float* u;
  float* k_hat;
  float* log_decay;
};

status unfused_step(const cuda<90>& gpu, const mixer_decode_args<>& a, const unfused_buffers& t) {
  const index_t B = a.x.shape[0], E = a.x.shape[1], N = a.r.shape[1];
  RODIMUS_TRY(channel_gate(gpu, channel_gate_args{make_view(t.u, B, E), a.ch_gate_bias, a.x}));
  ddts_args<float> d;
  d.gate_preact = a.psi;
  d.gate_bias = a.mem_gate_bias;
  d.k = a.k;
  d.k_hat = make_view(t.k_hat, B, N);
  d.log_decay = make_view(t.log_decay, B, N);
  d.normalize_eps = a.normalize_eps;
  RODIMUS_TRY(ddts(gpu, d));
  gla_decode_args<float, float, float> g;
  g.q = make_view(a.r.data, B, index_t(1), N);
  g.k = make_view(static_cast<const float*>(t.k_hat), B, index_t(1), N);
  g.v = make_view(static_cast<const float*>(t.u), B, index_t(1), E);
  g.g = make_view(static_cast<const float*>(t.log_decay), B, index_t(1), N);
  g.o = make_view(a.o.data, B, index_t(1), E);
  g.state = a.state;
  g.slot = a.slot;
  g.scale = a.scale;
  RODIMUS_TRY(gla_decode(gpu, g));
  return scale_add(gpu, scale_add_args{a.o, a.c, a.residual_weight});
}

/// What one step runs: the fused kernel or the four it replaces (u_preact given), or with the
/// up-projection: folded into the fused kernel, or a GEMV before it.
enum class step_kind { fused, unfused, low_rank, low_rank_gemv };

/// Times one step of `kind` with B = st.range(0).
template <step_kind Kind> void run_step(benchmark::State& st, bool graph) {
  const index_t B = st.range(0), N = 64, E = 4096, R = 32;
  const index_t slot_bytes = N * E * index_t(sizeof(float));
  const index_t P = std::max<index_t>(2 * B, (index_t(512) << 20) / slot_bytes); // >= 512 MiB
  const int launches = 20;
  std::mt19937_64 rng(12345);
  float* x = device_random<float>(std::size_t(B * E), rng, -3, 3);
  float* u = device_random<float>(std::size_t(B * E), rng, -3, 3);
  float* c = device_random<float>(std::size_t(B * E), rng, -2, 2);
  float* o = device_random<float>(std::size_t(B * E), rng, -1, 1);
  float* b1 = device_random<float>(std::size_t(E), rng, -1, 1);
  float* rw = device_random<float>(std::size_t(E), rng, -1, 1);
  float* r = device_random<float>(std::size_t(B * N), rng, -1, 1);
  float* k = device_random<float>(std::size_t(B * N), rng, -1, 1);
  float* psi = device_random<float>(std::size_t(B * 2 * N), rng, -4, 4);
  float* b2 = device_random<float>(std::size_t(2 * N), rng, -1, 1);
  float* k_hat = device_random<float>(std::size_t(B * N), rng, -1, 1);
  float* log_decay = device_random<float>(std::size_t(B * N), rng, -1, 0);
  float* h = device_random<float>(std::size_t(B * R), rng, -2, 2);
  bf16* w1 = device_random<bf16>(std::size_t(E * R), rng, -0.25, 0.25);
  float* pool = device_random<float>(std::size_t(P * N * E), rng, -1, 1);
  std::vector<std::int32_t> slots_h(std::size_t(P + B));
  for (std::size_t i = 0; i < slots_h.size(); ++i)
    slots_h[i] = std::int32_t(index_t(i) % P);
  std::int32_t* slots = bench::device_copy(slots_h);

  mixer_decode_args<> a;
  a.x = make_view<const float>(x, B, E);
  a.u_preact = make_view<const float>(u, B, E);
  a.ch_gate_bias = make_view<const float>(b1, E);
  a.c = make_view<const float>(c, B, E);
  a.residual_weight = make_view<const float>(rw, E);
  a.r = make_view<const float>(r, B, N);
  a.k = make_view<const float>(k, B, N);
  a.psi = make_view<const float>(psi, B, 2 * N);
  a.mem_gate_bias = make_view<const float>(b2, 2 * N);
  a.o = make_view(o, B, E);
  a.state = make_view(pool, P, index_t(1), N, E);
  a.scale = 0.125f;
  cudaStream_t stream = nullptr;
  BENCH_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  // cuBLAS for the low-rank projection past the GEMV's rows (low_rank_gemv at B >= 3).
  auto ctx = std::make_unique<cuda_context>(stream);
  cuda<90> gpu{stream};
  gpu.context = ctx.get();
  const unfused_buffers t{u, k_hat, log_decay};
  const mixer_decode_args<bf16> low = [&] {
    mixer_decode_args<bf16> l = mixer_decode_with_up(a, make_view<const bf16>(w1, E, R));
    l.u_preact = {};
    l.h = make_view<const float>(h, B, R);
    return l;
  }();
  const linear_args<float, bf16> up{low.h, low.ch_gate_up, make_view(u, B, E), true};
  void* up_ws = nullptr; // the GEMM path's (B beyond the GEMV's rows), else none
  const std::size_t up_ws_bytes = linear_workspace_bytes(gpu, up);
  if (up_ws_bytes) BENCH_CUDA(cudaMalloc(&up_ws, up_ws_bytes));
  index_t offset = 0;
  std::string err;
  auto step = [&]() {
    a.slot = slots + offset;
    offset = (offset + B) % P;
    status s = status::success();
    if constexpr (Kind == step_kind::fused) s = mixer_decode(gpu, a);
    if constexpr (Kind == step_kind::unfused) s = unfused_step(gpu, a, t);
    if constexpr (Kind == step_kind::low_rank) {
      mixer_decode_args<bf16> l = low;
      l.slot = a.slot;
      s = mixer_decode(gpu, l);
    }
    if constexpr (Kind == step_kind::low_rank_gemv) {
      s = linear(gpu, up, workspace{up_ws, up_ws_bytes});
      if (s.ok()) s = mixer_decode(gpu, a);
    }
    if (!s.ok() && err.empty()) err = to_string(s);
  };
  const std::vector<double> per_step_ms = bench::time_steps(st, stream, launches, step, graph);
  if (!err.empty()) st.SkipWithError(err.c_str());

  const double bytes = 2.0 * double(B * N * E) * sizeof(float) +
                       4.0 * double(B * E) * sizeof(float) + 4.0 * double(B * N) * sizeof(float);
  const double med_s = median(per_step_ms) * 1e-3;
  st.counters["median_us"] = med_s * 1e6;
  st.counters["GBps"] = bytes / med_s / 1e9;
  st.counters["copy_GBps"] = copy_bandwidth() / 1e9;
  st.counters["limit_ratio"] = bytes / med_s / copy_bandwidth();
  st.SetBytesProcessed(std::int64_t(bytes) * std::int64_t(st.iterations()));

  ctx.reset(); // before its stream
  BENCH_CUDA(cudaStreamDestroy(stream));
  for (void* p :
       {static_cast<void*>(x), static_cast<void*>(u), static_cast<void*>(c), static_cast<void*>(o),
        static_cast<void*>(b1), static_cast<void*>(rw), static_cast<void*>(r),
        static_cast<void*>(k), static_cast<void*>(psi), static_cast<void*>(b2),
        static_cast<void*>(k_hat), static_cast<void*>(log_decay), static_cast<void*>(pool),
        static_cast<void*>(slots), static_cast<void*>(h), static_cast<void*>(w1), up_ws})
    BENCH_CUDA(cudaFree(p));
}

void bm_mixer_decode(benchmark::State& st) { run_step<step_kind::fused>(st, false); }
void bm_mixer_decode_graph(benchmark::State& st) { run_step<step_kind::fused>(st, true); }
void bm_mixer_decode_unfused(benchmark::State& st) { run_step<step_kind::unfused>(st, false); }
void bm_mixer_decode_unfused_graph(benchmark::State& st) { run_step<step_kind::unfused>(st, true); }
void bm_mixer_decode_low_rank(benchmark::State& st) { run_step<step_kind::low_rank>(st, false); }
void bm_mixer_decode_low_rank_graph(benchmark::State& st) {
  run_step<step_kind::low_rank>(st, true);
}
void bm_mixer_decode_low_rank_gemv(benchmark::State& st) {
  run_step<step_kind::low_rank_gemv>(st, false);
}
void bm_mixer_decode_low_rank_gemv_graph(benchmark::State& st) {
  run_step<step_kind::low_rank_gemv>(st, true);
}

} // namespace

BENCHMARK(bench::bm_copy_d2d)->UseManualTime()->Iterations(1);
#define RODIMUS_BENCH_MIXER_DECODE(fn)                                                             \
  BENCHMARK(fn)->Arg(1)->Arg(16)->Arg(64)->UseManualTime()->Iterations(50)
RODIMUS_BENCH_MIXER_DECODE(bm_mixer_decode);
RODIMUS_BENCH_MIXER_DECODE(bm_mixer_decode_graph);
RODIMUS_BENCH_MIXER_DECODE(bm_mixer_decode_unfused);
RODIMUS_BENCH_MIXER_DECODE(bm_mixer_decode_unfused_graph);
RODIMUS_BENCH_MIXER_DECODE(bm_mixer_decode_low_rank);
RODIMUS_BENCH_MIXER_DECODE(bm_mixer_decode_low_rank_graph);
RODIMUS_BENCH_MIXER_DECODE(bm_mixer_decode_low_rank_gemv);
RODIMUS_BENCH_MIXER_DECODE(bm_mixer_decode_low_rank_gemv_graph);

int main(int argc, char** argv) { return bench::run_cuda_benchmarks(argc, argv); }
