// Machine-limit probes and shared helpers of the CPU benchmark binaries.
//
// Every binary measures, in the same run as its benchmarks and with the same thread pool:
//   read        bytes/s of a streaming read of a 256 MiB buffer (sum of every f32)
//   read_write  bytes/s (read + written) of an in-place stream x = a*x + b over 256 MiB
//   fma         FLOP/s of independent f32 FMA chains (16 vectors per thread, 2 FLOP per lane)
// Each is the best of several repetitions, measured once at start-up (the machine is shared:
// bandwidth drops 2-3x when others compile, so ratios are only meaningful within one run). The
// limits go into the JSON context and are reported as benchmarks of their own ("limit/...").
//
// Every benchmark reports tokens_per_s, bytes_per_s, flop_per_s and limit_ratio = its achieved
// rate / the limit it is judged against (bytes for memory-bound work, FLOPs for compute-bound).
// Benchmarks judged against bandwidth keep their working set far beyond the last-level cache
// (arena(): 256 MiB that benchmarks rotate through).
#pragma once

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "rodimus/backend/cpu/cpu.hpp"
#include "rodimus/backend/cpu/simd.hpp"

namespace rodimus::bench {

using default_arch = xsimd::default_arch;

/// The pool every benchmark and probe runs on: one participant per hardware thread.
inline thread_pool& pool() {
  static thread_pool p;
  return p;
}

/// 64-byte-aligned, zero-filled (and so touched) memory that lives for the whole run.
struct buffer {
  std::unique_ptr<unsigned char[]> storage;
  unsigned char* data = nullptr;
  std::size_t bytes = 0;
  explicit buffer(std::size_t n) : storage(new unsigned char[n + 64]()), bytes(n) {
    data = storage.get() + (64 - reinterpret_cast<std::uintptr_t>(storage.get()) % 64) % 64;
  }
  template <class T> T* as() const { return reinterpret_cast<T*>(data); }
};

constexpr std::size_t kArenaBytes = std::size_t(256) << 20;

/// A 256 MiB arena shared by the bandwidth probes and the benchmarks that rotate through it.
inline buffer& arena() {
  static buffer b(kArenaBytes);
  return b;
}

struct machine_limits {
  double read_bytes_per_s = 0;
  double read_write_bytes_per_s = 0;
  double fma_flop_per_s = 0;
};

namespace detail {

template <class F> double best_seconds(int reps, F&& f) {
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    const auto t1 = std::chrono::steady_clock::now();
    best = std::min(best, std::chrono::duration<double>(t1 - t0).count());
  }
  return best;
}

inline double probe_read(thread_pool& p) {
  using B = xsimd::batch<float, default_arch>;
  constexpr std::size_t W = B::size;
  const float* x = arena().as<float>();
  const index_t n = index_t(kArenaBytes / sizeof(float) / (4 * W)); // groups of 4 vectors
  float sink = 0;
  const double s = best_seconds(5, [&] {
    float parts[64] = {};
    p.parallel_for(0, n, 1024, [&](index_t lo, index_t hi) {
      B a0(0.0f), a1(0.0f), a2(0.0f), a3(0.0f);
      for (index_t i = lo; i < hi; ++i) {
        const float* q = x + std::size_t(i) * 4 * W;
        a0 += B::load_aligned(q);
        a1 += B::load_aligned(q + W);
        a2 += B::load_aligned(q + 2 * W);
        a3 += B::load_aligned(q + 3 * W);
      }
      parts[(lo * 63) / n] = xsimd::hadd(a0 + a1 + a2 + a3);
    });
    for (float v : parts)
      sink += v;
  });
  benchmark::DoNotOptimize(sink);
  return double(kArenaBytes) / s;
}

inline double probe_read_write(thread_pool& p) {
  using B = xsimd::batch<float, default_arch>;
  constexpr std::size_t W = B::size;
  float* x = arena().as<float>();
  const index_t n = index_t(kArenaBytes / sizeof(float) / W);
  const double s = best_seconds(5, [&] {
    p.parallel_for(0, n, 4096, [&](index_t lo, index_t hi) {
      const B a(0.5f), b(0.0f); // x stays 0: no denormals, no growth
      for (index_t i = lo; i < hi; ++i) {
        float* q = x + std::size_t(i) * W;
        xsimd::fma(a, B::load_aligned(q), b).store_aligned(q);
      }
    });
  });
  benchmark::ClobberMemory();
  return 2.0 * double(kArenaBytes) / s;
}

inline double probe_fma(thread_pool& p) {
  using B = xsimd::batch<float, default_arch>;
  constexpr int chains = 16;
  constexpr index_t iters = 2'000'000;
  float sink = 0;
  const double s = best_seconds(5, [&] {
    float parts[64] = {};
    p.parallel_for(0, p.size(), 1, [&](index_t lo, index_t hi) {
      for (index_t w = lo; w < hi; ++w) {
        B acc[chains];
        for (int c = 0; c < chains; ++c)
          acc[c] = B(float(c + w) * 1e-3f);
        const B m(0.999999f), a(1e-7f);
        for (index_t i = 0; i < iters; ++i) {
          for (int c = 0; c < chains; ++c)
            acc[c] = xsimd::fma(acc[c], m, a);
        }
        B t(0.0f);
        for (int c = 0; c < chains; ++c)
          t += acc[c];
        parts[w % 64] = xsimd::hadd(t);
      }
    });
    for (float v : parts)
      sink += v;
  });
  benchmark::DoNotOptimize(sink);
  return 2.0 * double(B::size) * chains * double(iters) * p.size() / s;
}

} // namespace detail

