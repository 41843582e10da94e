// gla_scan and gla_chunked on any backend (one body, stamped per backend: see
// support/backend_support.hpp): tests/test_cpu_gla.cpp stamps it for the xsimd archs,
// tests/test_gla_invariants.cpp for the scalar reference in f32, tests/cuda/test_gla.cu for CUDA.
//
//   check_gla_all        against the scalar reference (f64) on fresh random inputs with poisoned
//                        outputs: f32, bf16 and f16 activations; odd T, K and V (V not a multiple
//                        of any tile); mild, extreme (tiny to -1e4) and all -1e4 log-decays;
//                        segment boundaries (T > 256); packed varlen batches with empty sequences;
//                        with and without initial and final states; every chunk size
//   check_gla_invariants chunked == scan for every chunk size and odd lengths; prefill(a) then
//                        prefill(b) through the state == prefill(a + b) (also through a slot pool
//                        updated in place); packed == one sequence at a time
//   check_gla_slots      pools addressed by slot with padding (-1) sequences, separate or
//                        aliased (in place) pools, against separate state arrays; every slot no
//                        sequence uses, and the padding, bit for bit unchanged
//   check_gla_bad_arguments  every bad shape gives the status of the reference, writing nothing;
//                        on host backends also the bad slot contents
//   check_gla_skipped_sequences  (device backends) slots the host would reject are skipped
//
// Tolerances, relative to max|want| (want from the scalar reference in f64 on the same stored
// inputs): f32 outputs and states 1e-5 (f32 against f64 arithmetic; decays bounded by 1 so errors
// do not grow). 16-bit o: the reference is not rounded, so the difference is the rounding of o
// (half a step: 2^-9 of |o| for bf16, 2^-12 for f16) plus the f32 error: 2^-8 (bf16) and 2^-10
// (f16) with room to spare. States stay f32: 1e-5. Between two runs of one backend (invariants):
// 2e-5 (each side within 1e-5 of the exact value); runs that take the same arithmetic in the same
// order (the scan split anywhere, packed against separate) 1e-6, which any reordering would still
// meet but a wrong state or sequence boundary would not.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <random>
#include <type_traits>
#include <vector>

#include "rodimus/backend/scalar/gla.hpp"
#include "support/backend_support.hpp"
#include "support/primitive_support.hpp"

