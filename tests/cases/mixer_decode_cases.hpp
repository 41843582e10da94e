// mixer_decode on any backend against the scalar reference, which is the composition of the scalar
// [linear,] channel_gate, ddts, gla_decode and scale_add (one body, stamped per backend: see
// support/backend_support.hpp). Fresh random inputs: gate pre-activations over -8 .. 8, memory
// gates from weak to strong decay (-5 .. 8), with and without the memory-gate bias, one all-zero
// key row (the normalize_eps clamp) where M > 1; slot-indexed pools in random order with padding
// rows (-1), unused slots and padded state rows (checked bit for bit after the call); o poisoned
// with NaN before every call (padding rows must still be NaN after it); two steps in a row, so the
// second reads a state the backend wrote. Shapes reach every CUDA tile (narrow and wide 16-byte
// tiles, the scalar-access tile for odd E or odd row strides) and every MaxK bucket (N = 16, 48,
// 100, 256). CUDA only: rows whose slot is outside the pool are skipped like padding
// (out_of_range > 0; the host backends refuse them, test_cpu_mixer_decode.cpp).
//
// The low-rank form (R > 0: h (M, R) and ch_gate_up (E, R) in UpWeight = float, bf16 or f16
// instead of u_preact) runs the same body: h over -2 .. 2, the weights over -1 .. 1 (then u_pre
// is about as large as above at R = 32), h with a padded row stride for odd R; R in {1, 7, 32}
// across narrow and wide tiles, a partial last tile and the scalar-access tile. Both sides read
// the same UpWeight values; the reference sums in f64 (scalar linear), the backends in f32: at most
// R u_32 sum_r |h w| apart (2e-6 of that sum at R = 32, typically far less), the order of the
// channel gate's own f32 error, so the tolerances stay those of the u_preact form.
// Bad arguments of that form: both forms or neither, wrong shapes, null pointers.
//
// Tolerances (max|got - want| <= rel * max(1, max|want|)): o 5e-5, state 3e-5. f32 on both sides
// for the gates; the reference differs from a backend by the channel gate (1e-5 of |u|:
// channel_gate_cases.hpp), DDTS (1e-5 of k_hat and log_decay: ddts_cases.hpp; the gates here stay
// moderate) and the GLA step in f32 (2e-5 of |o|: tests/cuda/test_gla_decode.cu), each carried
// once through S = decay * S + k_hat^T u (|S| ~ 1, |k_hat u| <= beta |u| ~ a few) and o = scale
// q . S + c w.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <vector>

#include "rodimus/backend/scalar/mixer_decode.hpp"
#include "support/backend_support.hpp"
#include "support/primitive_support.hpp"

