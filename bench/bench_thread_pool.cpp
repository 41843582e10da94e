// The fixed cost of one thread_pool::parallel_for call: batch-1 decode on the CPU makes a few
// hundred calls a token (every kernel of every layer), each only tens of microseconds of work on
// many cores, so waking the workers and waiting for the last of them is part of every token.
//   pool/empty/T:   a call whose chunks do nothing (T participants, 16 chunks each): the pure
//                   wake + join cost (the time per iteration, us).
//   pool/spread/T:  a call over 64 x T items of about 0.25 us each (16 us of work on one thread,
//                   16 / T us ideally): `ideal_us` is the same work timed inline in the same
//                   process divided by T, to compare with the time per iteration.
// T runs over 1, 2, 4, ... up to the hardware threads. Wall time (UseRealTime).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <thread>

#include "rodimus/backend/cpu/thread_pool.hpp"

namespace {

using rodimus::index_t;

/// About `n` x 0.25 us of dependent integer work (not optimised away: the result is kept).
std::uint64_t busy(index_t lo, index_t hi) {
  std::uint64_t s = std::uint64_t(lo);
  for (index_t i = lo; i < hi; ++i)
    for (int r = 0; r < 200; ++r)
      s = s * 6364136223846793005ull + 1442695040888963407ull;
  return s;
}

void empty_call(benchmark::State& st) {
  rodimus::thread_pool pool(int(st.range(0)));
  const index_t n = index_t(st.range(0)) * 16;
  for (auto _ : st)
    pool.parallel_for(0, n, 1, [](index_t, index_t) {});
}

void spread_call(benchmark::State& st) {
  const int threads = int(st.range(0));
  rodimus::thread_pool pool(threads);
  const index_t n = 64 * index_t(threads);
  // The same work inline, timed here, is the ideal's basis: machine speed varies between runs.
  const auto t0 = std::chrono::steady_clock::now();
  benchmark::DoNotOptimize(busy(0, n));
  const double inline_us =
      std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
  for (auto _ : st)
    pool.parallel_for(0, n, 1,
                      [](index_t lo, index_t hi) { benchmark::DoNotOptimize(busy(lo, hi)); });
  st.counters["ideal_us"] = inline_us / threads;
}

void thread_counts(benchmark::internal::Benchmark* b) {
  const int hw = int(std::max(1u, std::thread::hardware_concurrency()));
  for (int t = 1; t < hw; t *= 2)
    b->Arg(t);
  b->Arg(hw);
}

} // namespace

BENCHMARK(empty_call)
    ->Name("pool/empty")
    ->Apply(thread_counts)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(spread_call)
    ->Name("pool/spread")
    ->Apply(thread_counts)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

BENCHMARK_MAIN();