namespace rodimus::test {

enum class gla_mode { scan, chunked };
enum class gla_decays { mild, extreme, huge };

/// Log-decays: mild g = -exp(U(-8, 1.5)) in [-4.5, -3e-4]; extreme g = -exp(U(-14, 9.2)) from
/// -8e-7 to -1e4 (a huge gate followed by small ones leaves small differences of large cumsums);
/// huge: every third gate -1e4, the others extreme.
inline std::vector<double> gla_log_decays(std::mt19937_64& r, std::size_t n, gla_decays kind) {
  std::uniform_real_distribution<double> mild(-8.0, 1.5), wide(-14.0, 9.2);
  std::vector<double> out(n);
  for (std::size_t i = 0; i < n; ++i) {
    if (kind == gla_decays::mild)
      out[i] = -std::exp(mild(r));
    else if (kind == gla_decays::huge && i % 3 == 0)
      out[i] = -1e4;
    else
      out[i] = -std::exp(wide(r));
  }
  return out;
}

template <class T> std::vector<T> gla_stored(const std::vector<double>& x) { return convert<T>(x); }

template <class Act> double gla_act_tolerance() {
  if (std::is_same_v<Act, float>) return 1e-5;
  if (std::is_same_v<Act, f16>) return 1.0 / 1024;
  return 1.0 / 256;
}

/// Inputs of one problem in their stored types (q, v: Act; k, g: Gate; states f32), head-first.
template <class Act, class Gate> struct gla_inputs {
  index_t B = 1, H = 1, T = 0, K = 1, V = 1;
  std::vector<Act> q, v;
  std::vector<Gate> k, g;
  float scale = 1.0f;

  gla_inputs(std::mt19937_64& r, index_t B_, index_t H_, index_t T_, index_t K_, index_t V_,
             gla_decays decays)
      : B(B_), H(H_), T(T_), K(K_), V(V_) {
    const std::size_t nt = std::size_t(B * H * T);
    q = uniform<Act>(r, nt * std::size_t(K));
    k = uniform<Gate>(r, nt * std::size_t(K));
    v = uniform<Act>(r, nt * std::size_t(V));
    g = gla_stored<Gate>(gla_log_decays(r, nt * std::size_t(K), decays));
    scale = 1.0f / std::sqrt(float(K));
  }
};

/// Views of a problem over pointers p (host or backend memory). States: pools of `P0` / `P1` rows
/// (N without slots); nullptr leaves a state out.
template <class Act, class Gate, class State>
gla_args<Act, Gate, State> gla_views(index_t B, index_t H, index_t T, index_t K, index_t V,
                                     const Act* q, const Gate* k, const Act* v, const Gate* g,
                                     Act* o, const State* s0, index_t P0, State* s1, index_t P1,
                                     const std::int64_t* cu, index_t N, float scale) {
  gla_args<Act, Gate, State> a;
  a.q = make_view(q, B, H, T, K);
  a.k = make_view(k, B, H, T, K);
  a.v = make_view(v, B, H, T, V);
  a.g = make_view(g, B, H, T, K);
  a.o = make_view(o, B, H, T, V);
  if (s0) a.initial_state = make_view(s0, P0, H, K, V);
  if (s1) a.final_state = make_view(s1, P1, H, K, V);
  a.scale = scale;
  if (cu) {
    a.cu_seqlens = cu;
    a.num_seqs = N;
  }
  return a;
}

/// Run the scan (chunk ignored) or the chunked form on `be` with a workspace in its memory.
template <class Backend, class Act, class Gate, class State>
status gla_run(const Backend& be, const gla_args<Act, Gate, State>& a, gla_mode mode, int chunk) {
  const std::size_t bytes = mode == gla_mode::scan ? gla_scan_workspace_bytes(be, a)
                                                   : gla_chunked_workspace_bytes(be, a, chunk);
  backend_workspace<Backend> ws(be, bytes);
  return mode == gla_mode::scan ? gla_scan(be, a, ws.get()) : gla_chunked(be, a, chunk, ws.get());
}

/// The scalar reference in f64 on the stored inputs: o (B, H, T, V) and the final states
/// (N, H, K, V); s0 (N, H, K, V) or empty (zero initial states).
template <class Act, class Gate>
void gla_reference(const gla_inputs<Act, Gate>& in, const std::vector<float>& s0,
                   const std::vector<std::int64_t>& cu, std::vector<double>& o,
                   std::vector<double>& fs) {
  const index_t N = cu.empty() ? in.B : index_t(cu.size()) - 1;
  const auto q = widen(in.q), k = widen(in.k), v = widen(in.v), g = widen(in.g), s = widen(s0);
  o.assign(std::size_t(in.B * in.H * in.T * in.V), 0.0);
  fs.assign(std::size_t(N * in.H * in.K * in.V), 0.0);
  poison(o);
  poison(fs);
  const auto a = gla_views<double, double, double>(in.B, in.H, in.T, in.K, in.V, q.data(), k.data(),
                                                   v.data(), g.data(), o.data(),
                                                   s.empty() ? nullptr : s.data(), N, fs.data(), N,
                                                   cu.empty() ? nullptr : cu.data(), N, in.scale);
  workspace_buffer ws(gla_scan_workspace_bytes(scalar{}, a));
  const status st = gla_scan(scalar{}, a, ws.get());
  REQUIRE_MESSAGE(st.ok(), to_string(st.code), ": ", st.what);
}

/// One backend run against the reference.
template <class Backend, class Act, class Gate>
void check_gla(const Backend& be, gla_mode mode, int chunk, index_t B, index_t H, index_t T,
               index_t K, index_t V, const std::vector<std::int64_t>& cu, bool with_initial,
               bool with_final, gla_decays decays = gla_decays::mild) {
  CAPTURE(int(mode));
  CAPTURE(chunk);
  CAPTURE(B);
  CAPTURE(H);
  CAPTURE(T);
  CAPTURE(K);
  CAPTURE(V);
  CAPTURE(cu.size());
  CAPTURE(with_initial);
  CAPTURE(with_final);
  CAPTURE(int(decays));
  CAPTURE(to_string(dtype_of<Act>::value));
  auto r = rng(std::uint64_t(T * 7919 + K * 31 + V + chunk + 131 * int(decays)));
  const gla_inputs<Act, Gate> in(r, B, H, T, K, V, decays);
  const index_t N = cu.empty() ? B : index_t(cu.size()) - 1;
  const std::size_t ns = std::size_t(N * H * K * V);
  const std::vector<float> s0 = with_initial ? uniform<float>(r, ns) : std::vector<float>();
  std::vector<Act> o(in.q.size() / std::size_t(K) * std::size_t(V));
  std::vector<float> fs(with_final ? ns : 0);
  poison(o);
  poison(fs);

  backend_arrays<Backend> mem(be);
  Act* d_o = mem.put(o);
  float* d_fs = with_final ? mem.put(fs) : nullptr;
  const auto a =
      gla_views<Act, Gate, float>(B, H, T, K, V, mem.put(in.q), mem.put(in.k), mem.put(in.v),
                                  mem.put(in.g), d_o, with_initial ? mem.put(s0) : nullptr, N, d_fs,
                                  N, cu.empty() ? nullptr : mem.put(cu), N, in.scale);
  const status st = gla_run(be, a, mode, chunk);
  REQUIRE_MESSAGE(st.ok(), to_string(st.code), ": ", st.what);
  mem.get(o, d_o);
  if (with_final) mem.get(fs, d_fs);

  std::vector<double> want_o, want_fs;
  gla_reference(in, s0, cu, want_o, want_fs);
  check_close(o, want_o, gla_act_tolerance<Act>(), 0.0, "o");
  if (with_final) check_close(fs, want_fs, 1e-5, 0.0, "final_state");
}

/// The comparisons with the reference every backend runs.
template <class Backend> void check_gla_all(const Backend& be) {
  for (gla_mode mode : {gla_mode::scan, gla_mode::chunked}) {
    const std::vector<int> chunks =
        mode == gla_mode::scan ? std::vector<int>{0} : std::vector<int>{16, 32, 64, 128};
    for (int c : chunks) {
      check_gla<Backend, float, float>(be, mode, c, 2, 2, 37, 22, 100, {}, true, true);
      check_gla<Backend, float, float>(be, mode, c, 1, 1, 300, 64, 4096, {}, true, true);
      check_gla<Backend, float, float>(be, mode, c, 1, 2, 301, 64, 67, {0, 5, 5, 40, 301}, true,
                                       true);
      check_gla<Backend, float, float>(be, mode, c, 2, 1, 1, 7, 19, {}, false, true);
      // Odd K in every K bucket, V past a tile, extreme gates, varlen with empty sequences.
      check_gla<Backend, float, float>(be, mode, c, 1, 1, 737, 60, 70,
                                       {0, 0, 1, 100, 100, 400, 737}, true, true,
                                       gla_decays::extreme);
      check_gla<Backend, float, float>(be, mode, c, 2, 1, 65, 100, 33, {}, false, false,
                                       gla_decays::huge);
      check_gla<Backend, float, float>(be, mode, c, 1, 1, 129, 256, 40, {}, true, true,
                                       gla_decays::extreme);
      check_gla<Backend, float, float>(be, mode, c, 1, 1, 200, 128, 129, {0, 77, 200}, false, true,
                                       gla_decays::mild);
      check_gla<Backend, bf16, float>(be, mode, c, 2, 1, 45, 64, 130, {}, true, true);
      check_gla<Backend, bf16, float>(be, mode, c, 1, 1, 1300, 64, 96, {0, 1, 300, 1100, 1300},
                                      true, true, gla_decays::extreme);
      check_gla<Backend, f16, f16>(be, mode, c, 1, 2, 99, 33, 65, {}, true, true);
    }
  }
  check_gla<Backend, bf16, float>(be, gla_mode::chunked, 64, 1, 1, 270, 64, 256, {0, 100, 270},
                                  false, true);
  // No sequence at all, and sequences with no token (their final state is the initial one).
  check_gla<Backend, float, float>(be, gla_mode::chunked, 16, 1, 1, 0, 8, 5, {0, 0, 0}, true, true);
  check_gla<Backend, float, float>(be, gla_mode::scan, 0, 1, 1, 0, 8, 5, {0}, true, true);
  check_gla<Backend, float, float>(be, gla_mode::scan, 0, 0, 1, 0, 8, 5, {}, true, true);
}

// ---- invariants between runs of one backend (f32) ----

/// o and the final states of one backend run over host inputs (copied in and out).
template <class Backend> struct gla_f32_run { std::vector<float> o, fs; };

template <class Backend>
gla_f32_run<Backend> gla_run_f32(const Backend& be, const gla_inputs<float, float>& in,
                                 const std::vector<float>& s0, const std::vector<std::int64_t>& cu,
                                 gla_mode mode, int chunk) {
  const index_t N = cu.empty() ? in.B : index_t(cu.size()) - 1;
  gla_f32_run<Backend> out;
  out.o.resize(in.v.size());
  out.fs.resize(std::size_t(N * in.H * in.K * in.V));
  poison(out.o);
  poison(out.fs);
  backend_arrays<Backend> mem(be);
  float* d_o = mem.put(out.o);
  float* d_fs = mem.put(out.fs);
  const auto a = gla_views<float, float, float>(in.B, in.H, in.T, in.K, in.V, mem.put(in.q),
                                                mem.put(in.k), mem.put(in.v), mem.put(in.g), d_o,
                                                s0.empty() ? nullptr : mem.put(s0), N, d_fs, N,
                                                cu.empty() ? nullptr : mem.put(cu), N, in.scale);
  const status st = gla_run(be, a, mode, chunk);
  REQUIRE_MESSAGE(st.ok(), to_string(st.code), ": ", st.what);
  mem.get(out.o, d_o);
  mem.get(out.fs, d_fs);
  return out;
}

/// Tokens [t0, t1) of every (b, h) row of a (B, H, T, X) array.
template <class T>
std::vector<T> gla_slice_t(const std::vector<T>& x, index_t B, index_t H, index_t Tn, index_t X,
                           index_t t0, index_t t1) {
  std::vector<T> out;
  for (index_t bh = 0; bh < B * H; ++bh)
    out.insert(out.end(), x.begin() + (bh * Tn + t0) * X, x.begin() + (bh * Tn + t1) * X);
  return out;
}

inline gla_inputs<float, float> gla_slice_inputs(const gla_inputs<float, float>& in, index_t t0,
                                                 index_t t1) {
  gla_inputs<float, float> s = in;
  s.T = t1 - t0;
  s.q = gla_slice_t(in.q, in.B, in.H, in.T, in.K, t0, t1);
  s.k = gla_slice_t(in.k, in.B, in.H, in.T, in.K, t0, t1);
  s.g = gla_slice_t(in.g, in.B, in.H, in.T, in.K, t0, t1);
  s.v = gla_slice_t(in.v, in.B, in.H, in.T, in.V, t0, t1);
  return s;
}

template <class Backend> void check_gla_invariants(const Backend& be) {
  auto r = rng(21);
  // Chunked equals the scan for every chunk size and awkward lengths (strong gates included).
  for (index_t T : {1, 2, 63, 65, 130, 301}) {
    for (gla_decays d : {gla_decays::mild, gla_decays::extreme}) {
      CAPTURE(T);
      CAPTURE(int(d));
      const gla_inputs<float, float> in(r, 2, 2, T, 37, 45, d);
      const auto s0 =
          T % 2 ? uniform<float>(r, std::size_t(2 * 2 * 37 * 45)) : std::vector<float>();
      const auto ref = gla_run_f32(be, in, s0, {}, gla_mode::scan, 0);
      REQUIRE(max_abs(ref.o) > 0);
      for (int chunk : {16, 32, 64, 128}) {
        CAPTURE(chunk);
        const auto got = gla_run_f32(be, in, s0, {}, gla_mode::chunked, chunk);
        check_close(got.o, ref.o, 2e-5, 0.0, "o");
        check_close(got.fs, ref.fs, 2e-5, 0.0, "final_state");
      }
    }
  }
  // Prefill a, then b from a's final state (left in backend memory), equals prefill a + b.
  {
    const index_t B = 2, H = 1, T = 150, K = 20, V = 70;
    const gla_inputs<float, float> in(r, B, H, T, K, V, gla_decays::mild);
    const auto s0 = uniform<float>(r, std::size_t(B * H * K * V));
    for (gla_mode mode : {gla_mode::scan, gla_mode::chunked}) {
      for (int chunk : {16, 64}) {
        if (mode == gla_mode::scan && chunk != 16) continue;
        const auto whole = gla_run_f32(be, in, s0, {}, mode, chunk);
        const double tol = mode == gla_mode::scan ? 1e-6 : 2e-5;
        for (index_t split : {1, 37, 64, 149}) {
          CAPTURE(int(mode));
          CAPTURE(chunk);
          CAPTURE(split);
          const auto ia = gla_slice_inputs(in, 0, split), ib = gla_slice_inputs(in, split, T);
          std::vector<float> oa(ia.v.size()), ob(ib.v.size()), st = s0;
          poison(oa);
          poison(ob);
          backend_arrays<Backend> mem(be);
          float *d_oa = mem.put(oa), *d_ob = mem.put(ob), *d_st = mem.put(st);
          // a: the state pool (one row per sequence) updated in place, then b continues from it.
          const auto aa = gla_views<float, float, float>(
              B, H, split, K, V, mem.put(ia.q), mem.put(ia.k), mem.put(ia.v), mem.put(ia.g), d_oa,
              d_st, B, d_st, B, nullptr, B, in.scale);
          REQUIRE(gla_run(be, aa, mode, chunk).ok());
          const auto ab = gla_views<float, float, float>(
              B, H, T - split, K, V, mem.put(ib.q), mem.put(ib.k), mem.put(ib.v), mem.put(ib.g),
              d_ob, d_st, B, d_st, B, nullptr, B, in.scale);
          REQUIRE(gla_run(be, ab, mode, chunk).ok());
          mem.get(oa, d_oa);
          mem.get(ob, d_ob);
          mem.get(st, d_st);
          check_close(oa, gla_slice_t(whole.o, B, H, T, V, 0, split), tol, 0.0, "o of a");
          check_close(ob, gla_slice_t(whole.o, B, H, T, V, split, T), tol, 0.0, "o of b");
          check_close(st, whole.fs, tol, 0.0, "final_state");
        }
      }
    }
  }
  // Packed varlen equals one sequence at a time.
  {
    const std::vector<index_t> lengths = {5, 0, 17, 1, 70, 33, 16, 300};
    std::vector<std::int64_t> cu = {0};
    for (index_t L : lengths)
      cu.push_back(cu.back() + L);
    const index_t T = index_t(cu.back()), N = index_t(lengths.size()), H = 2, K = 30, V = 50;
    const gla_inputs<float, float> in(r, 1, H, T, K, V, gla_decays::extreme);
    const auto s0 = uniform<float>(r, std::size_t(N * H * K * V));
    const std::size_t one = std::size_t(H * K * V);
    for (gla_mode mode : {gla_mode::scan, gla_mode::chunked}) {
      for (int chunk : {16, 32}) {
        if (mode == gla_mode::scan && chunk != 16) continue;
        CAPTURE(int(mode));
        CAPTURE(chunk);
        const auto got = gla_run_f32(be, in, s0, cu, mode, chunk);
        for (index_t n = 0; n < N; ++n) {
          CAPTURE(n);
          const auto one_in = gla_slice_inputs(in, cu[std::size_t(n)], cu[std::size_t(n) + 1]);
          const std::vector<float> one_s0(s0.begin() + n * index_t(one),
                                          s0.begin() + (n + 1) * index_t(one));
          const auto want = gla_run_f32(be, one_in, one_s0, {}, mode, chunk);
          check_close(gla_slice_t(got.o, 1, H, T, V, cu[std::size_t(n)], cu[std::size_t(n) + 1]),
                      want.o, 1e-6, 0.0, "o");
          const std::vector<float> got_fs(got.fs.begin() + n * index_t(one),
                                          got.fs.begin() + (n + 1) * index_t(one));
          check_close(got_fs, want.fs, 1e-6, 0.0, "final_state");
        }
      }
    }
  }
}

// ---- state slots ----

/// A packed batch whose sequences address pools of P states through slot (-1 for padding
/// sequences, two empty and one with tokens), pools separate or aliased (in place), against the
/// reference on separate state arrays gathered from the pool. Every pool row no sequence writes
/// stays bit for bit; the padding sequence's o rows stay poisoned (primitives/slots.hpp).
template <class Backend, class Act>
void check_gla_pool(const Backend& be, gla_mode mode, int chunk, bool in_place, bool with_initial) {
  CAPTURE(int(mode));
  CAPTURE(chunk);
  CAPTURE(in_place);
  CAPTURE(with_initial);
  auto r = rng(std::uint64_t(31 + chunk + 2 * in_place + with_initial));
  const std::vector<index_t> lengths = {40, 0, 1, 0, 130, 7, 0, 65};
  const std::vector<bool> padding = {false, true, false, false, false, true, true, false};
  const index_t N = index_t(lengths.size()), P = 13, H = 2, K = 24, V = 37;
  std::vector<std::int64_t> cu = {0};
  for (index_t L : lengths)
    cu.push_back(cu.back() + L);
  const index_t T = index_t(cu.back());
  std::vector<std::int32_t> perm(static_cast<std::size_t>(P));
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), r);
  std::vector<std::int32_t> slot(static_cast<std::size_t>(N));
  for (index_t n = 0; n < N; ++n)
    slot[std::size_t(n)] = padding[std::size_t(n)] ? -1 : perm[std::size_t(n)];

  const gla_inputs<Act, float> in(r, 1, H, T, K, V, gla_decays::extreme);
  const std::size_t one = std::size_t(H * K * V);
  const std::vector<float> pool0 = uniform<float>(r, std::size_t(P) * one);
  const std::vector<float> pool1_0 = uniform<float>(r, std::size_t(P) * one, 5.0, 6.0);
  std::vector<Act> o(in.v.size());
  poison(o);

  backend_arrays<Backend> mem(be);
  Act* d_o = mem.put(o);
  float* d_pool0 = mem.put(pool0);
  float* d_pool1 = in_place ? d_pool0 : mem.put(pool1_0);
  auto a = gla_views<Act, float, float>(1, H, T, K, V, mem.put(in.q), mem.put(in.k), mem.put(in.v),
                                        mem.put(in.g), d_o, with_initial ? d_pool0 : nullptr, P,
                                        d_pool1, P, mem.put(cu), N, in.scale);
  a.slot = mem.put(slot);
  const status st = gla_run(be, a, mode, chunk);
  REQUIRE_MESSAGE(st.ok(), to_string(st.code), ": ", st.what);
  std::vector<float> pool1(pool0.size());
  mem.get(o, d_o);
  mem.get(pool1, d_pool1);

  // The reference on separate arrays: sequence n starts from pool0[slot[n]] (zero for padding).
  std::vector<float> s0(std::size_t(N) * one, 0.0f);
  for (index_t n = 0; n < N; ++n)
    if (slot[std::size_t(n)] >= 0)
      std::copy(pool0.begin() + slot[std::size_t(n)] * index_t(one),
                pool0.begin() + (slot[std::size_t(n)] + 1) * index_t(one),
                s0.begin() + n * index_t(one));
  std::vector<double> want_o, want_fs;
  gla_reference(in, with_initial ? s0 : std::vector<float>(), cu, want_o, want_fs);
  std::vector<bool> skip(std::size_t(H * T), false); // (H, T) rows of V: padding tokens
  for (index_t n = 0; n < N; ++n)
    for (std::int64_t t = cu[std::size_t(n)]; padding[std::size_t(n)] && t < cu[std::size_t(n) + 1];
         ++t)
      for (index_t h = 0; h < H; ++h)
        skip[std::size_t(h * T + t)] = true;
  for (std::size_t i = 0; i < want_o.size(); ++i) // the reference ran every sequence
    if (skip[i / std::size_t(V)]) want_o[i] = std::nan("");
  check_skipped_rows(o, want_o, std::size_t(V), skip);
  check_close(o, want_o, gla_act_tolerance<Act>(), 0.0, "o");

  const std::vector<float>& before = in_place ? pool0 : pool1_0;
  std::vector<bool> written(static_cast<std::size_t>(P), false);
  for (index_t n = 0; n < N; ++n) {
    const std::int32_t s = slot[std::size_t(n)];
    if (s < 0) continue;
    CAPTURE(n);
    written[std::size_t(s)] = true;
    const std::vector<float> got(pool1.begin() + s * index_t(one),
                                 pool1.begin() + (s + 1) * index_t(one));
    const std::vector<double> want(want_fs.begin() + n * index_t(one),
                                   want_fs.begin() + (n + 1) * index_t(one));
    check_close(got, want, 1e-5, 0.0, "final_state");
  }
  for (index_t p = 0; p < P; ++p) {
    if (written[std::size_t(p)]) continue;
    CAPTURE(p);
    CHECK(std::memcmp(pool1.data() + p * index_t(one), before.data() + p * index_t(one),
                      one * sizeof(float)) == 0);
  }
  if (!in_place) { // the initial pool is only read
    std::vector<float> pool0_after(pool0.size());
    mem.get(pool0_after, d_pool0);
    CHECK(std::memcmp(pool0_after.data(), pool0.data(), pool0.size() * sizeof(float)) == 0);
  }
}

