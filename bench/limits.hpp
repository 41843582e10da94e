// Machine-limit probes and shared helpers of the CPU benchmark binaries.
//
// Every binary measures, in the same run as its benchmarks and with the same thread pool:
//   read        bytes/s of a streaming read of a 256 MiB buffer (sum of every f32; the library's
//               rodimus/backend/cpu/read_probe.hpp, which `rodimus bench` uses too)
//   read_write  bytes/s (read + written) of an in-place stream x = 1*x + 0 over 256 MiB, with
//               software prefetch
//   fma         FLOP/s of independent f32 FMA chains (16 vectors per thread, 2 FLOP per lane)
// Each is the best of several repetitions, measured once at start-up (the machine is shared:
// bandwidth drops 2-3x when others compile, so ratios are only meaningful within one run). The
// limits go into the JSON context and are reported as benchmarks of their own ("limit/...").
//
// Every benchmark reports tokens_per_s, bytes_per_s, flop_per_s and limit_ratio = its achieved
// rate / the limit it is judged against (bytes for memory-bound work, FLOPs for compute-bound).
// Benchmarks judged against bandwidth keep their working set far beyond the last-level cache
// (arena(): 256 MiB on huge pages that benchmarks rotate through).
#pragma once

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <type_traits>

#include "rodimus/backend/cpu/cpu.hpp"
#include "rodimus/backend/cpu/huge_page_buffer.hpp"
#include "rodimus/backend/cpu/prefetch.hpp"
#include "rodimus/backend/cpu/read_probe.hpp"
#include "rodimus/backend/cpu/simd.hpp"

namespace rodimus::bench {

using default_arch = xsimd::default_arch;

/// The pool every benchmark and probe runs on: one participant per hardware thread.
inline thread_pool& pool() {
  static thread_pool p;
  return p;
}

/// Zero-filled (and so committed) memory on huge pages, like the model's weights and state pool,
/// that lives for the whole run.
struct buffer {
  huge_page_buffer memory;
  explicit buffer(std::size_t n) : memory(n, "benchmark arena") {
    std::memset(memory.data(), 0, n);
  }
  template <class T> T* as() { return reinterpret_cast<T*>(memory.data()); }
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
  read_probe<default_arch> probe(kArenaBytes);
  return probe.best(&p, 5);
}

/// x = x * 1 + 0 in place over `bytes` at x (whole vectors): every byte read once and written
/// once, values unchanged. Each line is prefetched for writing 4 KiB ahead, which the build
/// machine streams at 104-111 GB/s against 85-89 without (the decode kernel prefetches too: a
/// limit must not be beatable by a kernel).
inline void stream_in_place(thread_pool& p, float* x, std::size_t bytes) {
  using B = xsimd::batch<float, default_arch>;
  constexpr std::size_t W = B::size;
  p.parallel_for(0, index_t(bytes / sizeof(float) / W), 256, [&](index_t lo, index_t hi) {
    const B one(1.0f), zero(0.0f);
    for (index_t i = lo; i < hi; ++i) {
      float* q = x + std::size_t(i) * W;
      rodimus::detail::prefetch_for_write(q + 4096 / sizeof(float));
      xsimd::fma(one, B::load_aligned(q), zero).store_aligned(q);
    }
  });
  benchmark::ClobberMemory();
}

inline double probe_read_write(thread_pool& p) {
  const double s = best_seconds(5, [&] { stream_in_place(p, arena().as<float>(), kArenaBytes); });
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

/// Bytes/s (read + written) of `calls` back-to-back in-place streams over `region_bytes` each,
/// regions rotating through the arena (so every call starts from memory, not cache), with pool():
/// the rate a kernel that reads and writes region_bytes per call can reach on this machine. Short
/// calls do not reach the 256 MiB probe's rate (each call's streams start cold); decode
/// benchmarks report their rate against this one too (`stream_ratio`).
inline double read_write_rate_per_call(std::size_t region_bytes, int calls) {
  constexpr std::size_t kAlign = 64;
  region_bytes = std::max(kAlign, region_bytes / kAlign * kAlign);
  const std::size_t regions = std::max<std::size_t>(1, kArenaBytes / region_bytes);
  unsigned char* base = arena().as<unsigned char>();
  const auto t0 = std::chrono::steady_clock::now();
  for (int c = 0; c < calls; ++c)
    detail::stream_in_place(
        pool(), reinterpret_cast<float*>(base + std::size_t(c) % regions * region_bytes),
        std::min(region_bytes, kArenaBytes));
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return 2.0 * double(std::min(region_bytes, kArenaBytes)) * calls / s;
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

/// False, with the benchmark marked as an error, when cpu<Arch> would run the scalar reference for
/// `a` instead of its own kernel (falls_back_to_scalar in backend/cpu/X.hpp): a cpu benchmark
/// must never time the fallback. Always true for the scalar backend.
template <class Backend, class Args>
bool runs_own_kernel(benchmark::State& st, const Backend& be, const Args& a) {
  if constexpr (!std::is_same_v<Backend, scalar>) {
    if (falls_back_to_scalar(be, a)) {
      st.SkipWithError("the cpu backend would run the scalar reference for these arguments");
      return false;
    }
  }
  return true;
}

/// The instruction sets this build benchmarks cpu<Arch> for.
#if XSIMD_WITH_AVX512BW
#define RODIMUS_BENCH_SIMD_ARCHS xsimd::avx512bw, xsimd::fma3<xsimd::avx2>
#else
#define RODIMUS_BENCH_SIMD_ARCHS xsimd::default_arch
#endif

template <class T> struct backend_tag { using type = T; };

/// f(backend_tag<scalar>{}), then f(backend_tag<cpu<Arch>>{}) for each Arch: the backends a CPU
/// benchmark binary registers side by side.
template <class... Archs, class F> void for_each_backend(F&& f) {
  f(backend_tag<scalar>{});
  (f(backend_tag<cpu<Archs>>{}), ...);
}

/// The main of a CPU benchmark binary whose file defines `register_backend<Backend>(bool scalar)`:
/// registers the scalar reference and cpu<Arch> for every RODIMUS_BENCH_SIMD_ARCHS, then runs.
#define RODIMUS_BENCH_MAIN()                                                                       \
  int main(int argc, char** argv) {                                                                \
    return ::rodimus::bench::run_main(argc, argv, [] {                                             \
      ::rodimus::bench::for_each_backend<RODIMUS_BENCH_SIMD_ARCHS>([](auto tag) {                  \
        using Backend = typename decltype(tag)::type;                                              \
        register_backend<Backend>(std::is_same_v<Backend, ::rodimus::scalar>);                     \
      });                                                                                          \
    });                                                                                            \
  }

} // namespace rodimus::bench
