// A small fixed-size thread pool for the CPU backend: `parallel_for` splits an index range into
// contiguous chunks (a few per participant) that the calling thread and the workers claim in
// order, and returns when every chunk is done. A worker that wakes after the caller has claimed
// every chunk does not join, so the caller never waits for a descheduled worker. Header-only, no
// allocation per call, nothing thrown from parallel_for. At most max_threads (1024) participants;
// a thread the system cannot start is a rodimus::error, after the started ones are joined.
//
//   thread_pool pool(2);                       // 2 participants: the caller + 1 worker
//   pool.parallel_for(0, n, [&](index_t lo, index_t hi) { ... });
//
// A parallel_for issued from inside a running parallel_for (or while another thread holds the
// pool) runs inline on the calling thread, so kernels may nest without deadlock.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <typeinfo>
#include <utility>
#include <vector>

#include "rodimus/backend/cpu/call_profile.hpp"
#include "rodimus/core/error.hpp"
#include "rodimus/core/tensor_view.hpp"

namespace rodimus {

class thread_pool {
public:
  /// The most participants a pool takes: far more than any machine this library targets has
  /// cores, and few enough that a mistyped count (100000) is refused before it exhausts the
  /// system's processes.
  static constexpr int max_threads = 1024;

  /// Starts one worker thread running `body` (std::thread's constructor unless a test wants thread
  /// creation to fail); throws std::system_error when the system cannot start another thread.
  using thread_starter = std::thread (*)(std::function<void()> body);

  /// `threads` participants including the caller; 0 (or less) means
  /// std::thread::hardware_concurrency(). Throws rodimus::error when `threads` exceeds max_threads
  /// or a thread cannot be started (the workers already started are stopped and joined first).
  explicit thread_pool(int threads = 0, thread_starter start = &start_thread) {
    if (threads <= 0) threads = int(std::max(1u, std::thread::hardware_concurrency()));
    if (threads > max_threads)
      throw error("thread_pool: " + std::to_string(threads) + " threads is more than the " +
                  std::to_string(max_threads) + " a pool takes");
    size_ = threads;
    workers_.reserve(std::size_t(threads - 1));
    for (int i = 1; i < threads; ++i) {
      try {
        workers_.push_back(start([this] { worker_loop(); }));
      } catch (const std::exception& e) {
        stop_workers(); // they wait on wake_: a destroyed condition variable would hang them
        throw error("thread_pool: cannot start thread " + std::to_string(i + 1) + " of " +
                    std::to_string(threads) + ": " + e.what());
      }
    }
  }
  thread_pool(const thread_pool&) = delete;
  thread_pool& operator=(const thread_pool&) = delete;
  ~thread_pool() { stop_workers(); }

  /// Number of participants (workers + the calling thread).
  int size() const noexcept { return size_; }

  /// Times every outermost parallel_for into `p` from now on (nullptr: stop); see
  /// call_profile.hpp. Not while a parallel_for runs.
  void set_profile(call_profile* p) noexcept { profile_ = p; }

  /// Run f(lo, hi) over [begin, end) split into contiguous chunks of at least `grain` indices
  /// (at most kChunksPerThread per participant), which the participants claim in order from a
  /// shared counter. f must not throw.
  template <class F> void parallel_for(index_t begin, index_t end, index_t grain, F&& f) noexcept {
    if (profile_ != nullptr && !inside_pool() && !inside_profiled_call()) { // outermost
      const auto t0 = std::chrono::steady_clock::now();
      inside_profiled_call() = true;
      run_parallel(begin, end, grain, f);
      inside_profiled_call() = false;
      const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
          std::chrono::steady_clock::now() - t0);
      profile_->add(typeid(F), std::uint64_t(ns.count()));
      return;
    }
    run_parallel(begin, end, grain, f);
  }

  /// parallel_for with grain 1.
  template <class F> void parallel_for(index_t begin, index_t end, F&& f) noexcept {
    parallel_for(begin, end, 1, static_cast<F&&>(f));
  }

private:
  /// Whether this thread is inside a parallel_for that a call_profile times (a nested call, run
  /// inline or on a worker as part of it, is not timed again).
  static bool& inside_profiled_call() noexcept {
    thread_local bool inside = false;
    return inside;
  }