template <class Backend> void check_gla_slots(const Backend& be) {
  for (bool in_place : {false, true})
    for (bool with_initial : {true, false}) {
      if (in_place && !with_initial) continue;
      check_gla_pool<Backend, float>(be, gla_mode::scan, 0, in_place, with_initial);
      for (int chunk : {16, 32, 64, 128})
        check_gla_pool<Backend, float>(be, gla_mode::chunked, chunk, in_place, with_initial);
    }
  check_gla_pool<Backend, bf16>(be, gla_mode::chunked, 64, true, true);
  check_gla_pool<Backend, bf16>(be, gla_mode::scan, 0, true, true);
}

// ---- bad arguments ----

/// Every bad shape gives the backend the status the reference gives (nothing written); host
/// backends also check the slot contents. Non-scalar backends refuse chunk sizes outside
/// gla_chunk_size_supported.
template <class Backend> void check_gla_bad_arguments(const Backend& be) {
  const index_t B = 2, H = 1, T = 5, K = 3, V = 4;
  std::vector<float> x(std::size_t(B * H * T * K), 0.5f), g(x.size(), -0.1f),
      v(std::size_t(B * H * T * V), 0.5f), o(v.size()), s(std::size_t(B * H * K * V), 0.25f);
  poison(o);
  backend_arrays<Backend> mem(be);
  float* d_o = mem.put(o);
  const float *d_x = mem.put(x), *d_g = mem.put(g), *d_v = mem.put(v), *d_s = mem.put(s);
  float* d_fs = mem.put(s);
  static const std::vector<std::int64_t> cu_ok = {0, 2, 5};
  static const std::vector<std::int32_t> slots_ok = {1, 0};
  const std::int64_t* d_cu = mem.put(cu_ok);
  const std::int32_t* d_slots = mem.put(slots_ok);
  const auto valid = gla_views<float, float, float>(B, H, T, K, V, d_x, d_x, d_v, d_g, d_o, d_s, B,
                                                    d_fs, B, nullptr, B, 1.0f);
  using A = gla_args<float>;
  for (gla_mode mode : {gla_mode::scan, gla_mode::chunked}) {
    CAPTURE(int(mode));
    auto run = [&](const A& a) { return gla_run(be, a, mode, 16); };
    REQUIRE(run(valid).ok());
    mem.set(d_o, o); // poisoned again
    // The packed cases get B = 1 and two sequences from the mutation itself (function pointers
    // cannot capture): pack() sets them.
    static const std::int64_t* s_cu;
    static const std::int32_t* s_slots;
    s_cu = d_cu;
    s_slots = d_slots;
    check_bad_cases<A>(
        valid, run,
        {{"q null", [](A& a) { a.q.data = nullptr; }, status_code::null_pointer, "q"},
         {"k null", [](A& a) { a.k.data = nullptr; }, status_code::null_pointer, "k"},
         {"v null", [](A& a) { a.v.data = nullptr; }, status_code::null_pointer, "v"},
         {"g null", [](A& a) { a.g.data = nullptr; }, status_code::null_pointer, "g"},
         {"o null", [](A& a) { a.o.data = nullptr; }, status_code::null_pointer, "o"},
         {"negative T", [](A& a) { a.q.shape[2] = -1; }, status_code::bad_shape, "q"},
         {"K zero", [](A& a) { a.q.shape[3] = 0; }, status_code::bad_shape, "q"},
         {"V zero",
          [](A& a) {
            a.v.shape[3] = 0;
            a.o.shape[3] = 0;
          },
          status_code::bad_shape, "v"},
         {"k shape", [](A& a) { a.k.shape[3] = 2; }, status_code::bad_shape, "k"},
         {"g shape", [](A& a) { a.g.shape[2] = 4; }, status_code::bad_shape, "g"},
         {"v shape", [](A& a) { a.v.shape[1] = 2; }, status_code::bad_shape, "v"},
         {"o shape", [](A& a) { a.o.shape[3] = 3; }, status_code::bad_shape, "o"},
         {"initial_state shape", [](A& a) { a.initial_state.shape[2] = 4; }, status_code::bad_shape,
          "initial_state"},
         {"final_state rows", [](A& a) { a.final_state.shape[0] = 1; }, status_code::bad_shape,
          "final_state"},
         {"scale NaN", [](A& a) { a.scale = std::nanf(""); }, status_code::bad_argument, "scale"},
         {"num_seqs without cu_seqlens", [](A& a) { a.num_seqs = 3; }, status_code::bad_shape,
          "num_seqs"},
         {"packed with B = 2",
          [](A& a) {
            a.cu_seqlens = s_cu;
            a.num_seqs = 2;
          },
          status_code::bad_shape, "cu_seqlens"},
         {"pool shape with slot",
          [](A& a) {
            a.slot = s_slots;
            a.final_state.shape[3] = 5;
          },
          status_code::bad_shape, "final_state"},
         {"negative pool size",
          [](A& a) {
            a.slot = s_slots;
            a.initial_state.shape[0] = -1;
          },
          status_code::bad_shape, "initial_state"}});
    std::vector<float> o_after(o.size());
    mem.get(o_after, d_o);
    CHECK(all_nan(o_after));
  }
  for (int chunk : {0, -3})
    check_status(gla_run(be, valid, gla_mode::chunked, chunk), status_code::bad_argument,
                 "chunk_size");
  if constexpr (!std::is_same_v<Backend, scalar>)
    check_status(gla_run(be, valid, gla_mode::chunked, 24), status_code::unsupported, "chunk_size");

  if constexpr (memory_traits<Backend>::host_accessible) {
    // Slot contents (host backends only): B = 1 and two packed sequences of 2 and 3 tokens.
    auto packed = valid;
    packed.q.shape[0] = packed.k.shape[0] = packed.v.shape[0] = packed.g.shape[0] =
        packed.o.shape[0] = 1;
    packed.q.shape[2] = packed.k.shape[2] = packed.v.shape[2] = packed.g.shape[2] =
        packed.o.shape[2] = 5;
    packed.cu_seqlens = cu_ok.data();
    packed.num_seqs = 2;
    const std::vector<std::int32_t> good = {1, 0}, range = {0, 2}, below = {-2, 0},
                                    below5 = {0, -5}, dup = {1, 1}, pad = {-1, 0};
    packed.slot = good.data();
    for (gla_mode mode : {gla_mode::scan, gla_mode::chunked}) {
      CAPTURE(int(mode));
      REQUIRE(gla_run(be, packed, mode, 16).ok());
      mem.set(d_o, o);
      for (const auto* bad : {&range, &below, &below5, &dup}) {
        auto a = packed;
        a.slot = bad->data();
        check_status(gla_run(be, a, mode, 16), status_code::bad_argument, "slot");
      }
      { // one slot read by two sequences is fine when no final state is written
        auto a = packed;
        a.slot = dup.data();
        a.final_state = {};
        CHECK(gla_run(be, a, mode, 16).ok());
        mem.set(d_o, o);
      }
      { // a padding sequence with tokens is skipped: its o rows (tokens 0, 1) stay poisoned
        auto a = packed;
        a.slot = pad.data();
        REQUIRE(gla_run(be, a, mode, 16).ok());
        std::vector<float> o_pad(o.size());
        mem.get(o_pad, d_o);
        for (index_t b = 0; b < B; ++b) // rows of batch row 0 past the packed T = 5 are unused
          for (index_t t = 0; t < T; ++t)
            CHECK(all_nan(std::vector<float>(o_pad.begin() + ((b * H) * T + t) * V,
                                             o_pad.begin() + ((b * H) * T + t + 1) * V)) ==
                  (b > 0 || t < 2));
        mem.set(d_o, o);
      }
      { // a pool smaller than the slot needs
        auto a = packed;
        a.final_state.shape[0] = 1;
        check_status(gla_run(be, a, mode, 16), status_code::bad_argument, "slot");
      }
      std::vector<float> o_after(o.size());
      mem.get(o_after, d_o);
      CHECK(all_nan(o_after));
    }
  }
}

