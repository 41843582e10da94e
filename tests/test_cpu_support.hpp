// Shared pieces of the cpu<Arch> tests: the instruction sets to stamp each test for, and a pool.
// Each test runs for AVX-512 (xsimd::avx512bw) and AVX2 (xsimd::fma3<xsimd::avx2>) where the
// compiler targets them and the machine runs them; kernels are compared with the scalar reference.
#pragma once

#include "rodimus/backend/cpu/cpu.hpp"
#include "rodimus/backend/cpu/dispatch.hpp"
#include "support/primitive_support.hpp"
#include "support/test_support.hpp"

namespace rodimus::test {

#if XSIMD_WITH_AVX512BW && XSIMD_WITH_FMA3_AVX2
#define RODIMUS_TEST_CPU_ARCHS xsimd::avx512bw, xsimd::fma3<xsimd::avx2>
#elif XSIMD_WITH_FMA3_AVX2
#define RODIMUS_TEST_CPU_ARCHS xsimd::fma3<xsimd::avx2>
#else
#define RODIMUS_TEST_CPU_ARCHS xsimd::default_arch
#endif

/// True when this machine runs code compiled for Arch (else the test says so and skips): the
/// library's own detection (backend/cpu/dispatch.hpp), CPUID confirmed by the compiler's check.
template <class Arch> bool arch_runs_here() {
  const bool ok = cpu_isa_supported(isa_of<Arch>());
  if (!ok) MESSAGE("skipped: this machine does not run " << Arch::name());
  return ok;
}

/// A pool of 2 participants shared by the tests (kernels are also run with no pool).
inline thread_pool& test_pool() {
  static thread_pool pool(2);
  return pool;
}

} // namespace rodimus::test
