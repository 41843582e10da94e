// Shared-key sliding-window attention benchmarks, released Rodimus+ shape (16 query heads, 1 key
// head, 16 value heads, D = 128, window_left 2048 = window 4096 / 2):
//   swska_prefill/<backend>/<act>/T           one sequence of T tokens (B = 1, no history)
//   swska_prefill_history/<backend>/<act>/T   a server continuing a prefill: T new tokens after
//                                             2048 earlier ones whose keys/values sit in the
//                                             sequence's ring (W = window_left + 1 slots), so
//                                             every query sees its full window of 2049 keys
//   swska_decode/<backend>/<act>/B            one decode step for B sequences, each at a position
//                                             past its window (5000 + step, so the ring wraps):
//                                             every call reads all W = 2049 ring positions of
//                                             each row's keys and values
// Prefill is judged against the FMA peak with FLOPs = 4 * D * Hq per (query, visible key) pair
// (2 D for the score, 2 D for the weighted value; exp and max not counted; keys from the ring
// count like the others), so tokens_per_s and limit_ratio compare across backends and cases.
// Decode is judged against the read bandwidth: the ring is read once, B * W * (Hk + Hv) * D
// values, plus q, k, v read and o written (same FLOP count, Hq * W pairs per row). Its rings sit
// in a pool of P slots on huge pages (like a state pool's), P = max(B + 1, ceil(256 MiB / bytes
// of one slot's ring)), so the pool is far beyond the last-level cache, and successive calls
// rotate their B slots through it. The scalar reference (double arithmetic) runs the small sizes
// of swska_prefill and decode at B = 1 (f32, 7-12 ms a call) side by side (not the prefill
// history case: 0.5 s a call at T = 64, too slow for the smoke run); T = 64 and B = 1, 16 are
// the cases the smoke filter selects.
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "bench_support.hpp"
#include "limits.hpp"
#include "rodimus/backend/cpu/huge_page_buffer.hpp"
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
  const std::int32_t slot = 0;
  std::vector<Act> ring_k, ring_v;
  if (History) {
    ring_k = filled<Act>(std::size_t(W * kHk * kD), -1, 1, 4);
    ring_v = filled<Act>(std::size_t(W * kHv * kD), -1, 1, 5);
    a.history_k = make_view<const Act>(ring_k.data(), 1, W, kHk, kD);
    a.history_v = make_view<const Act>(ring_v.data(), 1, W, kHv, kD);
    a.slot = &slot;
    a.history_len = &history_len;
  }
  const Backend be = backend_traits<Backend>::make();
  if (!runs_own_kernel(st, be, a)) return;
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

constexpr index_t kRingPositions = kWindowLeft + 1; // W: the smallest ring of a bounded window
constexpr index_t kMaxDecodeBatch = 16;             // the largest B registered
constexpr std::int64_t kDecodeFirstPosition = 5000; // > window_left: every window is full

/// Ring slots a decode benchmark of B rows rotates through: at least 256 MiB of rings, and one
/// more slot than a call uses.
template <class Act> index_t decode_pool_slots(index_t B) {
  const std::size_t slot_bytes = std::size_t(kRingPositions * (kHk + kHv) * kD) * sizeof(Act);
  return std::max<index_t>(B + 1, index_t((kArenaBytes + slot_bytes - 1) / slot_bytes));
}

