// Run-time choice of the CPU backend's instruction set.
//
// cpu<Arch> is compiled for one instruction set. A host that ships one binary for many machines
// builds one translation unit per instruction set, each compiled with that set's flags, and picks
// the best one the running machine supports:
//
//   // step.hpp: the work, written once as a template on the arch
//   template <class Arch> rodimus::status step(rodimus::thread_pool* pool, const my_args& a);
//   extern template rodimus::status step<xsimd::avx512bw>(rodimus::thread_pool*, const my_args&);
//   extern template rodimus::status step<xsimd::fma3<xsimd::avx2>>(rodimus::thread_pool*, const
//   my_args&);
//
//   // step_avx512.cpp, compiled with -mavx512f -mavx512bw -mavx512dq -mavx512cd -mfma -mf16c
//   template rodimus::status step<xsimd::avx512bw>(rodimus::thread_pool*, const my_args&);
//   // step_avx2.cpp, compiled with -mavx2 -mfma -mf16c
//   template rodimus::status step<xsimd::fma3<xsimd::avx2>>(rodimus::thread_pool*, const my_args&);
//
//   // main.cpp, compiled for the baseline
//   switch (rodimus::best_cpu_isa()) {
//     case rodimus::cpu_isa::avx512: return step<xsimd::avx512bw>(&pool, a);
//     case rodimus::cpu_isa::avx2:   return step<xsimd::fma3<xsimd::avx2>>(&pool, a);
//     default:                       return step_scalar(a);
//   }
//
// In CMake: add the two files with set_source_files_properties(... COMPILE_OPTIONS ...). Nothing
// compiled for AVX-512 may run before the check, so the per-ISA code lives only in those units
// (examples/cpu_dispatch.cpp shows the whole pattern). When every arch is available at compile time
// (one translation unit built with -march=native, as our tests are), with_best_cpu() does the
// switch.
//
// Detection: xsimd::available_architectures() (CPUID), confirmed with the compiler's
// __builtin_cpu_supports, which also checks that the OS saves the wide registers. (xsimd 8.1 reads
// the AVX bit from the wrong CPUID leaf; its AVX2 and AVX-512 bits are right.)
#pragma once

#include "rodimus/backend/cpu/cpu.hpp"

namespace rodimus {

enum class cpu_isa : unsigned char { generic, avx2, avx512 };

constexpr const char* to_string(cpu_isa i) noexcept {
  switch (i) {
  case cpu_isa::avx512: return "avx512";
  case cpu_isa::avx2: return "avx2";
  case cpu_isa::generic: return "generic";
  }
  return "unknown";
}

/// True when the running machine (and OS) supports `isa`.
inline bool cpu_isa_supported(cpu_isa isa) noexcept {
  const auto have = xsimd::available_architectures();
  switch (isa) {
  case cpu_isa::avx512:
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    return have.avx512bw && __builtin_cpu_supports("avx512f") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512cd");
#else
    return have.avx512bw;
#endif
  case cpu_isa::avx2:
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    return have.fma3_avx2 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return have.fma3_avx2;
#endif
  case cpu_isa::generic: return true;
  }
  return false;
}

/// The best instruction set of {avx512, avx2} the machine runs, else generic.
inline cpu_isa best_cpu_isa() noexcept {
  static const cpu_isa best = cpu_isa_supported(cpu_isa::avx512) ? cpu_isa::avx512
                              : cpu_isa_supported(cpu_isa::avx2) ? cpu_isa::avx2
                                                                 : cpu_isa::generic;
  return best;
}

/// The instruction set of an xsimd arch tag (generic for the ones not listed).
template <class Arch> constexpr cpu_isa isa_of() noexcept {
#if XSIMD_WITH_AVX512BW
  if constexpr (std::is_same_v<Arch, xsimd::avx512bw>) return cpu_isa::avx512;
#endif
#if XSIMD_WITH_FMA3_AVX2
  if constexpr (std::is_same_v<Arch, xsimd::fma3<xsimd::avx2>>) return cpu_isa::avx2;
#endif
  return cpu_isa::generic;
}

namespace detail {
template <class F, class Arch, class... Rest>
decltype(auto) with_best_cpu_impl(thread_pool* pool, F&& f) {
  if constexpr (sizeof...(Rest) == 0) {
    return f(cpu<Arch>{pool});
  } else {
    if (cpu_isa_supported(isa_of<Arch>())) return f(cpu<Arch>{pool});
    return with_best_cpu_impl<F, Rest...>(pool, static_cast<F&&>(f));
  }
}
} // namespace detail

/// f(cpu<Arch>{pool}) for the first Arch in Archs (best first) that this machine runs; the last
/// one is the fallback and must run everywhere the program runs. Every Arch must be compiled into
/// this translation unit.
template <class... Archs, class F> decltype(auto) with_best_cpu(thread_pool* pool, F&& f) {
  static_assert(sizeof...(Archs) >= 1, "name at least one arch");
  return detail::with_best_cpu_impl<F, Archs...>(pool, static_cast<F&&>(f));
}

} // namespace rodimus