namespace rodimus::test {

struct mixer_decode_case {
  index_t M, N, E, P;
  bool slots;         // a slot array (else slot[m] = m)
  int padding;        // rows with slot -1
  int out_of_range;   // rows with a slot >= P (CUDA only: skipped like padding)
  index_t row_pad;    // extra floats at the end of each state row (stride[2] = E + row_pad)
  bool mem_gate_bias; // with the memory-gate bias
  index_t R = 0;      // > 0: the low-rank form (h and ch_gate_up of rank R), else u_preact
};

/// One case; UpWeight is ch_gate_up's dtype in the low-rank form (c.R > 0).
template <class UpWeight = float, class Backend>
void check_mixer_decode(const Backend& be, const mixer_decode_case& c, std::uint64_t salt) {
  const index_t M = c.M, N = c.N, E = c.E, P = c.P, ld = E + c.row_pad, R = c.R;
  const index_t h_ld = R + R % 2; // odd R: a padded row stride
  INFO("M=" << M << " N=" << N << " E=" << E << " P=" << P << " slots=" << c.slots
            << " padding=" << c.padding << " out_of_range=" << c.out_of_range
            << " row_pad=" << c.row_pad << " bias=" << c.mem_gate_bias << " R=" << R
            << " up_weight=" << to_string(dtype_of<UpWeight>::value));
  auto g = rng(salt);

  // Slots: distinct pool rows in random order, then padding and out-of-range rows.
  std::vector<std::int32_t> slot_be(static_cast<std::size_t>(M)), slot_ref(slot_be.size());
  if (c.slots) {
    REQUIRE(P >= M);
    std::vector<std::int32_t> perm(static_cast<std::size_t>(P));
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), g);
    std::copy(perm.begin(), perm.begin() + std::ptrdiff_t(M), slot_be.begin());
    slot_ref = slot_be;
    std::vector<index_t> rows(static_cast<std::size_t>(M));
    std::iota(rows.begin(), rows.end(), 0);
    std::shuffle(rows.begin(), rows.end(), g);
    REQUIRE(c.padding + c.out_of_range <= M);
    for (int i = 0; i < c.padding; ++i)
      slot_be[std::size_t(rows[std::size_t(i)])] = slot_ref[std::size_t(rows[std::size_t(i)])] =
          padding_slot;
    for (int i = 0; i < c.out_of_range; ++i) {
      const std::size_t r = std::size_t(rows[std::size_t(c.padding + i)]);
      slot_be[r] = std::int32_t(P + i * 7);
      slot_ref[r] = padding_slot;
    }
  } else {
    std::iota(slot_ref.begin(), slot_ref.end(), 0);
  }

  const std::size_t pool_n = std::size_t(P * N * ld);
  const std::vector<float> pool0 = uniform<float>(g, pool_n);
  std::vector<float> pool_ref = pool0;
  const index_t pool_shape[4] = {P, 1, N, E};
  const index_t pool_stride[4] = {N * ld, N * ld, ld, 1};
  backend_arrays<Backend> mem(be);
  float* pool_be = mem.put(pool0);
  const std::int32_t* slot_dev = c.slots ? mem.put(slot_be) : nullptr;
  const auto ch_bias = uniform<float>(g, std::size_t(E), -1, 1);
  const auto rw = uniform<float>(g, std::size_t(E), -1, 1);
  const auto mg_bias = uniform<float>(g, std::size_t(2 * N), -1, 1);
  const auto up_w = uniform<UpWeight>(g, std::size_t(E * R), -1, 1);
  const UpWeight* up_w_be = R > 0 ? mem.put(up_w) : nullptr;
  const index_t h_shape[2] = {M, R}, h_stride[2] = {h_ld, 1};

  for (int step = 0; step < 2; ++step) {
    INFO("step " << step);
    const auto x = uniform<float>(g, std::size_t(M * E), -3, 3);
    const auto u = uniform<float>(g, std::size_t(R > 0 ? 0 : M * E), -8, 8);
    const auto h = uniform<float>(g, std::size_t(M * h_ld), -2, 2);
    const auto cv = uniform<float>(g, std::size_t(M * E), -2, 2);
    const auto r = uniform<float>(g, std::size_t(M * N), -1, 1);
    auto k = uniform<float>(g, std::size_t(M * N), -1, 1);
    if (M > 1)
      std::fill(k.begin() + std::ptrdiff_t(N), k.begin() + std::ptrdiff_t(2 * N), 0.0f); // row 1
    std::vector<float> psi(std::size_t(M * 2 * N));
    for (index_t m = 0; m < M; ++m) {
      const auto sel = uniform<float>(g, std::size_t(N), -5, 8);
      const auto tau = uniform<float>(g, std::size_t(N), -5, 5);
      std::copy(sel.begin(), sel.end(), psi.begin() + std::ptrdiff_t(m * 2 * N));
      std::copy(tau.begin(), tau.end(), psi.begin() + std::ptrdiff_t(m * 2 * N + N));
    }
    std::vector<float> o_ref(std::size_t(M * E));
    poison(o_ref);
    float* o_be = mem.put(o_ref);

    mixer_decode_args<UpWeight> ref;
    ref.x = make_view<const float>(x.data(), M, E);
    if (R > 0) {
      ref.h = tensor_view<const float, 2>::strided(h.data(), h_shape, h_stride);
      ref.ch_gate_up = make_view<const UpWeight>(up_w.data(), E, R);
    } else {
      ref.u_preact = make_view<const float>(u.data(), M, E);
    }
    ref.ch_gate_bias = make_view<const float>(ch_bias.data(), E);
    ref.c = make_view<const float>(cv.data(), M, E);
    ref.residual_weight = make_view<const float>(rw.data(), E);
    ref.r = make_view<const float>(r.data(), M, N);
    ref.k = make_view<const float>(k.data(), M, N);
    ref.psi = make_view<const float>(psi.data(), M, 2 * N);
    if (c.mem_gate_bias) ref.mem_gate_bias = make_view<const float>(mg_bias.data(), 2 * N);
    ref.o = make_view(o_ref.data(), M, E);
    ref.state = tensor_view<float, 4>::strided(pool_ref.data(), pool_shape, pool_stride);
    ref.slot = c.slots ? slot_ref.data() : nullptr;
    ref.scale = 1.0f / std::sqrt(float(N));
    ref.normalize_eps = 1e-12f;

    mixer_decode_args<UpWeight> a = ref;
    a.x = make_view<const float>(mem.put(x), M, E);
    if (R > 0) {
      a.h = tensor_view<const float, 2>::strided(mem.put(h), h_shape, h_stride);
      a.ch_gate_up = make_view<const UpWeight>(up_w_be, E, R);
    } else {
      a.u_preact = make_view<const float>(mem.put(u), M, E);
    }
    a.ch_gate_bias = make_view<const float>(mem.put(ch_bias), E);
    a.c = make_view<const float>(mem.put(cv), M, E);
    a.residual_weight = make_view<const float>(mem.put(rw), E);
    a.r = make_view<const float>(mem.put(r), M, N);
    a.k = make_view<const float>(mem.put(k), M, N);
    a.psi = make_view<const float>(mem.put(psi), M, 2 * N);
    if (c.mem_gate_bias) a.mem_gate_bias = make_view<const float>(mem.put(mg_bias), 2 * N);
    a.o = make_view(o_be, M, E);
    a.state = tensor_view<float, 4>::strided(pool_be, pool_shape, pool_stride);
    a.slot = slot_dev;
    backend_workspace<Backend> ws(be, mixer_decode_workspace_bytes(be, a));
    const status s = mixer_decode(be, a, ws.get());
    INFO("status: " << to_string(s));
    REQUIRE(s.ok());

    workspace_buffer ws_ref(mixer_decode_workspace_bytes(scalar{}, ref));
    REQUIRE(mixer_decode(scalar{}, ref, ws_ref.get()).ok());

    std::vector<float> o(o_ref.size());
    mem.get(o, o_be);
    std::vector<bool> skip(static_cast<std::size_t>(M), false);
    for (index_t m = 0; m < M; ++m)
      skip[std::size_t(m)] = slot_ref[std::size_t(m)] < 0;
    check_skipped_rows(o, o_ref, std::size_t(E), skip); // padding rows: o still NaN
    check_close(o, o_ref, 5e-5, 1.0, "o");
  }

  // The pool: the rows of the batch's slots close to the reference; every other float (unused
  // slots, padding rows' slots, the row padding) bit for bit as it was.
  std::vector<float> pool(pool_n);
  mem.get(pool, pool_be);
  const std::size_t slab = std::size_t(N * ld);
  std::vector<bool> used(static_cast<std::size_t>(P), false);
  for (index_t m = 0; m < M; ++m)
    if (slot_ref[std::size_t(m)] >= 0) used[std::size_t(slot_ref[std::size_t(m)])] = true;
  std::vector<float> got, want;
  int untouched_bad = 0;
  for (index_t p = 0; p < P; ++p)
    for (std::size_t e = 0; e < slab; ++e) {
      const std::size_t i = std::size_t(p) * slab + e;
      if (used[std::size_t(p)] && index_t(e % std::size_t(ld)) < E) {
        got.push_back(pool[i]);
        want.push_back(pool_ref[i]);
      } else if (std::memcmp(&pool[i], &pool0[i], sizeof(float)) != 0) {
        ++untouched_bad;
      }
    }
  CHECK(untouched_bad == 0);
  if (!want.empty()) check_close(got, want, 3e-5, 1.0, "state");
}

