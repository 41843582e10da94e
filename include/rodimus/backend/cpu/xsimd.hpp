// xsimd for the CPU backend. g++ 12's AVX-512 intrinsics start from _mm512_undefined_*(), which it
// reports as -Wmaybe-uninitialized once xsimd's kernels (exp, conversions) are inlined; silenced
// for xsimd's code only. Include this before any other inclusion of <xsimd/xsimd.hpp>.
#pragma once

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <xsimd/xsimd.hpp>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