// ---- The rounded mode (CUDA's bf16 tensor-core chunked form, cuda_matmul::rounded) ----
//
// That kernel (backend/cuda/gla_chunked_mma.cuh) rounds q, k, v to bf16 once; the decay factors
// are f32 products of e = exp(g) (never a positive exponent); the tensor cores multiply bf16
// operands with f32 accumulation: the decayed q~ and k~, the entries of the intra-chunk matrix A
// and the state S of the inter-chunk product are each rounded to bf16 once; the state itself stays
// f32. The reference is the scalar scan (f64) on the ROUNDED q, k, v (the stored g and S0), and the
// bound is per element, from the sums of |terms| (the same reference on |q|, |k|, |v|, |S0|):
//   o:           |o - o_ref| <= rel_o a_o + u_o (|o_ref| + rel_o a_o) + 1e-30
//   final state: |s - s_ref| <= rel_s a_s + 1e-30
//   rel_o = (1 + u)^3 (1 + d_dec) (1 + d_f32) - 1,  rel_s = (1 + u) (1 + d_dec) (1 + d_f32) - 1
// with u = 2^-8 (bf16): a term of o passes through at most three roundings (q~, k~ or S, and A or
// q~ again: intra-chunk pairs q~ k~ -> A; earlier chunks k~ -> S -> q~ S), a term of the state
// through one (k~); d_dec = exp(6 * 2^-24 (n + 16)) - 1 for the decay products over at most n
// tokens (each token's factor e: 2 ulps of expf plus one rounded multiplication; a few products of
// sub-chunk totals per chunk); d_f32 = (2 K + 2 C + n + 16) 2^-22 for the f32 sums (over K
// channels, C tokens, n / C chunks of the state; 2^-22 per step allows the tensor cores' truncating
// accumulation); u_o the unit roundoff of Act for the final rounding of o; 1e-30 for underflow.
// About 1.4e-2 of the sums of |terms| at n = 4096. Outputs are NaN-poisoned as everywhere;
// half the cases take q, k, v, S0 >= 0 (`positive`) so that the sums of |terms| equal the values
// and the bound is about 1.4% of each element: a dropped or misplaced decay factor (a sub-chunk
// total of mild gates is about exp(-7)) or a lost term moves elements by far more; the signed
// cases cover cancellation.