/// The ring pool (P, W, Hk, D) keys and (P, W, Hv, D) values shared by the decode benchmarks of
/// one Act, on huge pages like a state pool's rings, allocated and filled once per run (committing
/// this much memory is slow on the build machine; google benchmark calls a benchmark function
/// several times). Every slot holds the same random keys and values: the values do not change
/// the time, the addresses do.
template <class Act> struct decode_rings {
  using ring_vector = std::vector<Act, huge_page_allocator<Act>>;
  static constexpr index_t key_elems = kRingPositions * kHk * kD;   // one slot
  static constexpr index_t value_elems = kRingPositions * kHv * kD; // one slot
  ring_vector k, v;

  static decode_rings& get() {
    static decode_rings r(decode_pool_slots<Act>(kMaxDecodeBatch));
    return r;
  }

private:
  explicit decode_rings(index_t slots)
      : k(std::size_t(slots * key_elems)), v(std::size_t(slots * value_elems)) {
    const auto ks = filled<Act>(std::size_t(key_elems), -1, 1, 6);
    const auto vs = filled<Act>(std::size_t(value_elems), -1, 1, 7);
    for (index_t s = 0; s < slots; ++s) {
      std::copy(ks.begin(), ks.end(), k.begin() + s * key_elems);
      std::copy(vs.begin(), vs.end(), v.begin() + s * value_elems);
    }
  }
};

/// One decode step for B sequences on B distinct ring slots of the pool; successive calls take
/// the next B slots (cyclically) and advance every position by one.
template <class Backend, class Act> void swska_decode_bench(benchmark::State& st) {
  const index_t B = st.range(0);
  const index_t P = decode_pool_slots<Act>(B);
  decode_rings<Act>& rings = decode_rings<Act>::get();
  auto q = filled<Act>(std::size_t(B * kHq * kD), -1, 1, 1);
  auto k = filled<Act>(std::size_t(B * kHk * kD), -1, 1, 2);
  auto v = filled<Act>(std::size_t(B * kHv * kD), -1, 1, 3);
  std::vector<Act> o(std::size_t(B * kHq * kD));
  std::vector<std::int32_t> slot(static_cast<std::size_t>(B));
  std::vector<std::int64_t> position(static_cast<std::size_t>(B), kDecodeFirstPosition);
  swska_decode_args<Act> a;
  a.q = make_view<const Act>(q.data(), B, kHq, kD);
  a.k = make_view<const Act>(k.data(), B, kHk, kD);
  a.v = make_view<const Act>(v.data(), B, kHv, kD);
  a.o = make_view(o.data(), B, kHq, kD);
  a.ring_k = make_view(rings.k.data(), P, kRingPositions, kHk, kD);
  a.ring_v = make_view(rings.v.data(), P, kRingPositions, kHv, kD);
  a.slot = slot.data();
  a.position = position.data();
  a.window_left = kWindowLeft;
  const Backend be = backend_traits<Backend>::make();
  if (!runs_own_kernel(st, be, a)) return;
  byte_workspace ws(swska_decode_workspace_bytes(be, a));
  index_t next = 0;
  auto step = [&] {
    for (index_t b = 0; b < B; ++b)
      slot[std::size_t(b)] = std::int32_t((next + b) % P);
    next = (next + B) % P;
    if (!swska_decode(be, a, ws.get()).ok()) st.SkipWithError("swska_decode failed");
    for (auto& p : position)
      ++p;
  };
  step(); // untimed: the first call faults in the output's and the scores' pages
  for (auto _ : st)
    step();
  // Per row: the window's ring keys/values read once, q, k, v read and o written.
  const double bytes = double(B) *
                       (double(kRingPositions) * double(kHk + kHv) + double(2 * kHq + kHk + kHv)) *
                       kD * double(sizeof(Act));
  report(st, double(B), bytes, double(B) * kHq * double(kRingPositions) * 4.0 * kD, bound::read);
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
  auto* d32 = reg("swska_decode/" + be + "/f32", swska_decode_bench<Backend, float>);
  if (scalar) {
    f32->Arg(64)->Arg(256);
    h16->Arg(64);
    d32->Arg(1)->Unit(benchmark::kMicrosecond);
    return;
  }
  auto* d16 = reg("swska_decode/" + be + "/bf16", swska_decode_bench<Backend, bf16>);
  for (auto* d : {d32, d16}) {
    d->Unit(benchmark::kMicrosecond);
    for (index_t B : {index_t(1), index_t(4), kMaxDecodeBatch})
      d->Arg(B);
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

} // namespace

RODIMUS_BENCH_MAIN()
