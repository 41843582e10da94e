// Backend tags. A primitive is called as `rodimus::gla_scan(backend, args)`; the tag picks the
// implementation at compile time and carries the executor (thread pool, CUDA stream).
//   scalar        the reference: plain loops, double accumulation; the oracle of every test
//   cpu<Arch>     xsimd kernels for one instruction set (defined in backend/cpu/cpu.hpp)
//   cuda<Sm>      CUDA kernels on a stream (defined in backend/cuda/cuda.cuh)
#pragma once

namespace rodimus {

struct scalar {};

class thread_pool;

/// SIMD CPU backend for xsimd architecture `Arch` (defined in rodimus/backend/cpu/cpu.hpp).
template <class Arch> struct cpu;

/// CUDA backend for compute capability `Sm`*10 (defined in rodimus/backend/cuda/cuda.cuh).
template <int Sm> struct cuda;

} // namespace rodimus
