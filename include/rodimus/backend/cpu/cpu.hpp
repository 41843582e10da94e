// The SIMD CPU backend tag. `cpu<Arch>` selects the xsimd kernels compiled for instruction set
// `Arch` (xsimd::avx512bw, xsimd::fma3<xsimd::avx2>, ...; the default is the best one the compiler
// targets) and carries the executor: a thread pool, or nullptr to run on the calling thread.
//
//   rodimus::thread_pool pool;                              // one participant per hardware thread
//   rodimus::cpu<> be{&pool};
//   status s = rodimus::gla_decode(be, args, ws);
//
// Each primitive lives in its own header (backend/cpu/<primitive>.hpp); include the ones you call,
// or rodimus/backend/cpu/all.hpp. Runtime choice of the instruction set: backend/cpu/dispatch.hpp.
#pragma once

#include "rodimus/backend/cpu/xsimd.hpp"

#include "rodimus/backend/cpu/thread_pool.hpp"
#include "rodimus/core/backend.hpp"

namespace rodimus {

template <class Arch = xsimd::default_arch> struct cpu {
  using arch = Arch;
  thread_pool* pool = nullptr;
};

} // namespace rodimus