template <class Backend> void check_mixer_decode_bad_arguments(const Backend& be) {
  const index_t M = 2, N = 4, E = 8, P = 3;
  const std::vector<float> rows_e(static_cast<std::size_t>(M * E)),
      rows_n(static_cast<std::size_t>(M * N)), rows_2n(static_cast<std::size_t>(M * 2 * N)),
      vec_e(static_cast<std::size_t>(E)), vec_2n(static_cast<std::size_t>(2 * N)),
      pool(static_cast<std::size_t>(P * N * E));
  backend_arrays<Backend> mem(be);
  float* o = mem.put(rows_e);
  float* st = mem.put(pool);
  mixer_decode_args<> valid;
  valid.x = make_view<const float>(mem.put(rows_e), M, E);
  valid.u_preact = make_view<const float>(mem.put(rows_e), M, E);
  valid.ch_gate_bias = make_view<const float>(mem.put(vec_e), E);
  valid.c = make_view<const float>(mem.put(rows_e), M, E);
  valid.residual_weight = make_view<const float>(mem.put(vec_e), E);
  valid.r = make_view<const float>(mem.put(rows_n), M, N);
  valid.k = make_view<const float>(mem.put(rows_n), M, N);
  valid.psi = make_view<const float>(mem.put(rows_2n), M, 2 * N);
  valid.mem_gate_bias = make_view<const float>(mem.put(vec_2n), 2 * N);
  valid.o = make_view(o, M, E);
  valid.state = make_view(st, P, index_t(1), N, E);
  using A = mixer_decode_args<>;
  const auto run = [&](const A& a) {
    backend_workspace<Backend> ws(be, mixer_decode_workspace_bytes(be, valid));
    return mixer_decode(be, a, ws.get());
  };
  check_bad_cases(
      valid, run,
      {{"no columns", [](A& a) { a.x.shape[1] = 0; }, status_code::bad_shape, "x"},
       {"negative rows", [](A& a) { a.x.shape[0] = -1; }, status_code::bad_shape, "x"},
       {"u_preact shape", [](A& a) { a.u_preact.shape[1] = E + 1; }, status_code::bad_shape,
        "u_preact"},
       {"neither u_preact nor h", [](A& a) { a.u_preact = {}; }, status_code::bad_argument,
        "u_preact"},
       {"null u_preact", [](A& a) { a.u_preact.data = nullptr; }, status_code::null_pointer,
        "u_preact"},
       {"ch_gate_bias size", [](A& a) { a.ch_gate_bias.shape[0] = E - 1; }, status_code::bad_shape,
        "ch_gate_bias"},
       {"c rows", [](A& a) { a.c.shape[0] = M + 1; }, status_code::bad_shape, "c"},
       {"residual_weight size", [](A& a) { a.residual_weight.shape[0] = 1; },
        status_code::bad_shape, "residual_weight"},
       {"no key channels", [](A& a) { a.r.shape[1] = 0; }, status_code::bad_shape, "r"},
       {"k shape", [](A& a) { a.k.shape[1] = N + 1; }, status_code::bad_shape, "k"},
       {"psi width", [](A& a) { a.psi.shape[1] = N; }, status_code::bad_shape, "psi"},
       {"mem_gate_bias size", [](A& a) { a.mem_gate_bias.shape[0] = N; }, status_code::bad_shape,
        "mem_gate_bias"},
       {"o shape", [](A& a) { a.o.shape[1] = E - 1; }, status_code::bad_shape, "o"},
       {"two heads", [](A& a) { a.state.shape[1] = 2; }, status_code::bad_shape, "state"},
       {"pool below M without slots", [](A& a) { a.state.shape[0] = M - 1; },
        status_code::bad_shape, "state"},
       {"null x", [](A& a) { a.x.data = nullptr; }, status_code::null_pointer, "x"},
       {"null ch_gate_bias", [](A& a) { a.ch_gate_bias.data = nullptr; }, status_code::null_pointer,
        "ch_gate_bias"},
       {"null residual_weight", [](A& a) { a.residual_weight.data = nullptr; },
        status_code::null_pointer, "residual_weight"},
       {"null psi", [](A& a) { a.psi.data = nullptr; }, status_code::null_pointer, "psi"},
       {"null o", [](A& a) { a.o.data = nullptr; }, status_code::null_pointer, "o"},
       {"null state", [](A& a) { a.state.data = nullptr; }, status_code::null_pointer, "state"},
       {"scale NaN", [](A& a) { a.scale = std::nanf(""); }, status_code::bad_argument, "scale"},
       {"eps 0", [](A& a) { a.normalize_eps = 0.0f; }, status_code::bad_argument,
        "normalize_eps"}});

  // The low-rank form (bf16 weights): what differs from the u_preact form.
  const index_t R = 3;
  const std::vector<float> rows_r(static_cast<std::size_t>(M * R));
  const std::vector<bf16> up(static_cast<std::size_t>(E * R));
  mixer_decode_args<bf16> low;
  low.x = valid.x;
  low.h = make_view<const float>(mem.put(rows_r), M, R);
  low.ch_gate_up = make_view<const bf16>(mem.put(up), E, R);
  low.ch_gate_bias = valid.ch_gate_bias;
  low.c = valid.c;
  low.residual_weight = valid.residual_weight;
  low.r = valid.r;
  low.k = valid.k;
  low.psi = valid.psi;
  low.mem_gate_bias = valid.mem_gate_bias;
  low.o = valid.o;
  low.state = valid.state;
  using L = mixer_decode_args<bf16>;
  const auto run_low = [&](const L& a) {
    backend_workspace<Backend> ws(be, mixer_decode_workspace_bytes(be, low));
    return mixer_decode(be, a, ws.get());
  };
  check_bad_cases(
      low, run_low,
      {{"both forms", [](L& a) { a.u_preact = a.x; }, status_code::bad_argument, "h"},
       {"no h", [](L& a) { a.h = {}; }, status_code::bad_shape, "h"},
       {"no ch_gate_up", [](L& a) { a.ch_gate_up = {}; }, status_code::bad_shape, "ch_gate_up"},
       {"rank 0", [](L& a) { a.h.shape[1] = 0; }, status_code::bad_shape, "h"},
       {"h rows", [](L& a) { a.h.shape[0] = M + 1; }, status_code::bad_shape, "h"},
       {"ch_gate_up rows", [](L& a) { a.ch_gate_up.shape[0] = E - 1; }, status_code::bad_shape,
        "ch_gate_up"},
       {"ch_gate_up rank", [](L& a) { a.ch_gate_up.shape[1] = R + 1; }, status_code::bad_shape,
        "ch_gate_up"},
       {"null h", [](L& a) { a.h.data = nullptr; }, status_code::null_pointer, "h"},
       {"null ch_gate_up", [](L& a) { a.ch_gate_up.data = nullptr; }, status_code::null_pointer,
        "ch_gate_up"},
       {"x columns", [](L& a) { a.x.shape[1] = E + 1; }, status_code::bad_shape, "ch_gate_up"}});
  // Nothing was written by any of them.
  std::vector<float> o_after(rows_e.size()), pool_after(pool.size());
  mem.get(o_after, o);
  mem.get(pool_after, st);
  CHECK(o_after == rows_e);
  CHECK(pool_after == pool);
}

