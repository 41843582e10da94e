// Run-time choice of the CPU instruction set (see rodimus/backend/cpu/dispatch.hpp).
//
// A shipped binary builds the kernels once per instruction set, each in its own translation unit
// compiled with that set's flags, and picks the best one at run time. This file plays all the
// parts: the `decode_step<Arch>` template is the shared header, the two explicit instantiations
// are what step_avx512.cpp and step_avx2.cpp would contain, and main() is the dispatching host.
// (Our examples are built with -march=native, so both instantiations compile here; a portable
// build moves them into their own files, as the CMake lines below show.)
//
//   add_executable(app main.cpp step_avx512.cpp step_avx2.cpp)
//   set_source_files_properties(step_avx512.cpp PROPERTIES COMPILE_OPTIONS
//       "-mavx512f;-mavx512bw;-mavx512dq;-mavx512cd;-mfma;-mf16c")
//   set_source_files_properties(step_avx2.cpp PROPERTIES COMPILE_OPTIONS "-mavx2;-mfma;-mf16c")
//
// The program runs one GLA decode step (K = 64, V = 4096, 4 sequences) with the chosen backend
// and checks it against the scalar reference.
#include <cmath>
#include <cstdio>
#include <vector>

#include "rodimus/backend/cpu/dispatch.hpp"
#include "rodimus/backend/cpu/gla.hpp"

using namespace rodimus;

// ---- the shared header: one template, extern per instruction set ----
struct step_data {
  gla_decode_args<float> args;
  workspace ws;
};

template <class Arch> status decode_step(thread_pool* pool, const step_data& d) {
  return gla_decode(cpu<Arch>{pool}, d.args, d.ws);
}

#if XSIMD_WITH_AVX512BW
extern template status decode_step<xsimd::avx512bw>(thread_pool*, const step_data&);
#endif
#if XSIMD_WITH_FMA3_AVX2
extern template status decode_step<xsimd::fma3<xsimd::avx2>>(thread_pool*, const step_data&);
#endif

// ---- step_avx512.cpp / step_avx2.cpp: the explicit instantiations ----
#if XSIMD_WITH_AVX512BW
template status decode_step<xsimd::avx512bw>(thread_pool*, const step_data&);
#endif
#if XSIMD_WITH_FMA3_AVX2
template status decode_step<xsimd::fma3<xsimd::avx2>>(thread_pool*, const step_data&);
#endif

// ---- main.cpp: pick at run time ----
status run_best(thread_pool* pool, const step_data& d, cpu_isa& used) {
  used = best_cpu_isa();
  switch (used) {
#if XSIMD_WITH_AVX512BW
  case cpu_isa::avx512: return decode_step<xsimd::avx512bw>(pool, d);
#endif
#if XSIMD_WITH_FMA3_AVX2
  case cpu_isa::avx2: return decode_step<xsimd::fma3<xsimd::avx2>>(pool, d);
#endif
  default: used = cpu_isa::generic; return gla_decode(scalar{}, d.args, d.ws);
  }
}

int main() {
  const index_t B = 4, K = 64, V = 4096;
  std::vector<float> q(B * K), k(B * K), g(B * K), v(B * V), o(B * V), o_ref(B * V);
  std::vector<float> state(B * K * V), state_ref;
  for (std::size_t i = 0; i < q.size(); ++i) {
    q[i] = std::sin(0.1f * float(i));
    k[i] = 0.1f * std::cos(0.3f * float(i));
    g[i] = -0.05f * float(1 + i % 7);
  }
  for (std::size_t i = 0; i < v.size(); ++i)
    v[i] = std::cos(0.01f * float(i));
  for (std::size_t i = 0; i < state.size(); ++i)
    state[i] = 0.001f * float(i % 101);
  state_ref = state;

  step_data d;
  d.args.q = make_view<const float>(q.data(), B, 1, K);
  d.args.k = make_view<const float>(k.data(), B, 1, K);
  d.args.g = make_view<const float>(g.data(), B, 1, K);
  d.args.v = make_view<const float>(v.data(), B, 1, V);
  d.args.o = make_view(o.data(), B, 1, V);
  d.args.state = make_view(state.data(), B, 1, K, V);
  d.args.scale = 0.125f;
  std::vector<double> ws_storage(gla_decode_workspace_bytes(cpu<>{}, d.args) / 8 + 64);
  d.ws = workspace{ws_storage.data(), ws_storage.size() * 8, 0};

  thread_pool pool;
  cpu_isa used = cpu_isa::generic;
  if (!run_best(&pool, d, used).ok()) return 1;

  step_data r = d;
  r.args.o = make_view(o_ref.data(), B, 1, V);
  r.args.state = make_view(state_ref.data(), B, 1, K, V);
  if (!gla_decode(scalar{}, r.args, r.ws).ok()) return 1;
  double err = 0, scale = 0;
  for (std::size_t i = 0; i < o.size(); ++i) {
    err = std::fmax(err, std::fabs(double(o[i]) - double(o_ref[i])));
    scale = std::fmax(scale, std::fabs(double(o_ref[i])));
  }
  std::printf("instruction set: %s (avx512 %s, avx2 %s); max |o - scalar| = %.3g (max |o| %.3g)\n",
              to_string(used), cpu_isa_supported(cpu_isa::avx512) ? "yes" : "no",
              cpu_isa_supported(cpu_isa::avx2) ? "yes" : "no", err, scale);
  return err <= 1e-5 * scale ? 0 : 1;
}