/// Measured once per run (at first use), with pool().
inline const machine_limits& limits() {
  static const machine_limits l = [] {
    machine_limits m;
    m.read_bytes_per_s = detail::probe_read(pool());
    m.read_write_bytes_per_s = detail::probe_read_write(pool());
    m.fma_flop_per_s = detail::probe_fma(pool());
    return m;
  }();
  return l;
}

enum class bound { read, read_write, compute };

/// Counters of one benchmark: per-iteration tokens, bytes and FLOPs, and the limit it is judged by.
inline void report(benchmark::State& st, double tokens, double bytes, double flops, bound b) {
  const double it = double(st.iterations());
  using C = benchmark::Counter;
  st.counters["tokens_per_s"] = C(tokens * it, C::kIsRate);
  st.counters["bytes_per_s"] = C(bytes * it, C::kIsRate);
  st.counters["flop_per_s"] = C(flops * it, C::kIsRate);
  const machine_limits& l = limits();
  const double limit = b == bound::read         ? l.read_bytes_per_s
                       : b == bound::read_write ? l.read_write_bytes_per_s
                                                : l.fma_flop_per_s;
  const double amount = b == bound::compute ? flops : bytes;
  st.counters["limit_ratio"] = C(amount * it / limit, C::kIsRate);
  st.SetLabel(b == bound::read         ? "vs read bandwidth"
              : b == bound::read_write ? "vs read+write bandwidth"
                                       : "vs FMA peak");
}

/// Registers the limits as benchmarks ("limit/read" ...) so they appear in the JSON next to the
/// benchmarks judged against them.
inline void register_limit_benchmarks() {
  benchmark::RegisterBenchmark("limit/read", [](benchmark::State& st) {
    for (auto _ : st)
      benchmark::DoNotOptimize(limits().read_bytes_per_s);
    st.counters["bytes_per_s"] = limits().read_bytes_per_s;
  })->Iterations(1);
  benchmark::RegisterBenchmark("limit/read_write", [](benchmark::State& st) {
    for (auto _ : st)
      benchmark::DoNotOptimize(limits().read_write_bytes_per_s);
    st.counters["bytes_per_s"] = limits().read_write_bytes_per_s;
  })->Iterations(1);
  benchmark::RegisterBenchmark("limit/fma", [](benchmark::State& st) {
    for (auto _ : st)
      benchmark::DoNotOptimize(limits().fma_flop_per_s);
    st.counters["flop_per_s"] = limits().fma_flop_per_s;
  })->Iterations(1);
}

/// main() of a benchmark binary: measure the limits, put them in the context, run `reg()`'s
/// benchmarks.
template <class Register> int run_main(int argc, char** argv, Register&& reg) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  const machine_limits& l = limits();
  benchmark::AddCustomContext("read_bandwidth_bytes_per_s", std::to_string(l.read_bytes_per_s));
  benchmark::AddCustomContext("read_write_bandwidth_bytes_per_s",
                              std::to_string(l.read_write_bytes_per_s));
  benchmark::AddCustomContext("fma_peak_flop_per_s", std::to_string(l.fma_flop_per_s));
  benchmark::AddCustomContext("simd_arch", default_arch::name());
  benchmark::AddCustomContext("threads", std::to_string(pool().size()));
  register_limit_benchmarks();
  reg();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

/// The backends benchmarked side by side: the scalar reference and cpu<Arch> per instruction set.
template <class Backend> struct backend_traits {
  static std::string name() { return "scalar"; }
  static Backend make() { return Backend{}; }
};
template <class Arch> struct backend_traits<cpu<Arch>> {
  static std::string name() {
    const std::string n = Arch::name();
    return n == "avx512bw" ? "avx512" : n == "fma3+avx2" ? "avx2" : n;
  }
  static cpu<Arch> make() { return cpu<Arch>{&pool()}; }
};

/// Register `f<Backend>` for scalar and every SIMD arch this build targets, named by
/// `name(backend)`.
#if XSIMD_WITH_AVX512BW
#define RODIMUS_BENCH_SIMD_ARCHS xsimd::avx512bw, xsimd::fma3<xsimd::avx2>
#else
#define RODIMUS_BENCH_SIMD_ARCHS xsimd::default_arch
#endif

} // namespace rodimus::bench
