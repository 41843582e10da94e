// A small fixed-size thread pool for the CPU backend: `parallel_for` splits an index range into
// contiguous blocks, one per participant (the calling thread takes the first block), and returns
// when every block is done. Header-only, no allocation per call, nothing thrown from parallel_for.
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
#include <mutex>
#include <thread>
#include <vector>

#include "rodimus/core/tensor_view.hpp"

namespace rodimus {

class thread_pool {
public:
  /// `threads` participants including the caller; 0 means std::thread::hardware_concurrency().
  explicit thread_pool(int threads = 0) {
    if (threads <= 0) threads = int(std::max(1u, std::thread::hardware_concurrency()));
    size_ = threads;
    workers_.reserve(std::size_t(threads - 1));
    for (int i = 1; i < threads; ++i)
      workers_.emplace_back([this, i] { worker_loop(i); });
  }
  thread_pool(const thread_pool&) = delete;
  thread_pool& operator=(const thread_pool&) = delete;
  ~thread_pool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    for (auto& w : workers_)
      w.join();
  }

  /// Number of participants (workers + the calling thread).
  int size() const noexcept { return size_; }

  /// Run f(lo, hi) over [begin, end) split into at most size() contiguous blocks of at least
  /// `grain` indices each. f must not throw.
  template <class F> void parallel_for(index_t begin, index_t end, index_t grain, F&& f) noexcept {
    const index_t n = end - begin;
    if (n <= 0) return;
    grain = std::max<index_t>(grain, 1);
    const int parts = int(std::min<index_t>(size_, (n + grain - 1) / grain));
    if (parts <= 1 || inside_pool() || !call_mutex_.try_lock()) {
      f(begin, end);
      return;
    }
    struct context {
      F* f;
      index_t begin, n;
      int parts;
    } ctx{&f, begin, n, parts};
    auto run = [](void* p, int part) noexcept {
      auto* c = static_cast<context*>(p);
      const index_t lo = c->begin + c->n * part / c->parts;
      const index_t hi = c->begin + c->n * (part + 1) / c->parts;
      if (lo < hi) (*c->f)(lo, hi);
    };
    {
      std::lock_guard<std::mutex> lock(mutex_);
      task_ = run;
      task_ctx_ = &ctx;
      task_parts_ = parts;
      pending_.store(parts - 1, std::memory_order_relaxed);
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    inside_pool() = true;
    run(&ctx, 0);
    inside_pool() = false;
    // Wait for the workers: spin briefly (a decode step is microseconds), then sleep.
    for (int spin = 0; pending_.load(std::memory_order_acquire) != 0; ++spin) {
      if (spin < 4096) {
        std::this_thread::yield();
      } else {
        std::unique_lock<std::mutex> lock(mutex_);
        done_.wait(lock, [&] { return pending_.load(std::memory_order_acquire) == 0; });
      }
    }
    call_mutex_.unlock();
  }

  /// parallel_for with grain 1.
  template <class F> void parallel_for(index_t begin, index_t end, F&& f) noexcept {
    parallel_for(begin, end, 1, static_cast<F&&>(f));
  }

private:
  static bool& inside_pool() noexcept {
    static thread_local bool inside = false;
    return inside;
  }

  void worker_loop(int index) {
    inside_pool() = true;
    std::uint64_t seen = 0;
    for (;;) {
      void (*task)(void*, int) noexcept = nullptr;
      void* ctx = nullptr;
      int parts = 0;
      // Poll for a short while before sleeping: back-to-back kernel calls (a decode step runs a
      // few tens of microseconds) then skip the wake-up latency of the condition variable.
      const auto poll_until = std::chrono::steady_clock::now() + std::chrono::microseconds(200);
      while (generation_.load(std::memory_order_acquire) == seen &&
             std::chrono::steady_clock::now() < poll_until)
        std::this_thread::yield();
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock,
                   [&] { return stop_ || generation_.load(std::memory_order_relaxed) != seen; });
        if (stop_) return;
        seen = generation_.load(std::memory_order_relaxed);
        task = task_;
        ctx = task_ctx_;
        parts = task_parts_;
      }
      if (index < parts) {
        task(ctx, index);
        if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
          std::lock_guard<std::mutex> lock(mutex_);
          done_.notify_all();
        }
      }
    }
  }

  int size_ = 1;
  std::vector<std::thread> workers_;
  std::mutex call_mutex_; // one parallel_for at a time
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  std::atomic<std::uint64_t> generation_{0};
  bool stop_ = false;
  void (*task_)(void*, int) noexcept = nullptr;
  void* task_ctx_ = nullptr;
  int task_parts_ = 0;
  std::atomic<int> pending_{0};
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
