// thread_pool::parallel_for: every index of every call is run exactly once, in contiguous chunks
// of at least `grain` (except the last), with workers polling, asleep, or waking while the caller
// has already taken every chunk; nested calls run inline; a call returns only after every chunk
// it handed out has finished (the counts are read right after the call, without a barrier).
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "test_cpu_support.hpp"

using namespace rodimus;

namespace {

void check_calls(thread_pool& pool, int calls, bool idle_between) {
  auto g = test::rng(std::uint64_t(calls) * 31 + idle_between);
  std::uniform_int_distribution<index_t> size(0, 5000), grain(1, 300);
  std::vector<std::atomic<int>> hits(5000);
  for (int c = 0; c < calls; ++c) {
    const index_t n = size(g), gr = grain(g), begin = c % 7;
    for (index_t i = 0; i < n; ++i)
      hits[std::size_t(i)].store(0, std::memory_order_relaxed);
    std::atomic<int> bad_chunk{0};
    pool.parallel_for(begin, begin + n, gr, [&](index_t lo, index_t hi) {
      if (lo >= hi || (hi - lo < gr && hi != begin + n)) bad_chunk.fetch_add(1);
      for (index_t i = lo; i < hi; ++i)
        hits[std::size_t(i - begin)].fetch_add(1, std::memory_order_relaxed);
    });
    int wrong = 0;
    for (index_t i = 0; i < n; ++i)
      wrong += hits[std::size_t(i)].load(std::memory_order_relaxed) != 1;
    REQUIRE(wrong == 0);
    REQUIRE(bad_chunk.load() == 0);
    if (idle_between && c % 5 == 0) std::this_thread::sleep_for(std::chrono::microseconds(300));
  }
}

} // namespace

TEST_CASE("thread_pool runs every index exactly once") {
  for (int threads : {1, 2, 3}) {
    CAPTURE(threads);
    thread_pool pool(threads);
    check_calls(pool, 400, false); // back to back: workers polling
    check_calls(pool, 60, true);   // with pauses: workers asleep, woken by the call
  }
}

TEST_CASE("thread_pool nested parallel_for runs inline and covers its range") {
  thread_pool pool(2);
  std::vector<std::atomic<int>> hits(64 * 64);
  pool.parallel_for(0, 64, 1, [&](index_t lo, index_t hi) {
    for (index_t i = lo; i < hi; ++i)
      pool.parallel_for(0, 64, 1, [&](index_t l2, index_t h2) {
        for (index_t j = l2; j < h2; ++j)
          hits[std::size_t(i * 64 + j)].fetch_add(1);
      });
  });
  int wrong = 0;
  for (auto& h : hits)
    wrong += h.load() != 1;
  CHECK(wrong == 0);
}