/// One rounded-mode call: B batch rows (or one packed row of `lengths`), state slots permuted in
/// a pool of N + 3 rows with padding sequences (slot -1) when `slots`, initial state or none,
/// final state separate or in place.
struct gla_rounded_case {
  index_t B = 1, H = 1, T = 0, K = 64, V = 64;
  std::vector<index_t> lengths; // packed sequences (B = 1, T = their sum) when not empty
  std::vector<bool> padding;    // per sequence, with `slots`: slot -1
  /// With `slots`: these slots (any values: -1, below, past the pool of P = N + 3 rows) instead
  /// of a permutation; sequences whose slot is outside [0, P) are skipped (device backends).
  std::vector<std::int32_t> given_slots;
  bool slots = false, with_initial = true, in_place = false, positive = false;
  gla_decays decays = gla_decays::mild;
  int chunk = 64;
};

struct gla_rounded_bound {
  double rel_o = 0, rel_s = 0, u_o = 0;
};

template <class Act> gla_rounded_bound gla_rounded_tol(index_t K, index_t n_max) {
  const double u = 1.0 / 256, ulp24 = 1.0 / 16777216;
  const double d_dec = std::expm1(6 * ulp24 * double(n_max + 16));
  const double d_f32 = double(2 * K + 2 * 64 + n_max + 16) * 4 * ulp24;
  gla_rounded_bound b;
  b.rel_o = (1 + u) * (1 + u) * (1 + u) * (1 + d_dec) * (1 + d_f32) - 1;
  b.rel_s = (1 + u) * (1 + d_dec) * (1 + d_f32) - 1;
  b.u_o = std::is_same_v<Act, bf16> ? u : std::is_same_v<Act, f16> ? 1.0 / 2048 : ulp24;
  return b;
}

