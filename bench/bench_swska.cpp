// Shared-key sliding-window attention prefill benchmarks, released Rodimus+ shape (16 query
// heads, 1 key head, 16 value heads, D = 128, window_left 2048 = window 4096 / 2):
//   swska_prefill/<backend>/<act>/T   one sequence of T tokens (B = 1, no history)
// Judged against the FMA peak with FLOPs = 4 * D * Hq per (query, visible key) pair (2 D for the
// score, 2 D for the weighted value; exp and max not counted), so tokens_per_s and limit_ratio
// compare across backends. The scalar reference (double arithmetic) runs the small sizes side
// by side; T = 64 is the case the smoke filter selects.
#include <algorithm>
#include <vector>

#include "limits.hpp"
#include "rodimus/backend/cpu/swska.hpp"

using namespace rodimus;
using namespace rodimus::bench;

namespace {

constexpr index_t kHq = 16, kHk = 1, kHv = 16, kD = 128;
constexpr int kWindowLeft = 2048;

template <class T> std::vector<T> filled(std::size_t n, float lo, float hi, std::uint32_t seed) {
  std::vector<T> v(n);
  std::uint32_t s = seed * 2654435761u + 1;
  for (auto& x : v) {
    s = s * 1664525u + 1013904223u;
    x = store_as<T>(lo + (hi - lo) * float(s >> 8) * (1.0f / 16777216.0f));
  }
  return v;
}

struct byte_workspace {
  std::vector<std::uint64_t> storage;
  explicit byte_workspace(std::size_t bytes) : storage(bytes / 8 + 64) {}
  workspace get() { return workspace{storage.data(), storage.size() * 8, 0}; }
};

/// (query, visible key) pairs of one sequence of T tokens.
double visible_pairs(index_t T) {
  double n = 0;
  for (index_t p = 0; p < T; ++p)
    n += double(std::min<index_t>(p, kWindowLeft) + 1);
  return n;
}

template <class Backend, class Act> void swska_prefill_bench(benchmark::State& st) {
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
  const Backend be = backend_traits<Backend>::make();
  byte_workspace ws(swska_prefill_workspace_bytes(be, a));
  for (auto _ : st) {
    if (!swska_prefill(be, a, ws.get()).ok()) st.SkipWithError("swska_prefill failed");
  }
  const double bytes = double(T) * double(2 * kHq + kHk + kHv) * kD * double(sizeof(Act));
  report(st, double(T), bytes, visible_pairs(T) * 4.0 * kD * kHq, bound::compute);
}

template <class Backend> void register_backend(bool scalar) {
  const std::string be = backend_traits<Backend>::name();
  auto* f32 = benchmark::RegisterBenchmark(("swska_prefill/" + be + "/f32").c_str(),
                                           swska_prefill_bench<Backend, float>);
  auto* h16 = benchmark::RegisterBenchmark(("swska_prefill/" + be + "/bf16").c_str(),
                                           swska_prefill_bench<Backend, bf16>);
  for (auto* b : {f32, h16})
    b->UseRealTime()->Unit(benchmark::kMillisecond);
  if (scalar) {
    f32->Arg(64)->Arg(256);
    h16->Arg(64);
    return;
  }
  f32->Arg(64)->Arg(256)->Arg(1024);
  h16->Arg(64)->Arg(1024);
}

template <class... Archs> void register_all() {
  register_backend<scalar>(true);
  (register_backend<cpu<Archs>>(false), ...);
}

} // namespace

int main(int argc, char** argv) {
  return run_main(argc, argv, [] { register_all<RODIMUS_BENCH_SIMD_ARCHS>(); });
}
