// Shared-key sliding-window attention prefill benchmarks, released Rodimus+ shape (16 query
// heads, 1 key head, 16 value heads, D = 128, window_left 2048 = window 4096 / 2):
//   swska_prefill/<backend>/<act>/T           one sequence of T tokens (B = 1, no history)
//   swska_prefill_history/<backend>/<act>/T   a server continuing a prefill: T new tokens after
//                                             2048 earlier ones whose keys/values sit in the
//                                             sequence's ring (W = window_left + 1 slots), so
//                                             every query sees its full window of 2049 keys
// Judged against the FMA peak with FLOPs = 4 * D * Hq per (query, visible key) pair (2 D for the
// score, 2 D for the weighted value; exp and max not counted; keys from the ring count like the
// others), so tokens_per_s and limit_ratio compare across backends and cases. The scalar
// reference (double arithmetic) runs the small sizes of swska_prefill side by side (not the
// history case: 0.5 s a call at T = 64, too slow for the smoke run); T = 64 is the case the smoke
// filter selects.
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "bench_support.hpp"
#include "limits.hpp"
#include "rodimus/backend/cpu/swska.hpp"

using namespace rodimus;
using namespace rodimus::bench;

namespace {

constexpr index_t kHq = 16, kHk = 1, kHv = 16, kD = 128;
constexpr int kWindowLeft = 2048;

/// (query, visible key) pairs of T tokens at absolute positions start .. start + T - 1.
double visible_pairs(index_t start, index_t T) {
  double n = 0;
  for (index_t p = start; p < start + T; ++p)
    n += double(std::min<index_t>(p, kWindowLeft) + 1);
  return n;
}

/// One sequence of T new tokens; with History, after kWindowLeft earlier tokens held in a ring.
template <class Backend, class Act, bool History> void swska_prefill_bench(benchmark::State& st) {
  const index_t T = st.range(0);
  auto q = filled<Act>(std::size_t(T * kHq * kD), -1, 1, 1);
  auto k = filled<Act>(std::size_t(T * kHk * kD), -1, 1, 2);
  auto v = filled<Act>(std::size_t(T * kHv * kD), -1, 1, 3);
  std::vector<Act> o(std::size_t(T * kHq * kD));
  swska_args<Act> a;
  a.q = make_view<const Act>(q.data(), 1, T, kHq, kD);
  a.k = make_view<const Act>(k.data(), 1, T, kHk, kD);
  a.v = make_view<const Act>(v.data(), 1, T, kHv, kD);
  a.o = make_view(o.data(), 1, T, kHq, kD);
  a.window_left = kWindowLeft;
  // The ring of a state pool with one slot: the token at absolute position p is in ring slot
  // p % W; the first new token (position kWindowLeft) reaches back to position 0.
  const index_t W = kWindowLeft + 1;
  const std::int64_t history_len = History ? kWindowLeft : 0;
  const std::int32_t history_slot = 0;
  std::vector<Act> ring_k, ring_v;
  if (History) {
    ring_k = filled<Act>(std::size_t(W * kHk * kD), -1, 1, 4);
    ring_v = filled<Act>(std::size_t(W * kHv * kD), -1, 1, 5);
    a.history_k = make_view<const Act>(ring_k.data(), 1, W, kHk, kD);
    a.history_v = make_view<const Act>(ring_v.data(), 1, W, kHv, kD);
    a.history_slot = &history_slot;
    a.history_len = &history_len;
  }
  const Backend be = backend_traits<Backend>::make();
  byte_workspace ws(swska_prefill_workspace_bytes(be, a));
  auto run = [&] {
    if (!swska_prefill(be, a, ws.get()).ok()) st.SkipWithError("swska_prefill failed");
  };
  run(); // untimed: the first call faults in the output's pages
  for (auto _ : st)
    run();
  // q, k, v read and o written once; with history, the window's ring keys/values read once.
  const double bytes =
      (double(T) * double(2 * kHq + kHk + kHv) + double(history_len) * double(kHk + kHv)) * kD *
      double(sizeof(Act));
  report(st, double(T), bytes, visible_pairs(history_len, T) * 4.0 * kD * kHq, bound::compute);
}

template <class Backend> void register_backend(bool scalar) {
  const std::string be = backend_traits<Backend>::name();
  auto reg = [&](const std::string& name, auto fn) {
    auto* b = benchmark::RegisterBenchmark(name.c_str(), fn);
    b->UseRealTime()->Unit(benchmark::kMillisecond);
    return b;
  };
  auto* f32 = reg("swska_prefill/" + be + "/f32", swska_prefill_bench<Backend, float, false>);
  auto* h16 = reg("swska_prefill/" + be + "/bf16", swska_prefill_bench<Backend, bf16, false>);
  if (scalar) {
    f32->Arg(64)->Arg(256);
    h16->Arg(64);
    return;
  }
  f32->Arg(64)->Arg(256)->Arg(1024);
  h16->Arg(64)->Arg(1024);
  reg("swska_prefill_history/" + be + "/f32", swska_prefill_bench<Backend, float, true>)
      ->Arg(64)
      ->Arg(256);
  reg("swska_prefill_history/" + be + "/bf16", swska_prefill_bench<Backend, bf16, true>)
      ->Arg(64)
      ->Arg(256);
}

template <class... Archs> void register_all() {
  register_backend<scalar>(true);
  (register_backend<cpu<Archs>>(false), ...);
}

} // namespace

int main(int argc, char** argv) {
  return run_main(argc, argv, [] { register_all<RODIMUS_BENCH_SIMD_ARCHS>(); });
}