/// Per element |got - want| <= rel a + u_o (|want| + rel a) + 1e-30 (a: the sums of |terms|).
template <class T>
void check_gla_rounded_close(const std::vector<T>& got, const std::vector<double>& want,
                             const std::vector<double>& abs_terms, double rel, double u_o,
                             const char* what) {
  REQUIRE(got.size() == want.size());
  REQUIRE(abs_terms.size() == want.size());
  std::size_t bad = 0, first_bad = 0;
  double worst = 0; // max |got - want| / bound
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double x = load_as<double>(got[i]), r = want[i], a = abs_terms[i];
    const double lim = rel * a + u_o * (std::fabs(r) + rel * a) + 1e-30;
    const double err = std::fabs(x - r);
    if (!(err <= lim) && bad++ == 0) first_bad = i;
    if (err / lim > worst) worst = err / lim;
  }
  CAPTURE(what);
  CAPTURE(rel);
  CAPTURE(worst);
  CAPTURE(bad);
  CAPTURE(first_bad);
  CHECK(bad == 0);
}

template <class Backend, class Act>
void check_gla_rounded(const Backend& be, const gla_rounded_case& c) {
  const bool packed = !c.lengths.empty();
  std::vector<std::int64_t> cu;
  index_t T = c.T, B = c.B;
  if (packed) {
    cu.push_back(0);
    for (index_t L : c.lengths)
      cu.push_back(cu.back() + L);
    T = index_t(cu.back());
    B = 1;
  }
  const index_t N = packed ? index_t(c.lengths.size()) : B, H = c.H, K = c.K, V = c.V;
  CAPTURE(B);
  CAPTURE(H);
  CAPTURE(T);
  CAPTURE(K);
  CAPTURE(V);
  CAPTURE(N);
  CAPTURE(c.slots);
  CAPTURE(c.with_initial);
  CAPTURE(c.in_place);
  CAPTURE(c.positive);
  CAPTURE(int(c.decays));
  CAPTURE(c.chunk);
  CAPTURE(to_string(dtype_of<Act>::value));
  auto r = rng(std::uint64_t(T * 7919 + K * 31 + V * 3 + N * 101 + 7 * c.slots + 13 * c.positive +
                             131 * int(c.decays)));
  gla_inputs<Act, float> in(r, B, H, T, K, V, c.decays);
  if (c.positive) {
    for (auto& x : in.q)
      x = store_as<Act>(std::fabs(load_as<double>(x)));
    for (auto& x : in.k)
      x = std::fabs(x);
    for (auto& x : in.v)
      x = store_as<Act>(std::fabs(load_as<double>(x)));
  }
  const std::size_t one = std::size_t(H * K * V);
  const index_t P = c.slots ? N + 3 : N;
  std::vector<std::int32_t> slot;
  if (c.slots) {
    std::vector<std::int32_t> perm(static_cast<std::size_t>(P));
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), r);
    for (index_t n = 0; n < N; ++n)
      slot.push_back(std::size_t(n) < c.padding.size() && c.padding[std::size_t(n)]
                         ? -1
                         : perm[std::size_t(n)]);
    if (!c.given_slots.empty()) slot = c.given_slots;
    REQUIRE(index_t(slot.size()) == N);
  }
  // A sequence's pool row, or -1 when it is skipped (padding, or a slot outside the pool).
  auto slot_of = [&](index_t n) {
    const index_t p = c.slots ? index_t(slot[std::size_t(n)]) : n;
    return p >= 0 && p < P ? p : index_t(-1);
  };
  const std::vector<float> pool0 =
      uniform<float>(r, std::size_t(P) * one, c.positive ? 0.0 : -1.0, 1.0);
  const std::vector<float> pool1_0 = uniform<float>(r, std::size_t(P) * one, 5.0, 6.0);
  std::vector<Act> o(in.v.size());
  poison(o);

  backend_arrays<Backend> mem(be);
  Act* d_o = mem.put(o);
  float* d_pool0 = mem.put(pool0);
  float* d_pool1 = c.in_place ? d_pool0 : mem.put(pool1_0);
  auto a = gla_views<Act, float, float>(B, H, T, K, V, mem.put(in.q), mem.put(in.k), mem.put(in.v),
                                        mem.put(in.g), d_o, c.with_initial ? d_pool0 : nullptr, P,
                                        d_pool1, P, packed ? mem.put(cu) : nullptr, N, in.scale);
  if (c.slots) a.slot = mem.put(slot);
  const status st = gla_run(be, a, gla_mode::chunked, c.chunk);
  REQUIRE_MESSAGE(st.ok(), to_string(st.code), ": ", st.what);
  std::vector<float> pool1(pool0.size()), pool0_after(pool0.size());
  mem.get(o, d_o);
  mem.get(pool1, d_pool1);
  mem.get(pool0_after, d_pool0);

  // The reference on what the tensor cores multiply, and on |inputs| for the sums of |terms|.
  gla_inputs<Act, float> rin = in, ain = in;
  rin.q = round_bf16(in.q);
  rin.k = round_bf16(in.k);
  rin.v = round_bf16(in.v);
  ain.q = rin.q;
  ain.k = rin.k;
  ain.v = rin.v;
  for (auto& x : ain.q)
    x = store_as<Act>(std::fabs(load_as<double>(x)));
  for (auto& x : ain.k)
    x = std::fabs(x);
  for (auto& x : ain.v)
    x = store_as<Act>(std::fabs(load_as<double>(x)));
  std::vector<float> s0, s0_abs;
  if (c.with_initial) {
    s0.assign(std::size_t(N) * one, 0.0f);
    for (index_t n = 0; n < N; ++n)
      if (slot_of(n) >= 0)
        std::copy(pool0.begin() + slot_of(n) * index_t(one),
                  pool0.begin() + (slot_of(n) + 1) * index_t(one), s0.begin() + n * index_t(one));
    s0_abs = s0;
    for (auto& x : s0_abs)
      x = std::fabs(x);
  }
  std::vector<double> want_o, want_fs, abs_o, abs_fs;
  gla_reference(rin, s0, cu, want_o, want_fs);
  gla_reference(ain, s0_abs, cu, abs_o, abs_fs);

  index_t n_max = 0;
  for (index_t n = 0; n < N; ++n)
    n_max = std::max<index_t>(n_max, packed ? c.lengths[std::size_t(n)] : T);
  const gla_rounded_bound bound = gla_rounded_tol<Act>(K, n_max);

  // o: the rows of padding sequences stay poisoned; the others within the bound.
  std::vector<bool> skip(std::size_t(B * H * T), false); // (B, H, T) rows of V
  for (index_t n = 0; n < N; ++n) {
    if (slot_of(n) >= 0) continue;
    const index_t bn = packed ? 0 : n;
    const index_t t0 = packed ? index_t(cu[std::size_t(n)]) : 0;
    const index_t t1 = packed ? index_t(cu[std::size_t(n) + 1]) : T;
    for (index_t t = t0; t < t1; ++t)
      for (index_t hh = 0; hh < H; ++hh)
        skip[std::size_t((bn * H + hh) * T + t)] = true;
  }
  for (std::size_t i = 0; i < want_o.size(); ++i) // the reference ran every sequence
    if (skip[i / std::size_t(V)]) want_o[i] = abs_o[i] = std::nan("");
  std::vector<double> abs_o_kept = abs_o;
  {
    std::vector<Act> o_copy = o;
    check_skipped_rows(o_copy, abs_o_kept, std::size_t(V), skip);
  }
  check_skipped_rows(o, want_o, std::size_t(V), skip);
  check_gla_rounded_close(o, want_o, abs_o_kept, bound.rel_o, bound.u_o, "o");

  // Pool rows: the rows the sequences write within the bound, every other row bit for bit as it
  // was; the initial pool only read unless it is the final one.
  const std::vector<float>& before = c.in_place ? pool0 : pool1_0;
  std::vector<bool> written(static_cast<std::size_t>(P), false);
  for (index_t n = 0; n < N; ++n) {
    const index_t p = slot_of(n);
    if (p < 0) continue;
    CAPTURE(n);
    written[std::size_t(p)] = true;
    const std::vector<float> got(pool1.begin() + p * index_t(one),
                                 pool1.begin() + (p + 1) * index_t(one));
    const std::vector<double> want(want_fs.begin() + n * index_t(one),
                                   want_fs.begin() + (n + 1) * index_t(one));
    const std::vector<double> at(abs_fs.begin() + n * index_t(one),
                                 abs_fs.begin() + (n + 1) * index_t(one));
    check_gla_rounded_close(got, want, at, bound.rel_s, 0.0, "final_state");
  }
  for (index_t p = 0; p < P; ++p) {
    if (written[std::size_t(p)]) continue;
    CAPTURE(p);
    CHECK(std::memcmp(pool1.data() + p * index_t(one), before.data() + p * index_t(one),
                      one * sizeof(float)) == 0);
  }
  if (!c.in_place)
    CHECK(std::memcmp(pool0_after.data(), pool0.data(), pool0.size() * sizeof(float)) == 0);
}