  template <class F> void run_parallel(index_t begin, index_t end, index_t grain, F& f) noexcept {
    const index_t n = end - begin;
    if (n <= 0) return;
    grain = std::max<index_t>(grain, 1);
    const index_t most = n / grain; // chunks of >= grain indices each
    if (size_ <= 1 || most <= 1 || inside_pool() || !call_mutex_.try_lock()) {
      f(begin, end);
      return;
    }
    struct context {
      F* f;
      index_t begin, n, chunks;
      std::atomic<index_t> next{0};
    } ctx{&f, begin, n, std::min<index_t>(most, index_t(size_) * kChunksPerThread)};
    auto run = [](void* p) noexcept {
      auto* c = static_cast<context*>(p);
      for (;;) {
        const index_t i = c->next.fetch_add(1, std::memory_order_relaxed);
        if (i >= c->chunks) return;
        (*c->f)(c->begin + c->n * i / c->chunks, c->begin + c->n * (i + 1) / c->chunks);
      }
    };
    bool notify = false;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      task_ = run;
      task_ctx_ = &ctx;
      finished_.store(0, std::memory_order_relaxed);
      const std::uint64_t g = generation_.load(std::memory_order_relaxed) + 1;
      gate_.store(g << kGateShift, std::memory_order_relaxed);
      generation_.store(g, std::memory_order_release);
      notify = sleepers_ > 0;
    }
    if (notify) wake_.notify_all();
    inside_pool() = true;
    run(&ctx);
    inside_pool() = false;
    // Close the call: workers that have not joined yet never touch ctx; wait for those that did
    // (they are running their last chunk): spin, then yield, then sleep. A worker signals done_
    // only while caller_asleep_ is set (set before the last check of finished_: seq_cst on both
    // sides, so either the caller sees the last count or the worker sees the flag).
    const int joined = int(gate_.fetch_or(kGateClosed, std::memory_order_acq_rel) & kGateCount);
    for (int spin = 0; finished_.load(std::memory_order_acquire) != joined; ++spin) {
      if (spin < kSpinPauses) {
        cpu_relax();
      } else if (spin < kSpinPauses + kSpinYields) {
        std::this_thread::yield();
      } else {
        std::unique_lock<std::mutex> lock(mutex_);
        caller_asleep_.store(true, std::memory_order_seq_cst);
        done_.wait(lock, [&] { return finished_.load(std::memory_order_seq_cst) == joined; });
        caller_asleep_.store(false, std::memory_order_relaxed);
        break;
      }
    }
    call_mutex_.unlock();
  }

  // A few chunks per participant: a participant that the OS deschedules (the machine is often
  // shared) leaves its share to the others instead of stalling the call.
  static constexpr index_t kChunksPerThread = 16;
  // The caller's wait for the workers still on their last chunk: pauses, then yields, then sleep.
  static constexpr int kSpinPauses = 2048;
  static constexpr int kSpinYields = 4096;
  // gate_: the call's generation << kGateShift | closed bit | number of workers that joined.
  static constexpr int kGateShift = 20;
  static constexpr std::uint64_t kGateClosed = std::uint64_t(1) << (kGateShift - 1);
  static constexpr std::uint64_t kGateCount = kGateClosed - 1;

  static std::thread start_thread(std::function<void()> body) {
    return std::thread(std::move(body));
  }

  /// Wake every worker to stop, and join them.
  void stop_workers() noexcept {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    for (auto& w : workers_)
      w.join();
    workers_.clear();
  }

  static bool& inside_pool() noexcept {
    static thread_local bool inside = false;
    return inside;
  }

  /// A pause in a spin-wait loop (x86: the PAUSE instruction; elsewhere nothing).
  static void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
  }

  void worker_loop() {
    inside_pool() = true;
    std::uint64_t seen = 0;
    for (;;) {
      // Poll for a short while before sleeping: back-to-back kernel calls (a decode step runs a
      // few tens of microseconds) then skip the wake-up latency of the condition variable, and
      // a worker that sees the new call joins without taking mutex_ (15 workers queueing on one
      // mutex for every call cost more than the work of many decode-step calls on 16 cores).
      const auto poll_until = std::chrono::steady_clock::now() + std::chrono::microseconds(200);
      std::uint64_t g = generation_.load(std::memory_order_acquire);
      for (int spin = 0; g == seen; ++spin) {
        if (spin % 64 == 63) {
          if (std::chrono::steady_clock::now() >= poll_until) break;
          std::this_thread::yield();
        } else {
          cpu_relax();
        }
        g = generation_.load(std::memory_order_acquire);
      }
      if (g == seen) {
        std::unique_lock<std::mutex> lock(mutex_);
        ++sleepers_;
        wake_.wait(lock,
                   [&] { return stop_ || generation_.load(std::memory_order_relaxed) != seen; });
        --sleepers_;
        if (stop_) return;
        g = generation_.load(std::memory_order_acquire);
      }
      seen = g;
      // Join the call unless it is already closed (or a newer one has started).
      std::uint64_t gate = gate_.load(std::memory_order_acquire);
      bool joined = false;
      while ((gate >> kGateShift) == seen && !(gate & kGateClosed)) {
        if (gate_.compare_exchange_weak(gate, gate + 1, std::memory_order_acq_rel)) {
          joined = true;
          break;
        }
      }
      if (!joined) continue;
      // Joined call `seen` is open until this worker counts itself finished, so its task (written
      // before generation_ was released) cannot change under us.
      task_(task_ctx_);
      finished_.fetch_add(1, std::memory_order_seq_cst);
      if (caller_asleep_.load(std::memory_order_seq_cst)) {
        { std::lock_guard<std::mutex> lock(mutex_); }
        done_.notify_all();
      }
    }
  }

  int size_ = 1;
  std::vector<std::thread> workers_;
  std::mutex call_mutex_;           // one parallel_for at a time
  call_profile* profile_ = nullptr; // set_profile
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  std::atomic<std::uint64_t> generation_{0};
  std::atomic<std::uint64_t> gate_{0};
  std::atomic<int> finished_{0};
  std::atomic<bool> caller_asleep_{false}; // the caller waits on done_
  int sleepers_ = 0;                       // guarded by mutex_
  bool stop_ = false;
  void (*task_)(void*) noexcept = nullptr;
  void* task_ctx_ = nullptr;
};

/// Run f over [begin, end) on `pool`, or inline when pool is null.
template <class F>
void parallel_for(thread_pool* pool, index_t begin, index_t end, index_t grain, F&& f) noexcept {
  if (pool) {
    pool->parallel_for(begin, end, grain, static_cast<F&&>(f));
  } else if (begin < end) {
    f(begin, end);
  }
}

} // namespace rodimus
