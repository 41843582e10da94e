// The element-wise primitives on cpu<Arch> against the scalar reference: rmsnorm, gated_rmsnorm,
// rmsnorm_linear and swiglu_linear (composed of the two primitives on the CPU), swiglu, ddts and
// rotary (bodies written once for every backend in tests/cases/<primitive>_cases.hpp, stamped here
// for each arch, with and without the pool), causal_conv: tests/test_cpu_causal_conv.cpp. Widths
// that are not multiples of the SIMD width cover the tails.
//
// Tolerances, relative to max|want|: f32 1e-5 (f32 against f64 or f32 std:: functions; xsimd's
// exp/log are within a few ulp). 16-bit outputs 2^-7: both sides round the same inputs, results
// may land one bf16 step apart, and one step of a value v is up to 2^-7 v (v just above a power
// of two; 2^-8 was too tight: 396 vs 398 failed against 2^-8 x 396).
#include "test_cpu_support.hpp"

#include "cases/ddts_cases.hpp"
#include "cases/gated_rmsnorm_cases.hpp"
#include "cases/rmsnorm_cases.hpp"
#include "cases/rmsnorm_linear_cases.hpp"
#include "cases/rotary_cases.hpp"
#include "cases/swiglu_cases.hpp"
#include "cases/swiglu_linear_cases.hpp"

#include "rodimus/backend/cpu/ddts.hpp"
#include "rodimus/backend/cpu/gated_rmsnorm.hpp"
#include "rodimus/backend/cpu/linear.hpp"
#include "rodimus/backend/cpu/rmsnorm.hpp"
#include "rodimus/backend/cpu/rotary.hpp"
#include "rodimus/backend/cpu/swiglu.hpp"

using namespace rodimus;

namespace {

template <class Arch> cpu<Arch> backend(bool pool) {
  return cpu<Arch>{pool ? &test::test_pool() : nullptr};
}

} // namespace

TEST_CASE_TEMPLATE("cpu rmsnorm, gated_rmsnorm and swiglu match the scalar reference", Arch,
                   RODIMUS_TEST_CPU_ARCHS) {
  if (!test::arch_runs_here<Arch>()) return;
  for (bool pool : {false, true}) {
    test::check_rmsnorm_all(backend<Arch>(pool));
    test::check_gated_rmsnorm_all(backend<Arch>(pool));
    test::check_rmsnorm_linear_all(backend<Arch>(pool)); // the composed paths
    test::check_swiglu_linear_all(backend<Arch>(pool));
    test::check_swiglu_all(backend<Arch>(pool));
  }
}

TEST_CASE_TEMPLATE("cpu ddts and rotary match the scalar reference", Arch, RODIMUS_TEST_CPU_ARCHS) {
  if (!test::arch_runs_here<Arch>()) return;
  for (bool pool : {false, true}) {
    test::check_ddts_all(backend<Arch>(pool));
    test::check_rotary_all(backend<Arch>(pool));
  }
}