/// The rounded-mode cases (the backend passed with be.matmul already set to rounded: CUDA's
/// tensor-core kernel for K <= 128, chunks of 64 tokens in sub-chunks of 16, tiles of the value
/// columns that the shape or be.tuning chooses).
template <class Backend> void check_gla_rounded_all(const Backend& be) {
  using D = gla_decays;
  auto run = [&](auto act, gla_rounded_case c) {
    check_gla_rounded<Backend, decltype(act)>(be, c);
  };
  gla_rounded_case c;
  // Batched rows: whole chunks, a partial last chunk, V past a tile, both K buckets (and K below
  // a bucket), with and without an initial state, positive and signed inputs.
  for (bool positive : {true, false}) {
    c = {};
    c.positive = positive;
    c.B = 2, c.H = 2, c.T = 200, c.K = 64, c.V = 130;
    run(float{}, c);
    c.K = 128, c.T = 77, c.V = 64, c.with_initial = false;
    run(float{}, c);
    c.K = 100, c.T = 129, c.V = 65, c.with_initial = true, c.decays = D::extreme;
    run(float{}, c);
    c.K = 37, c.T = 64, c.V = 33, c.B = 1, c.decays = D::huge;
    run(float{}, c);
  }
  // Packed sequences of uneven lengths (1, not multiples of 16 or 64, empty), slots permuted in
  // a larger pool, padding sequences (their o rows and pool rows untouched), in place or not.
  for (bool in_place : {false, true})
    for (D d : {D::mild, D::extreme, D::huge}) {
      c = {};
      c.lengths = {1, 17, 0, 64, 130, 5, 63, 200, 16};
      c.padding = {false, false, false, false, true, false, true, false, false};
      c.slots = true, c.in_place = in_place, c.decays = d, c.positive = d != D::extreme;
      c.H = 2, c.K = 64, c.V = 100;
      run(float{}, c);
      c.K = 128, c.V = 70;
      run(float{}, c);
    }
  c = {};
  c.lengths = {33, 1, 90};
  c.slots = true, c.with_initial = false, c.K = 64, c.V = 64, c.positive = true;
  run(float{}, c);
  // bf16 (the model's other dtype: the input rounding is exact) and f16 activations; every chunk
  // size asked for runs chunks of 64.
  c = {};
  c.B = 2, c.T = 150, c.K = 64, c.V = 192, c.positive = true;
  run(bf16{}, c);
  c.lengths = {70, 3, 100}, c.slots = true, c.padding = {false, true, false}, c.in_place = true;
  c.decays = D::extreme, c.positive = false, c.K = 128, c.V = 80;
  run(bf16{}, c);
  c = {};
  c.T = 90, c.K = 64, c.V = 40, c.chunk = 16, c.positive = true;
  run(f16{}, c);
  c.chunk = 128, c.decays = D::huge;
  run(float{}, c);
  // One long sequence: T = 4096 (64 chunks through the state), mild and near-zero-heavy gates.
  c = {};
  c.T = 4096, c.K = 64, c.V = 72, c.positive = true;
  run(float{}, c);
  c.decays = D::extreme, c.positive = false, c.V = 40;
  run(bf16{}, c);
  // No token at all; sequences with no token (the final state is the initial one).
  c = {};
  c.lengths = {0, 0}, c.slots = true, c.K = 64, c.V = 16;
  run(float{}, c);
  // Key dims past the tensor-core kernel run the f32 kernel in the rounded mode too.
  check_gla<Backend, float, float>(be, gla_mode::chunked, 64, 1, 1, 100, 200, 40, {}, true, true);
}

