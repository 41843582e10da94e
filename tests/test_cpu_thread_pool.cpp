// thread_pool::parallel_for: every index of every call is run exactly once, in contiguous chunks
// of at least `grain` (except the last), with workers polling, asleep, or waking while the caller
// has already taken every chunk; nested calls run inline; a call returns only after every chunk
// it handed out has finished (the counts are read right after the call, without a barrier).
// Construction: at most max_threads participants, and a thread that cannot be started is an
// error that leaves no thread behind. A call_profile counts the outermost calls per functor type
// and their time (nested calls inside their outer one), pauses, clears and names them.
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "support/temp_dir.hpp"
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
  for (int threads : {1, 2, 3, 8}) { // 8: more participants than this machine may have cores
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

// ---- thread creation that fails ----
//
// A pool whose n-th thread cannot be started must join the workers it already started and throw a
// rodimus::error saying so: never hang (workers waiting on a condition variable that is being
// destroyed) nor terminate (a joinable std::thread destroyed). Each case runs in a forked child
// that the parent gives 60 seconds.

namespace {

/// Run `body` in a forked child; its exit code (128 + signal when killed, -1 when it hung).
int run_in_child(const std::function<int()>& body) {
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    int rc = 3;
    try {
      rc = body();
    } catch (...) {
      rc = 4;
    }
    std::_Exit(rc);
  }
  for (int waited_ms = 0; waited_ms < 60000; waited_ms += 10) {
    int st = 0;
    if (::waitpid(pid, &st, WNOHANG) == pid)
      return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  return -1;
}

/// 0 when constructing thread_pool(args...) throws rodimus::error mentioning "thread" and the
/// system's reason `reason`; 1 when it does not throw, 2 when the message is wrong.
template <class... Args> int pool_refuses(const std::string& reason, Args... args) {
  try {
    thread_pool pool(args...);
  } catch (const error& e) {
    const std::string m = e.what();
    return m.find("thread") != std::string::npos && m.find(reason) != std::string::npos ? 0 : 2;
  }
  return 1;
}

std::atomic<int> threads_to_allow{0};

/// A thread starter that fails (as std::thread does when the system is out of threads) once
/// `threads_to_allow` threads have been started.
std::thread start_until_exhausted(std::function<void()> body) {
  if (threads_to_allow.fetch_sub(1) <= 0)
    throw std::system_error(std::make_error_code(std::errc::resource_unavailable_try_again));
  return std::thread(std::move(body));
}

} // namespace

namespace {
void profiled_work_a(thread_pool& pool, std::atomic<long>& sink) {
  pool.parallel_for(0, 64, [&](index_t lo, index_t hi) {
    // A nested call: inline, inside this one's time, not an entry of its own.
    pool.parallel_for(lo, hi, [&](index_t a, index_t b) { sink.fetch_add(long(b - a)); });
    std::this_thread::sleep_for(std::chrono::microseconds(20 * (hi - lo)));
  });
}
void profiled_work_b(thread_pool& pool, std::atomic<long>& sink) {
  pool.parallel_for(0, 1, [&](index_t lo, index_t hi) { sink.fetch_add(long(hi - lo)); });
}
} // namespace

TEST_CASE("thread_pool with a call_profile: calls and time per functor, nested ones inside") {
  for (const int threads : {1, 3}) {
    CAPTURE(threads);
    thread_pool pool(threads);
    call_profile prof;
    pool.set_profile(&prof);
    std::atomic<long> sink{0};
    for (int i = 0; i < 3; ++i)
      profiled_work_a(pool, sink);
    profiled_work_b(pool, sink); // one index: runs inline, still counted
    CHECK(sink.load() == 3 * 64 + 1);
    auto rows = prof.rows();
    REQUIRE(rows.size() == 2);
    CHECK(rows[0].calls == 3); // the outer calls of a only, the most time first
    // The enclosing function names the lambda (GCC: "...::{lambda()#1}", clang: "...::$_0").
    CHECK(rows[0].name.find("profiled_work_a") != std::string::npos);
    CHECK(rows[0].name.find("long") == std::string::npos); // parameter lists elided
    // 3 calls of 64 indices sleeping 20 us each, shared by `threads` participants.
    CHECK(rows[0].seconds >= 3 * 64 * 20e-6 / double(threads) * 0.9);
    CHECK(rows[1].calls == 1);
    CHECK(rows[1].name.find("profiled_work_b") != std::string::npos);
    CHECK(prof.dropped() == 0);
    prof.record(false);
    profiled_work_b(pool, sink);
    CHECK(prof.rows()[1].calls == 1); // paused: not counted
    prof.record(true);
    prof.clear();
    profiled_work_b(pool, sink);
    rows = prof.rows();
    REQUIRE(rows.size() == 1);
    CHECK(rows[0].calls == 1);
    pool.set_profile(nullptr);
    profiled_work_b(pool, sink);
    CHECK(prof.rows()[0].calls == 1); // detached
  }
}

namespace {
template <std::size_t I> struct profile_kind {};
template <std::size_t... I> void add_kinds(call_profile& p, std::index_sequence<I...>) {
  (p.add(typeid(profile_kind<I>), 1), ...);
}
} // namespace

TEST_CASE("call_profile: a full table counts what it drops") {
  call_profile prof;
  // capacity kinds fill the table; each further kind is dropped.
  add_kinds(prof, std::make_index_sequence<call_profile::capacity + 3>{});
  CHECK(prof.rows().size() == call_profile::capacity);
  CHECK(prof.dropped() == 3);
}

TEST_CASE("thread_pool: a thread that cannot be started is an error, not a hang") {
  const std::string reason =
      std::make_error_code(std::errc::resource_unavailable_try_again).message();
  for (const int started : {0, 1, 5}) {
    INFO("threads started before the failure: " << started);
    CHECK(run_in_child([&] {
            threads_to_allow = started;
            return pool_refuses(reason, 8, &start_until_exhausted);
          }) == 0);
  }
}

TEST_CASE("thread_pool: the process limit reached while starting threads is an error") {
  // The real failure: RLIMIT_NPROC. As root the limit applies only after giving up root (to the
  // user nobody, which runs no other process here); as another user it applies at once, at 0.
  CHECK(run_in_child([] {
          if (::geteuid() == 0 && ::setuid(65534) != 0) return 5;
          const rlim_t limit = ::geteuid() == 65534 ? 4 : 0;
          const struct rlimit rl = {limit, limit};
          if (::setrlimit(RLIMIT_NPROC, &rl) != 0) return 6;
          return pool_refuses("", 64);
        }) == 0);
}

TEST_CASE("thread_pool: more than max_threads participants are refused") {
  CHECK(thread_pool::max_threads == 1024);
  test::expect_error([] { thread_pool pool(thread_pool::max_threads + 1); },
                     {"1025", "threads", "1024"});
  test::expect_error([] { thread_pool pool(100000); }, {"100000", "1024"});
}