/// The cases every backend runs (out_of_range stays 0: host backends refuse such slots).
template <class Backend> void check_mixer_decode_all(const Backend& be) {
  const mixer_decode_case cases[] = {
      // M = 1 at the Rodimus shape (N = 64, E = 4096): narrow 16-byte tiles, MaxK 64
      {1, 64, 4096, 4, true, 0, 0, 0, true},
      // wide 16-byte tiles on CUDA (12 x 32 CTAs >= 264), padding rows
      {12, 64, 4096, 16, true, 3, 0, 0, true},
      // N below its bucket (MaxK 64, two key loads per lane), E not a multiple of a tile, a padded
      // state row of 8 floats (still 16-byte tiles), no memory-gate bias
      {3, 48, 200, 5, true, 1, 0, 8, false},
      // odd E and an odd row stride: the scalar-access tile, MaxK 128
      {5, 100, 77, 9, true, 1, 0, 3, true},
      // no slot array: slot[m] = m, pool rows >= M untouched; MaxK 256
      {4, 256, 512, 6, false, 0, 0, 0, true},
      // small N (MaxK 32), many rows, partial last tile
      {70, 16, 160, 80, true, 5, 0, 0, true},
      // no rows
      {0, 64, 128, 2, true, 0, 0, 0, true},
  };
  std::uint64_t salt = 700;
  for (const auto& c : cases)
    check_mixer_decode(be, c, ++salt);
  // The low-rank form (last field R), bf16 weights unless said otherwise:
  // the model's shape (N = 64, E = 4096, R = 32), narrow 16-byte tiles; f32 weights
  check_mixer_decode<bf16>(be, {1, 64, 4096, 4, true, 0, 0, 0, true, 32}, 731);
  check_mixer_decode<float>(be, {1, 64, 4096, 4, true, 0, 0, 0, true, 32}, 732);
  // wide tiles with padding rows (R = 32: 16 products per thread); R = 7 below the parts of a
  // wide tile's column, f32 weights
  check_mixer_decode<bf16>(be, {12, 64, 4096, 16, true, 3, 0, 0, true, 32}, 733);
  check_mixer_decode<float>(be, {40, 32, 1024, 44, true, 4, 0, 0, true, 7}, 734);
  // R = 7 (fewer products than a narrow tile's 8 parts: some threads add none), partial last
  // tile, padded state rows, no memory-gate bias
  check_mixer_decode<bf16>(be, {3, 48, 200, 5, true, 1, 0, 8, false, 7}, 735);
  // R = 1, the scalar-access tile (odd E, odd state row stride), f32 weights
  check_mixer_decode<float>(be, {5, 100, 77, 9, true, 1, 0, 3, true, 1}, 736);
  // no slot array, f16 weights; many rows of small N; no rows
  check_mixer_decode<f16>(be, {4, 256, 512, 6, false, 0, 0, 0, true, 32}, 737);
  check_mixer_decode<bf16>(be, {70, 16, 160, 80, true, 5, 0, 0, true, 7}, 738);
  check_mixer_decode<bf16>(be, {0, 64, 128, 2, true, 0, 0, 0, true, 32}, 739);
  check_mixer_decode_bad_arguments(be);
}

} // namespace rodimus::test