// ---- device backends: what the host would reject is skipped, never out of bounds ----

/// Sequences whose slot is -1 (with tokens), below -1 or past a pool are skipped: their o rows
/// and every pool row stay as they were; the other sequences are computed. Offsets that are not
/// valid (decreasing, past T) stay in bounds (compute-sanitizer memcheck checks that on the GPU).
template <class Backend> void check_gla_skipped_sequences(const Backend& be) {
  auto r = rng(41);
  const index_t H = 1, K = 16, V = 40, P = 4;
  const std::vector<std::int64_t> cu = {0, 10, 30, 31, 45, 60};
  const std::vector<std::int32_t> slot = {-1, 2, 7, -5, 0}; // sequences 0, 2, 3 skipped
  const index_t N = index_t(slot.size()), T = index_t(cu.back());
  const gla_inputs<float, float> in(r, 1, H, T, K, V, gla_decays::mild);
  const std::size_t one = std::size_t(H * K * V);
  const std::vector<float> pool0 = uniform<float>(r, std::size_t(P) * one);
  for (gla_mode mode : {gla_mode::scan, gla_mode::chunked}) {
    CAPTURE(int(mode));
    std::vector<float> o(in.v.size()), pool = pool0;
    poison(o);
    backend_arrays<Backend> mem(be);
    float *d_o = mem.put(o), *d_pool = mem.put(pool);
    auto a = gla_views<float, float, float>(1, H, T, K, V, mem.put(in.q), mem.put(in.k),
                                            mem.put(in.v), mem.put(in.g), d_o, d_pool, P, d_pool, P,
                                            mem.put(cu), N, in.scale);
    a.slot = mem.put(slot);
    REQUIRE(gla_run(be, a, mode, 16).ok());
    mem.get(o, d_o);
    mem.get(pool, d_pool);
    for (index_t n = 0; n < N; ++n) {
      CAPTURE(n);
      const auto on = gla_slice_t(o, 1, H, T, V, cu[std::size_t(n)], cu[std::size_t(n) + 1]);
      const std::int32_t s = slot[std::size_t(n)];
      if (s < 0 || s >= P) {
        CHECK(all_nan(on));
        continue;
      }
      const auto one_in = gla_slice_inputs(in, cu[std::size_t(n)], cu[std::size_t(n) + 1]);
      const std::vector<float> s0(pool0.begin() + s * index_t(one),
                                  pool0.begin() + (s + 1) * index_t(one));
      std::vector<double> want_o, want_fs;
      gla_reference(one_in, s0, {}, want_o, want_fs);
      check_close(on, want_o, 1e-5, 0.0, "o");
      const std::vector<float> fs(pool.begin() + s * index_t(one),
                                  pool.begin() + (s + 1) * index_t(one));
      check_close(fs, want_fs, 1e-5, 0.0, "final_state");
    }
    for (index_t p : {1, 3}) // slots no valid sequence uses
      CHECK(std::memcmp(pool.data() + p * index_t(one), pool0.data() + p * index_t(one),
                        one * sizeof(float)) == 0);
    // Offsets no host backend would take: every access stays inside q, k, v, g, o.
    const std::vector<std::int64_t> bad_cu = {0, 50, 20, 1000000, -9, T};
    const std::vector<std::int32_t> fine = {0, 1, 2, 3, -1};
    a.cu_seqlens = mem.put(bad_cu);
    a.slot = mem.put(fine);
    CHECK(gla_run(be, a, mode, 16).ok());
    CHECK(synchronize(be).ok());
  }
}

} // namespace rodimus::test
