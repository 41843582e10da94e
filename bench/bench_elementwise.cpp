// Element-wise primitives, scalar reference and SIMD side by side (same sizes, same run):
//   rmsnorm/<backend>/M          D = 2048, f32 residual kept (the pre-norm of every block)
//   gated_rmsnorm/<backend>/M    E = 4096
//   swiglu/<backend>/M           F = 2736
//   causal_conv/<backend>/M      E = 4096 channels, W = 4, M tokens of one sequence
//   conv_step_decode/<backend>/M M sequences, one token each, states in a pool
//   ddts/<backend>/M             N = 64
//   rotary/<backend>/M           16 heads x 128
// Inputs and outputs rotate through the 256 MiB arena, so large M streams from memory; every one
// is judged against the read+write bandwidth (bytes read + written once). SIMD/scalar ratios come
// from the tokens_per_s of the same M in this run.
#include <vector>

#include "limits.hpp"
#include "rodimus/backend/cpu/causal_conv.hpp"
#include "rodimus/backend/cpu/ddts.hpp"
#include "rodimus/backend/cpu/gated_rmsnorm.hpp"
#include "rodimus/backend/cpu/rmsnorm.hpp"
#include "rodimus/backend/cpu/rotary.hpp"
#include "rodimus/backend/cpu/swiglu.hpp"

using namespace rodimus;
using namespace rodimus::bench;

