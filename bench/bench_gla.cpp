// GLA recurrence benchmarks, Rodimus shape (one head, K = 64, V = 4096, f32 state):
//   gla_decode/<backend>/<act>/B   one decode step for B sequences; states rotate through a
//                                  256 MiB pool (far beyond the last-level cache). Judged against
//                                  the read+write bandwidth (the state is read and written once);
//                                  stream_ratio: against in-place streams of the same bytes per
//                                  call (what a call of this size can reach on the machine).
//   gla_scan/<backend>/f32/T       sequential scan over T tokens (B = 1, final state written)
//   gla_chunkC/<backend>/f32/T     chunked form with chunk size C, same work
// Scan and chunked are judged against the FMA peak with the same FLOP count, 4*K*V per token (the
// recurrence's multiply-adds), so their tokens_per_s and limit_ratio compare directly. The scalar
// reference runs the smallest sizes side by side.
#include <algorithm>
#include <cmath>
#include <vector>

#include "bench_support.hpp"
#include "limits.hpp"
#include "rodimus/backend/cpu/gla.hpp"

using namespace rodimus;
using namespace rodimus::bench;

namespace {

constexpr index_t kK = 64, kV = 4096;

template <class Backend, class Act> void gla_decode_bench(benchmark::State& st) {
  const index_t B = st.range(0);
  const index_t state_elems = kK * kV;
  const index_t P = index_t(kArenaBytes / sizeof(float)) / state_elems; // states in the pool
  float* pool_states = arena().as<float>();
  std::fill(pool_states, pool_states + P * state_elems, 0.0f);
  auto q = filled<Act>(std::size_t(B * kK), -1, 1, 1);
  auto k = filled<float>(std::size_t(B * kK), -0.2f, 0.2f, 2);
  auto g = filled<float>(std::size_t(B * kK), -0.1f, -0.001f, 3);
  auto v = filled<Act>(std::size_t(B * kV), -1, 1, 4);
  std::vector<Act> o(std::size_t(B * kV));
  std::vector<std::int32_t> slot(static_cast<std::size_t>(B));
  gla_decode_args<Act, float, float> a;
  a.q = make_view<const Act>(q.data(), B, 1, kK);
  a.k = make_view<const float>(k.data(), B, 1, kK);
  a.v = make_view<const Act>(v.data(), B, 1, kV);
  a.g = make_view<const float>(g.data(), B, 1, kK);
  a.o = make_view(o.data(), B, 1, kV);
  a.state = make_view(pool_states, P, 1, kK, kV);
  a.slot = slot.data();
  a.scale = 0.125f;
  const Backend be = backend_traits<Backend>::make();
  if (!runs_own_kernel(st, be, a)) return;
  byte_workspace ws(gla_decode_workspace_bytes(be, a));
  index_t next = 0;
  for (auto _ : st) {
    for (index_t b = 0; b < B; ++b)
      slot[std::size_t(b)] = std::int32_t((next + b) % P);
    next = (next + B) % P;
    if (!gla_decode(be, a, ws.get()).ok()) st.SkipWithError("gla_decode failed");
  }
  const double bytes =
      double(B) * (2.0 * double(state_elems) * 4 + 2.0 * kV * sizeof(Act) + 3.0 * kK * 4);
  report(st, double(B), bytes, double(B) * 4.0 * kK * kV, bound::read_write);
  // The same bytes per call as plain in-place streams, after the timed loop (not timed).
  const int calls = int(std::clamp<benchmark::IterationCount>(st.iterations(), 20, 200));
  using C = benchmark::Counter;
  st.counters["stream_ratio"] =
      C(bytes * double(st.iterations()) / read_write_rate_per_call(std::size_t(bytes / 2), calls),
        C::kIsRate);
}

template <class Backend, int Chunk> void gla_prefill_bench(benchmark::State& st) {
  const index_t T = st.range(0);
  auto q = filled<float>(std::size_t(T * kK), -1, 1, 5);
  auto k = filled<float>(std::size_t(T * kK), -0.2f, 0.2f, 6);
  auto g = filled<float>(std::size_t(T * kK), -0.1f, -0.001f, 7);
  auto v = filled<float>(std::size_t(T * kV), -1, 1, 8);
  std::vector<float> o(std::size_t(T * kV)), sf(std::size_t(kK * kV));
  gla_args<float> a;
  a.q = make_view<const float>(q.data(), 1, 1, T, kK);
  a.k = make_view<const float>(k.data(), 1, 1, T, kK);
  a.v = make_view<const float>(v.data(), 1, 1, T, kV);
  a.g = make_view<const float>(g.data(), 1, 1, T, kK);
  a.o = make_view(o.data(), 1, 1, T, kV);
  a.final_state = make_view(sf.data(), 1, 1, kK, kV);
  a.scale = 0.125f;
  const Backend be = backend_traits<Backend>::make();
  if (!runs_own_kernel(st, be, a)) return;
  byte_workspace ws(Chunk ? gla_chunked_workspace_bytes(be, a, Chunk)
                          : gla_scan_workspace_bytes(be, a));
  auto run = [&] {
    const status s = Chunk ? gla_chunked(be, a, Chunk, ws.get()) : gla_scan(be, a, ws.get());
    if (!s.ok()) st.SkipWithError("gla failed");
  };
  run(); // untimed: the first call faults in the output's pages (slow on this VM, ~0.1 s at T=4096)
  for (auto _ : st)
    run();
  const double bytes = double(T) * (3.0 * kK * 4 + 2.0 * kV * 4) + 4.0 * kK * kV;
  report(st, double(T), bytes, double(T) * 4.0 * kK * kV, bound::compute);
}

template <class Backend> void register_backend(bool scalar) {
  const std::string be = backend_traits<Backend>::name();
  auto* d32 = benchmark::RegisterBenchmark(("gla_decode/" + be + "/f32").c_str(),
                                           gla_decode_bench<Backend, float>);
  auto* d16 = benchmark::RegisterBenchmark(("gla_decode/" + be + "/bf16").c_str(),
                                           gla_decode_bench<Backend, bf16>);
  auto* scan = benchmark::RegisterBenchmark(("gla_scan/" + be + "/f32").c_str(),
                                            gla_prefill_bench<Backend, 0>);
  for (auto* b : {d32, d16, scan})
    b->UseRealTime()->Unit(benchmark::kMicrosecond);
  if (scalar) {
    d32->Arg(1);
    d16->Arg(1);
    scan->Arg(64);
    return;
  }
  for (index_t B : {1, 4, 16, 64}) {
    d32->Arg(B);
    d16->Arg(B);
  }
  for (index_t T : {64, 256, 1024, 4096})
    scan->Arg(T);
  auto* c16 = benchmark::RegisterBenchmark(("gla_chunk16/" + be + "/f32").c_str(),
                                           gla_prefill_bench<Backend, 16>);
  auto* c32 = benchmark::RegisterBenchmark(("gla_chunk32/" + be + "/f32").c_str(),
                                           gla_prefill_bench<Backend, 32>);
  auto* c64 = benchmark::RegisterBenchmark(("gla_chunk64/" + be + "/f32").c_str(),
                                           gla_prefill_bench<Backend, 64>);
  for (auto* b : {c16, c32, c64}) {
    b->UseRealTime()->Unit(benchmark::kMicrosecond);
    for (index_t T : {64, 256, 1024, 4096})
      b->Arg(T);
  }
}

} // namespace

RODIMUS_BENCH_MAIN()
