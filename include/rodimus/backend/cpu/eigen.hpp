// Eigen for the CPU backend's matrix products. g++ 12 reports a false -Wmaybe-uninitialized inside
// Eigen's AVX-512 transposes (from _mm512_undefined_ps); it is silenced for Eigen's code only.
#pragma once

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <Eigen/Core>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

namespace rodimus::detail {

using row_major_f32 = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
/// Row-major f32 matrices over caller memory with a row stride (elements).
using const_f32_map = Eigen::Map<const row_major_f32, Eigen::Unaligned, Eigen::OuterStride<>>;
using f32_map = Eigen::Map<row_major_f32, Eigen::Unaligned, Eigen::OuterStride<>>;

} // namespace rodimus::detail