namespace {

/// Rotating regions of the arena: `count` floats from the first half (inputs) and the second
/// half (outputs), a different place every call.
struct rotation {
  std::size_t in_floats, out_floats, step = 0;
  rotation(std::size_t in, std::size_t out) : in_floats(in), out_floats(out) {}
  float* base() const { return arena().as<float>(); }
  std::size_t half() const { return kArenaBytes / sizeof(float) / 2; }
  std::pair<float*, float*> next() {
    const std::size_t span = std::max(in_floats, out_floats);
    const std::size_t slots = std::max<std::size_t>(1, half() / std::max<std::size_t>(span, 1));
    const std::size_t at = (step++ % slots) * span;
    return {base() + at, base() + half() + at};
  }
};

template <class Backend> void rmsnorm_bench(benchmark::State& st) {
  const index_t M = st.range(0), D = 2048;
  std::vector<float> w(std::size_t(D), 1.0f), res(std::size_t(M * D), 0.0f);
  rotation rot(std::size_t(M * D), std::size_t(M * D));
  const Backend be = backend_traits<Backend>::make();
  for (auto _ : st) {
    auto [in, out] = rot.next();
    rmsnorm_args<float> a;
    a.x = make_view<const float>(in, M, D);
    a.residual = make_view<const float>(res.data(), M, D);
    a.residual_out = make_view(res.data(), M, D);
    a.weight = make_view<const float>(w.data(), D);
    a.y = make_view(out, M, D);
    if (!runs_own_kernel(st, be, a)) break;
    if (!rmsnorm(be, a).ok()) st.SkipWithError("rmsnorm failed");
  }
  report(st, double(M), double(M * D) * 4 * 4, double(M * D) * 5, bound::read_write);
}

template <class Backend> void gated_rmsnorm_bench(benchmark::State& st) {
  const index_t M = st.range(0), E = 4096;
  std::vector<float> w(std::size_t(E), 1.0f);
  rotation rot(std::size_t(2 * M * E), std::size_t(M * E));
  const Backend be = backend_traits<Backend>::make();
  for (auto _ : st) {
    auto [in, out] = rot.next();
    gated_rmsnorm_args<float> a;
    a.x = make_view<const float>(in, M, E);
    a.gate = make_view<const float>(in + M * E, M, E);
    a.weight = make_view<const float>(w.data(), E);
    a.y = make_view(out, M, E);
    if (!runs_own_kernel(st, be, a)) break;
    if (!gated_rmsnorm(be, a).ok()) st.SkipWithError("gated_rmsnorm failed");
  }
  report(st, double(M), double(M * E) * 4 * 3, double(M * E) * 8, bound::read_write);
}

template <class Backend> void swiglu_bench(benchmark::State& st) {
  const index_t M = st.range(0), F = 2736;
  rotation rot(std::size_t(2 * M * F), std::size_t(M * F));
  const Backend be = backend_traits<Backend>::make();
  for (auto _ : st) {
    auto [in, out] = rot.next();
    swiglu_args<float> a{make_view<const float>(in, M, 2 * F), make_view(out, M, F)};
    if (!runs_own_kernel(st, be, a)) break;
    if (!swiglu(be, a).ok()) st.SkipWithError("swiglu failed");
  }
  report(st, double(M), double(M * F) * 4 * 3, double(M * F) * 5, bound::read_write);
}

template <class Backend> void causal_conv_bench(benchmark::State& st) {
  const index_t M = st.range(0), E = 4096, W = 4;
  std::vector<float> w(std::size_t(E * W), 0.25f), b(std::size_t(E), 0.0f),
      s(std::size_t(E * W), 0.0f);
  rotation rot(std::size_t(M * E), std::size_t(M * E));
  const Backend be = backend_traits<Backend>::make();
  for (auto _ : st) {
    auto [in, out] = rot.next();
    causal_conv_args<float> a;
    a.x = make_view<const float>(in, 1, M, E);
    a.weight = make_view<const float>(w.data(), E, W);
    a.bias = make_view<const float>(b.data(), E);
    a.initial_state = make_view<const float>(s.data(), 1, E, W);
    a.final_state = make_view(s.data(), 1, E, W);
    a.y = make_view(out, 1, M, E);
    if (!runs_own_kernel(st, be, a)) break;
    if (!causal_conv(be, a).ok()) st.SkipWithError("causal_conv failed");
  }
  report(st, double(M), double(M * E) * 4 * 2, double(M * E) * (2 * W + 4), bound::read_write);
}

template <class Backend> void conv_step_bench(benchmark::State& st) {
  const index_t M = st.range(0), E = 4096, W = 4;
  std::vector<float> w(std::size_t(E * W), 0.25f), b(std::size_t(E), 0.0f),
      x(std::size_t(M * E), 0.0f), y(std::size_t(M * E));
  rotation rot(std::size_t(M * E * W), 0);
  const Backend be = backend_traits<Backend>::make();
  for (auto _ : st) {
    auto [states, unused] = rot.next();
    (void)unused;
    causal_conv_step_args<float> a;
    a.x = make_view<const float>(x.data(), M, E);
    a.weight = make_view<const float>(w.data(), E, W);
    a.bias = make_view<const float>(b.data(), E);
    a.state = make_view(states, M, E, W);
    a.y = make_view(y.data(), M, E);
    if (!runs_own_kernel(st, be, a)) break;
    if (!causal_conv_step(be, a).ok()) st.SkipWithError("causal_conv_step failed");
  }
  report(st, double(M), double(M * E) * 4 * (2 * W + 2), double(M * E) * (2 * W + 4),
         bound::read_write);
}

template <class Backend> void ddts_bench(benchmark::State& st) {
  const index_t M = st.range(0), N = 64;
  std::vector<float> bias(std::size_t(2 * N), 0.0f);
  rotation rot(std::size_t(3 * M * N), std::size_t(2 * M * N));
  const Backend be = backend_traits<Backend>::make();
  for (auto _ : st) {
    auto [in, out] = rot.next();
    ddts_args<float> a;
    a.gate_preact = make_view<const float>(in, M, 2 * N);
    a.gate_bias = make_view<const float>(bias.data(), 2 * N);
    a.k = make_view<const float>(in + 2 * M * N, M, N);
    a.k_hat = make_view(out, M, N);
    a.log_decay = make_view(out + M * N, M, N);
    if (!runs_own_kernel(st, be, a)) break;
    if (!ddts(be, a).ok()) st.SkipWithError("ddts failed");
  }
  report(st, double(M), double(M * N) * 4 * 5, double(M * N) * 30, bound::read_write);
}

template <class Backend> void rotary_bench(benchmark::State& st) {
  const index_t M = st.range(0), H = 16, D = 128;
  rotation rot(std::size_t(M * H * D), 0);
  std::vector<std::int64_t> off = {100};
  const Backend be = backend_traits<Backend>::make();
  for (auto _ : st) {
    auto [x, unused] = rot.next();
    (void)unused;
    rotary_args<float> a;
    a.x = make_view(x, 1, M, H, D);
    a.position_offset = off.data();
    if (!runs_own_kernel(st, be, a)) break;
    if (!rotary(be, a).ok()) st.SkipWithError("rotary failed");
  }
  report(st, double(M), double(M * H * D) * 4 * 2, double(M * H * D) * 3, bound::read_write);
}

template <class Backend> void register_backend(bool scalar) {
  const std::string be = backend_traits<Backend>::name();
  std::vector<benchmark::internal::Benchmark*> all = {
      benchmark::RegisterBenchmark(("rmsnorm/" + be).c_str(), rmsnorm_bench<Backend>),
      benchmark::RegisterBenchmark(("gated_rmsnorm/" + be).c_str(), gated_rmsnorm_bench<Backend>),
      benchmark::RegisterBenchmark(("swiglu/" + be).c_str(), swiglu_bench<Backend>),
      benchmark::RegisterBenchmark(("causal_conv/" + be).c_str(), causal_conv_bench<Backend>),
      benchmark::RegisterBenchmark(("conv_step_decode/" + be).c_str(), conv_step_bench<Backend>),
      benchmark::RegisterBenchmark(("ddts/" + be).c_str(), ddts_bench<Backend>),
      benchmark::RegisterBenchmark(("rotary/" + be).c_str(), rotary_bench<Backend>)};
  for (auto* b : all) {
    b->UseRealTime()->Unit(benchmark::kMicrosecond)->Arg(1)->Arg(64);
    if (!scalar) b->Arg(1024);
  }
}

} // namespace

RODIMUS_BENCH_MAIN()
