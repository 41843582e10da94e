// Invariants of the GLA scalar reference on fresh random inputs: chunked == sequential for every
// chunk size and awkward lengths, state carry-over, packed varlen, slot-indexed decode, state-slot
// pools (against separate state arrays, in place, padding sequences), dtypes, extreme decays,
// strided layouts and argument validation. The shared backend body (tests/cases/gla_cases.hpp) is
// also stamped here for the reference itself in f32.
#include "cases/gla_cases.hpp"
#include "support/gla_support.hpp"
#include "support/test_support.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <string>
#include <vector>

#include "rodimus/backend/scalar/gla.hpp"

using namespace rodimus;

namespace {

double softplus(double x) { return x > 20 ? x : std::log1p(std::exp(x)); }
double sigmoid(double x) { return 1 / (1 + std::exp(-x)); }

using problem = test::gla_problem;
using result = test::gla_result;

/// Log-decays as the Rodimus mixer makes them: -softplus(sel) * sigmoid(tau); `strong` shifts sel
/// up so that decays reach about -15 per step.
std::vector<double> rodimus_log_decay(std::mt19937_64& r, std::size_t n, bool strong) {
  std::uniform_real_distribution<double> sel(strong ? 0.0 : -6.0, strong ? 15.0 : 2.0),
      tau(-3.0, 3.0);
  std::vector<double> g(n);
  for (auto& x : g)
    x = -softplus(sel(r)) * sigmoid(tau(r));
  return g;
}

problem make_problem(std::mt19937_64& r, index_t B, index_t H, index_t T, index_t K, index_t V,
                     bool with_state, bool strong = false) {
  problem p;
  p.B = B, p.H = H, p.T = T, p.K = K, p.V = V;
  p.q = test::uniform<double>(r, std::size_t(B * H * T * K));
  p.k = test::uniform<double>(r, std::size_t(B * H * T * K), -1.0, 1.0);
  for (auto& x : p.k)
    x /= std::sqrt(double(K)); // like a normalised key times beta ~ 1
  p.v = test::uniform<double>(r, std::size_t(B * H * T * V));
  p.g = rodimus_log_decay(r, std::size_t(B * H * T * K), strong);
  if (with_state) p.s0 = test::uniform<double>(r, std::size_t(B * H * K * V));
  p.scale = float(1.0 / std::sqrt(double(K)));
  return p;
}

/// Positions [t0, t1) of every (b, h) row of a (B, H, T, X) array.
std::vector<double> slice_t(const std::vector<double>& x, index_t B, index_t H, index_t T,
                            index_t X, index_t t0, index_t t1) {
  std::vector<double> out;
  for (index_t bh = 0; bh < B * H; ++bh)
    out.insert(out.end(), x.begin() + (bh * T + t0) * X, x.begin() + (bh * T + t1) * X);
  return out;
}

problem slice_problem(const problem& p, index_t t0, index_t t1) {
  problem s = p;
  s.T = t1 - t0;
  s.q = slice_t(p.q, p.B, p.H, p.T, p.K, t0, t1);
  s.k = slice_t(p.k, p.B, p.H, p.T, p.K, t0, t1);
  s.g = slice_t(p.g, p.B, p.H, p.T, p.K, t0, t1);
  s.v = slice_t(p.v, p.B, p.H, p.T, p.V, t0, t1);
  return s;
}

bool all_finite(const std::vector<double>& x) {
  for (double e : x)
    if (!std::isfinite(e)) return false;
  return true;
}

} // namespace

TEST_CASE("gla: chunked equals sequential for every chunk size and awkward lengths") {
  auto r = test::rng(11);
  for (index_t T : {1, 2, 63, 64, 65, 130, 1000}) {
    for (bool strong : {false, true}) {
      const problem p = make_problem(r, 2, 2, T, 8, 6, /*with_state=*/T % 2 == 1, strong);
      const result ref = test::run_gla<double>(p, 0);
      REQUIRE(test::max_abs(ref.o) > 0);
      for (int chunk : {16, 32, 64, 128, 1, 7}) {
        CAPTURE(T);
        CAPTURE(strong);
        CAPTURE(chunk);
        const result got = test::run_gla<double>(p, chunk);
        // Same maths in f64; only the order of the roundings differs.
        test::check_close(got.o, ref.o, 1e-11, 1.0, "o");
        test::check_close(got.final_state, ref.final_state, 1e-11, 1.0, "final_state");
      }
    }
  }
}

TEST_CASE("gla: scanning a then b through the state equals scanning a + b") {
  auto r = test::rng(12);
  const problem p = make_problem(r, 2, 3, 150, 8, 5, true);
  const result whole = test::run_gla<double>(p, 0);
  for (index_t split : {1, 37, 64, 149}) {
    for (int chunk : {0, 16, 64}) {
      CAPTURE(split);
      CAPTURE(chunk);
      const problem a = slice_problem(p, 0, split);
      problem b = slice_problem(p, split, p.T);
      const result ra = test::run_gla<double>(a, chunk);
      b.s0 = ra.final_state;
      const result rb = test::run_gla<double>(b, chunk);
      test::check_close(ra.o, slice_t(whole.o, p.B, p.H, p.T, p.V, 0, split), 1e-12, 1.0, "o of a");
      test::check_close(rb.o, slice_t(whole.o, p.B, p.H, p.T, p.V, split, p.T), 1e-12, 1.0,
                        "o of b");
      test::check_close(rb.final_state, whole.final_state, 1e-12, 1.0, "final_state");
    }
  }
}

TEST_CASE("gla: packed varlen equals one sequence at a time") {
  auto r = test::rng(13);
  const std::vector<index_t> lengths = {5, 0, 17, 1, 70, 33, 16};
  std::vector<std::int64_t> cu = {0};
  for (index_t L : lengths)
    cu.push_back(cu.back() + L);
  const index_t T = cu.back(), N = index_t(lengths.size()), H = 2, K = 6, V = 7;
  problem packed = make_problem(r, 1, H, T, K, V, false);
  packed.s0 = test::uniform<double>(r, std::size_t(N * H * K * V));
  for (int chunk : {0, 16, 32}) {
    CAPTURE(chunk);
    const result got = test::run_gla<double>(packed, chunk, &cu);
    for (index_t n = 0; n < N; ++n) {
      CAPTURE(n);
      problem one = slice_problem(packed, cu[std::size_t(n)], cu[std::size_t(n) + 1]);
      one.s0.assign(packed.s0.begin() + n * H * K * V, packed.s0.begin() + (n + 1) * H * K * V);
      const result want = test::run_gla<double>(one, 0);
      const std::vector<double> got_state(got.final_state.begin() + n * H * K * V,
                                          got.final_state.begin() + (n + 1) * H * K * V);
      test::check_close(slice_t(got.o, 1, H, T, V, cu[std::size_t(n)], cu[std::size_t(n) + 1]),
                        want.o, 1e-12, 1.0, "o");
      // A zero-length sequence passes its initial state through: compared exactly.
      test::check_close(got_state, want.final_state, lengths[std::size_t(n)] == 0 ? 0.0 : 1e-12,
                        1.0, "final_state");
    }
  }
}

TEST_CASE("gla: seq-first layout through strides equals head-first") {
  auto r = test::rng(14);
  const index_t B = 2, H = 3, T = 41, K = 5, V = 4;
  const problem p = make_problem(r, B, H, T, K, V, true);
  const result want = test::run_gla<double>(p, 0);
  // Store q, k, g, v and o as (B, T, H, X) and describe them as (B, H, T, X) with permuted strides.
  auto to_seq_first = [&](const std::vector<double>& x, index_t X) {
    std::vector<double> y(x.size());
    for (index_t b = 0; b < B; ++b)
      for (index_t h = 0; h < H; ++h)
        for (index_t t = 0; t < T; ++t)
          for (index_t e = 0; e < X; ++e)
            y[std::size_t(((b * T + t) * H + h) * X + e)] =
                x[std::size_t(((b * H + h) * T + t) * X + e)];
    return y;
  };
  const auto q = to_seq_first(p.q, K), k = to_seq_first(p.k, K), g = to_seq_first(p.g, K),
             v = to_seq_first(p.v, V);
  for (int chunk : {0, 16}) {
    std::vector<double> o(std::size_t(B * T * H * V)), fs(std::size_t(B * H * K * V));
    test::poison(o);
    test::poison(fs);
    gla_args<double, double, double> a;
    a.q = tensor_view<const double, 4>::strided(q.data(), {B, H, T, K}, {T * H * K, K, H * K, 1});
    a.k = tensor_view<const double, 4>::strided(k.data(), {B, H, T, K}, {T * H * K, K, H * K, 1});
    a.g = tensor_view<const double, 4>::strided(g.data(), {B, H, T, K}, {T * H * K, K, H * K, 1});
    a.v = tensor_view<const double, 4>::strided(v.data(), {B, H, T, V}, {T * H * V, V, H * V, 1});
    a.o = tensor_view<double, 4>::strided(o.data(), {B, H, T, V}, {T * H * V, V, H * V, 1});
    a.initial_state = make_view(p.s0.data(), B, H, K, V);
    a.final_state = make_view(fs.data(), B, H, K, V);
    a.scale = p.scale;
    test::workspace_buffer ws(gla_chunked_workspace_bytes(scalar{}, a, 16) +
                              gla_scan_workspace_bytes(scalar{}, a));
    const status s =
        chunk ? gla_chunked(scalar{}, a, chunk, ws.get()) : gla_scan(scalar{}, a, ws.get());
    REQUIRE(s.ok());
    test::check_close(o, to_seq_first(want.o, V), 1e-12, 1.0, "o");
    test::check_close(fs, want.final_state, 1e-12, 1.0, "final_state");
  }
}

TEST_CASE("gla: decode steps equal the scan") {
  auto r = test::rng(15);
  const index_t B = 3, H = 2, T = 65, K = 8, V = 6;
  const problem p = make_problem(r, B, H, T, K, V, true);
  const result want = test::run_gla<double>(p, 0);
  const result got = test::run_gla_decode<double>(p);
  test::check_close(got.o, want.o, 1e-12, 1.0, "o");
  test::check_close(got.final_state, want.final_state, 1e-12, 1.0, "state");
}

TEST_CASE("gla: slot-indexed decode equals gathered decode; padding slots untouched") {
  auto r = test::rng(16);
  const index_t P = 9, B = 6, H = 2, K = 5, V = 7;
  // Rows 1 and 4 are padding; the others use distinct slots in a random order.
  std::vector<std::int32_t> perm(P);
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), r);
  const std::vector<std::int32_t> slot = {perm[0], -1, perm[1], perm[2], -1, perm[3]};
  const problem p = make_problem(r, B, H, 1, K, V, false);
  std::vector<float> pool(std::size_t(P * H * K * V));
  for (auto& x : pool)
    x = float(std::uniform_real_distribution<double>(-1, 1)(r));
  const std::vector<float> before = pool;

  auto decode = [&](const std::int32_t* slots, std::vector<float>& states, std::vector<double>& o) {
    gla_decode_args<double, double, float> d;
    d.q = make_view(p.q.data(), B, H, K);
    d.k = make_view(p.k.data(), B, H, K);
    d.g = make_view(p.g.data(), B, H, K);
    d.v = make_view(p.v.data(), B, H, V);
    d.o = make_view(o.data(), B, H, V);
    d.state = make_view(states.data(), index_t(states.size()) / (H * K * V), H, K, V);
    d.slot = slots;
    d.scale = p.scale;
    test::workspace_buffer ws(gla_decode_workspace_bytes(scalar{}, d));
    const status s = gla_decode(scalar{}, d, ws.get());
    REQUIRE_MESSAGE(s.ok(), to_string(s.code), ": ", s.what);
  };

  std::vector<double> o(std::size_t(B * H * V));
  test::poison(o);
  decode(slot.data(), pool, o);

  // Gathered: a pool of B states in row order (padding rows get a zero state, their o ignored).
  std::vector<float> gathered(std::size_t(B * H * K * V), 0.0f);
  for (index_t b = 0; b < B; ++b)
    if (slot[std::size_t(b)] >= 0)
      std::memcpy(&gathered[std::size_t(b * H * K * V)],
                  &before[std::size_t(slot[std::size_t(b)] * H * K * V)],
                  sizeof(float) * std::size_t(H * K * V));
  std::vector<double> og(std::size_t(B * H * V));
  test::poison(og);
  decode(nullptr, gathered, og);

  const std::size_t hkv = std::size_t(H * K * V);
  for (index_t b = 0; b < B; ++b) {
    CAPTURE(b);
    const std::int32_t s = slot[std::size_t(b)];
    const std::vector<double> ob(o.begin() + b * H * V, o.begin() + (b + 1) * H * V);
    if (s < 0) {
      CHECK(test::all_nan(ob)); // padding rows: o not written (primitives/slots.hpp)
      continue;
    }
    const std::vector<double> ogb(og.begin() + b * H * V, og.begin() + (b + 1) * H * V);
    CHECK(test::max_abs(ogb) > 0);
    test::check_close(ob, ogb, 0.0, 1.0, "o"); // the same arithmetic: bit-identical
    CHECK(std::memcmp(&pool[std::size_t(s) * hkv], &gathered[std::size_t(b) * hkv],
                      hkv * sizeof(float)) == 0);
    CHECK(std::memcmp(&pool[std::size_t(s) * hkv], &before[std::size_t(s) * hkv],
                      hkv * sizeof(float)) != 0);
  }
  // Slots no row uses are untouched bit for bit.
  for (index_t s = 0; s < P; ++s) {
    if (std::find(slot.begin(), slot.end(), std::int32_t(s)) != slot.end()) continue;
    CAPTURE(s);
    CHECK(std::memcmp(&pool[std::size_t(s) * hkv], &before[std::size_t(s) * hkv],
                      hkv * sizeof(float)) == 0);
  }
}

TEST_CASE("gla: f32, bf16 and f16 storage against f64") {
  auto r = test::rng(17);
  const problem p = make_problem(r, 2, 2, 130, 8, 6, true);
  for (int chunk : {0, 16, 64}) {
    CAPTURE(chunk);
    const result exact = test::run_gla<double>(p, chunk);
    // Against f64 on the same rounded inputs (the kernel's own error): o is rounded once to Act,
    // at most the unit roundoff of Act times max|o|: f32 2^-24 = 6e-8, bf16 2^-8 = 3.9e-3,
    // f16 2^-11 = 4.9e-4; the f32 final state is rounded once (6e-8).
    {
      problem pr = p;
      pr.q = test::rounded<float>(p.q), pr.k = test::rounded<float>(p.k),
      pr.v = test::rounded<float>(p.v);
      pr.g = test::rounded<float>(p.g), pr.s0 = test::rounded<float>(p.s0);
      const result want = test::run_gla<double>(pr, chunk),
                   got = test::run_gla<float, float, float>(pr, chunk);
      test::check_close(got.o, want.o, 2e-7, 0.0, "f32 o");
      test::check_close(got.final_state, want.final_state, 2e-7, 0.0, "f32 final_state");
      // Against f64 on the unrounded inputs: input rounding 6e-8 relative each (measured 6e-8).
      test::check_close(got.o, exact.o, 1e-6, 0.0, "f32 o vs exact");
    }
    {
      problem pr = p;
      pr.q = test::rounded<bf16>(p.q), pr.v = test::rounded<bf16>(p.v);
      pr.k = test::rounded<float>(p.k), pr.g = test::rounded<float>(p.g),
      pr.s0 = test::rounded<float>(p.s0);
      const result want = test::run_gla<double>(pr, chunk),
                   got = test::run_gla<bf16, float, float>(pr, chunk);
      test::check_close(got.o, want.o, 4e-3, 0.0, "bf16 o");
      test::check_close(got.final_state, want.final_state, 2e-7, 0.0, "bf16 final_state");
      // q and v rounded to bf16 (2^-8 each) plus the output rounding (measured up to 4.4e-3).
      test::check_close(got.o, exact.o, 1.5e-2, 0.0, "bf16 o vs exact");
    }
    {
      problem pr = p;
      pr.q = test::rounded<f16>(p.q), pr.v = test::rounded<f16>(p.v),
      pr.k = test::rounded<f16>(p.k), pr.g = test::rounded<f16>(p.g);
      pr.s0 = test::rounded<float>(p.s0);
      const result want = test::run_gla<double>(pr, chunk),
                   got = test::run_gla<f16, f16, float>(pr, chunk);
      test::check_close(got.o, want.o, 1e-3, 0.0, "f16 o");
      test::check_close(got.final_state, want.final_state, 2e-7, 0.0, "f16 final_state");
      // Every input rounded to f16 (2^-11 each; g's error compounds over the decay horizon;
      // measured up to 5.2e-4).
      test::check_close(got.o, exact.o, 3e-3, 0.0, "f16 o vs exact");
    }
  }
}

TEST_CASE("gla: log-decays of -1e4 per step stay finite and exact") {
  auto r = test::rng(18);
  const index_t B = 1, H = 2, T = 300, K = 8, V = 5;
  problem p = make_problem(r, B, H, T, K, V, true);
  // Every decay -1e4: the state forgets everything at each step, so
  // o_t = scale * (q_t . k_t) v_t and final_state = k_T^T v_T exactly.
  for (auto& x : p.g)
    x = -1e4;
  for (int chunk : {0, 16, 32, 64, 128, 5}) {
    CAPTURE(chunk);
    const result got = test::run_gla<double>(p, chunk);
    REQUIRE(all_finite(got.o));
    REQUIRE(all_finite(got.final_state));
    std::vector<double> want_o(got.o.size()), want_s(got.final_state.size());
    for (index_t bh = 0; bh < B * H; ++bh) {
      for (index_t t = 0; t < T; ++t) {
        double qk = 0;
        for (index_t i = 0; i < K; ++i)
          qk += p.q[std::size_t((bh * T + t) * K + i)] * p.k[std::size_t((bh * T + t) * K + i)];
        for (index_t j = 0; j < V; ++j)
          want_o[std::size_t((bh * T + t) * V + j)] =
              double(p.scale) * qk * p.v[std::size_t((bh * T + t) * V + j)];
      }
      for (index_t i = 0; i < K; ++i)
        for (index_t j = 0; j < V; ++j)
          want_s[std::size_t((bh * K + i) * V + j)] = p.k[std::size_t((bh * T + T - 1) * K + i)] *
                                                      p.v[std::size_t((bh * T + T - 1) * V + j)];
    }
    test::check_close(got.o, want_o, 1e-12, 1.0, "o");
    test::check_close(got.final_state, want_s, 1e-12, 1.0, "final_state");
  }
  // Mixed: half the channels -1e4, the others mild, also in f32 with f32 state.
  for (std::size_t i = 0; i < p.g.size(); i += 2)
    p.g[i] = -std::uniform_real_distribution<double>(0, 0.5)(r);
  const result ref = test::run_gla<double>(p, 0);
  for (int chunk : {16, 64, 128}) {
    CAPTURE(chunk);
    const result got = test::run_gla<double>(p, chunk);
    test::check_close(got.o, ref.o, 1e-11, 1.0, "o (mixed)");
    test::check_close(got.final_state, ref.final_state, 1e-11, 1.0, "final_state (mixed)");
    const result got32 = test::run_gla<float, float, float>(p, chunk);
    REQUIRE(all_finite(got32.o));
    test::check_close(got32.o, ref.o, 1e-5, 1.0, "o (mixed, f32)");
  }
}

// ---- argument validation ----

namespace {

struct bad_fixture {
  index_t B = 2, H = 1, T = 5, K = 3, V = 4;
  std::vector<float> q, k, v, g, o, s0, fs;
  std::vector<unsigned char> ws_bytes = std::vector<unsigned char>(1 << 16);
  bad_fixture()
      : q(std::size_t(B * H * T * K), 0.5f), k(q), v(std::size_t(B * H * T * V), 0.5f),
        g(q.size(), -0.1f), o(v.size()), s0(std::size_t(B * H * K * V), 0.0f), fs(s0.size()) {
    test::poison(o);
  }
  gla_args<float> args() {
    gla_args<float> a;
    a.q = make_view(q.data(), B, H, T, K);
    a.k = make_view(k.data(), B, H, T, K);
    a.v = make_view(v.data(), B, H, T, V);
    a.g = make_view(g.data(), B, H, T, K);
    a.o = make_view(o.data(), B, H, T, V);
    a.initial_state = make_view(s0.data(), B, H, K, V);
    a.final_state = make_view(fs.data(), B, H, K, V);
    return a;
  }
  workspace ws() { return workspace{ws_bytes.data(), ws_bytes.size()}; }
  bool o_untouched() const {
    for (float x : o)
      if (!std::isnan(x)) return false;
    return true;
  }
};

} // namespace

TEST_CASE("gla: bad arguments return a status naming the argument") {
  bad_fixture f;
  // The fixture itself is valid.
  REQUIRE(gla_scan(scalar{}, f.args(), f.ws()).ok());
  test::poison(f.o);

  struct bad_case {
    const char* label;
    void (*mutate)(gla_args<float>&);
    status_code code;
    const char* what;
  };
  static const std::int64_t cu_bad_start[] = {1, 3, 5};
  static const std::int64_t cu_decreasing[] = {0, 4, 3, 5};
  static const std::int64_t cu_short[] = {0, 2, 4};
  static const std::int64_t cu_ok[] = {0, 2, 5};
  const bad_case cases[] = {
      {"q null", [](gla_args<float>& a) { a.q.data = nullptr; }, status_code::null_pointer, "q"},
      {"k null", [](gla_args<float>& a) { a.k.data = nullptr; }, status_code::null_pointer, "k"},
      {"v null", [](gla_args<float>& a) { a.v.data = nullptr; }, status_code::null_pointer, "v"},
      {"g null", [](gla_args<float>& a) { a.g.data = nullptr; }, status_code::null_pointer, "g"},
      {"o null", [](gla_args<float>& a) { a.o.data = nullptr; }, status_code::null_pointer, "o"},
      {"negative T", [](gla_args<float>& a) { a.q.shape[2] = -1; }, status_code::bad_shape, "q"},
      {"negative B", [](gla_args<float>& a) { a.q.shape[0] = -2; }, status_code::bad_shape, "q"},
      {"K zero", [](gla_args<float>& a) { a.q.shape[3] = 0; }, status_code::bad_shape, "q"},
      {"V zero",
       [](gla_args<float>& a) {
         a.v.shape[3] = 0;
         a.o.shape[3] = 0;
       },
       status_code::bad_shape, "v"},
      {"V negative", [](gla_args<float>& a) { a.v.shape[3] = -4; }, status_code::bad_shape, "v"},
      {"k shape", [](gla_args<float>& a) { a.k.shape[3] = 2; }, status_code::bad_shape, "k"},
      {"g shape", [](gla_args<float>& a) { a.g.shape[2] = 4; }, status_code::bad_shape, "g"},
      {"v shape", [](gla_args<float>& a) { a.v.shape[1] = 2; }, status_code::bad_shape, "v"},
      {"o shape", [](gla_args<float>& a) { a.o.shape[3] = 3; }, status_code::bad_shape, "o"},
      {"initial_state shape", [](gla_args<float>& a) { a.initial_state.shape[2] = 4; },
       status_code::bad_shape, "initial_state"},
      {"final_state shape", [](gla_args<float>& a) { a.final_state.shape[0] = 1; },
       status_code::bad_shape, "final_state"},
      {"scale NaN", [](gla_args<float>& a) { a.scale = std::nanf(""); }, status_code::bad_argument,
       "scale"},
      {"num_seqs without cu_seqlens", [](gla_args<float>& a) { a.num_seqs = 3; },
       status_code::bad_shape, "num_seqs"},
      {"packed with B = 2",
       [](gla_args<float>& a) {
         a.cu_seqlens = cu_ok;
         a.num_seqs = 2;
       },
       status_code::bad_shape, "cu_seqlens"},
  };
  for (const auto& c : cases) {
    CAPTURE(std::string(c.label));
    gla_args<float> a = f.args();
    c.mutate(a);
    test::check_status(gla_scan(scalar{}, a, f.ws()), c.code, c.what);
    test::check_status(gla_chunked(scalar{}, a, 16, f.ws()), c.code, c.what);
    CHECK(f.o_untouched());
  }

  // Packed: B = 1, T = 5 with two sequences.
  const bad_case packed_cases[] = {
      {"cu_seqlens[0] != 0",
       [](gla_args<float>& a) {
         a.cu_seqlens = cu_bad_start;
         a.num_seqs = 2;
       },
       status_code::bad_argument, "cu_seqlens"},
      {"cu_seqlens decreasing",
       [](gla_args<float>& a) {
         a.cu_seqlens = cu_decreasing;
         a.num_seqs = 3;
         a.initial_state.shape[0] = a.final_state.shape[0] = 3;
       },
       status_code::bad_argument, "cu_seqlens"},
      {"cu_seqlens[N] != T",
       [](gla_args<float>& a) {
         a.cu_seqlens = cu_short;
         a.num_seqs = 2;
       },
       status_code::bad_argument, "cu_seqlens"},
      {"num_seqs negative",
       [](gla_args<float>& a) {
         a.cu_seqlens = cu_ok;
         a.num_seqs = -1;
       },
       status_code::bad_shape, "num_seqs"},
      {"states not (N, H, K, V)",
       [](gla_args<float>& a) {
         a.cu_seqlens = cu_ok;
         a.num_seqs = 2;
         a.initial_state.shape[0] = 1;
       },
       status_code::bad_shape, "initial_state"},
  };
  for (const auto& c : packed_cases) {
    CAPTURE(std::string(c.label));
    gla_args<float> a = f.args();
    a.q.shape[0] = a.k.shape[0] = a.v.shape[0] = a.g.shape[0] = a.o.shape[0] = 1;
    a.initial_state.shape[0] = a.final_state.shape[0] = 2;
    c.mutate(a);
    test::check_status(gla_scan(scalar{}, a, f.ws()), c.code, c.what);
    test::check_status(gla_chunked(scalar{}, a, 16, f.ws()), c.code, c.what);
    CHECK(f.o_untouched());
  }
  { // ... and the same packed arguments with good offsets pass.
    gla_args<float> a = f.args();
    a.q.shape[0] = a.k.shape[0] = a.v.shape[0] = a.g.shape[0] = a.o.shape[0] = 1;
    a.initial_state.shape[0] = a.final_state.shape[0] = 2;
    a.cu_seqlens = cu_ok;
    a.num_seqs = 2;
    CHECK(gla_chunked(scalar{}, a, 2, f.ws()).ok());
    test::poison(f.o);
  }

  for (int chunk : {0, -3}) {
    CAPTURE(chunk);
    test::check_status(gla_chunked(scalar{}, f.args(), chunk, f.ws()), status_code::bad_argument,
                       "chunk_size");
  }
  {
    std::vector<unsigned char> tiny(16);
    test::check_status(gla_scan(scalar{}, f.args(), workspace{tiny.data(), tiny.size()}),
                       status_code::workspace_too_small, "ws");
    test::check_status(gla_chunked(scalar{}, f.args(), 16, workspace{}),
                       status_code::workspace_too_small, "ws");
  }
  CHECK(f.o_untouched());
  // Empty batches are valid and write nothing.
  {
    gla_args<float> a = f.args();
    a.q.shape[2] = a.k.shape[2] = a.v.shape[2] = a.g.shape[2] = a.o.shape[2] = 0;
    CHECK(gla_scan(scalar{}, a, f.ws()).ok());
    CHECK(f.o_untouched());
    for (std::size_t i = 0; i < f.fs.size(); ++i)
      CHECK(f.fs[i] == f.s0[i]); // T = 0: S_T = S_0
  }
}

TEST_CASE("gla_decode: bad arguments return a status naming the argument") {
  const index_t B = 3, H = 2, K = 4, V = 5, P = 4;
  std::vector<float> q(std::size_t(B * H * K), 0.5f), k(q), g(q.size(), -0.2f),
      v(std::size_t(B * H * V), 1.0f), o(v.size()), pool(std::size_t(P * H * K * V), 0.25f);
  std::vector<unsigned char> wsb(1 << 14);
  auto args = [&] {
    gla_decode_args<float> d;
    d.q = make_view(q.data(), B, H, K);
    d.k = make_view(k.data(), B, H, K);
    d.g = make_view(g.data(), B, H, K);
    d.v = make_view(v.data(), B, H, V);
    d.o = make_view(o.data(), B, H, V);
    d.state = make_view(pool.data(), P, H, K, V);
    return d;
  };
  const workspace ws{wsb.data(), wsb.size()};
  REQUIRE(gla_decode(scalar{}, args(), ws).ok());
  const std::vector<float> pool_before = pool;
  test::poison(o);

  static const std::int32_t slot_range[] = {0, 4, 1};
  static const std::int32_t slot_dup[] = {2, -1, 2};
  auto d = args();
  d.q.data = nullptr;
  test::check_status(gla_decode(scalar{}, d, ws), status_code::null_pointer, "q");
  d = args();
  d.state.data = nullptr;
  test::check_status(gla_decode(scalar{}, d, ws), status_code::null_pointer, "state");
  d = args();
  d.o.data = nullptr;
  test::check_status(gla_decode(scalar{}, d, ws), status_code::null_pointer, "o");
  d = args();
  d.q.shape[2] = 0;
  test::check_status(gla_decode(scalar{}, d, ws), status_code::bad_shape, "q");
  d = args();
  d.q.shape[0] = -1;
  test::check_status(gla_decode(scalar{}, d, ws), status_code::bad_shape, "q");
  d = args();
  d.v.shape[2] = 0;
  d.o.shape[2] = 0;
  test::check_status(gla_decode(scalar{}, d, ws), status_code::bad_shape, "v");
  d = args();
  d.k.shape[1] = 1;
  test::check_status(gla_decode(scalar{}, d, ws), status_code::bad_shape, "k");
  d = args();
  d.g.shape[2] = 3;
  test::check_status(gla_decode(scalar{}, d, ws), status_code::bad_shape, "g");
  d = args();
  d.o.shape[0] = 2;
  test::check_status(gla_decode(scalar{}, d, ws), status_code::bad_shape, "o");
  d = args();
  d.state.shape[3] = 4;
  test::check_status(gla_decode(scalar{}, d, ws), status_code::bad_shape, "state");
  d = args();
  d.state.shape[0] = 2; // fewer states than rows without slots
  test::check_status(gla_decode(scalar{}, d, ws), status_code::bad_shape, "state");
  d = args();
  d.slot = slot_range;
  test::check_status(gla_decode(scalar{}, d, ws), status_code::bad_argument, "slot");
  d = args();
  d.slot = slot_dup;
  test::check_status(gla_decode(scalar{}, d, ws), status_code::bad_argument, "slot");
  d = args();
  test::check_status(gla_decode(scalar{}, d, workspace{}), status_code::workspace_too_small, "ws");
  for (float x : o)
    CHECK(std::isnan(x));
  CHECK(std::memcmp(pool.data(), pool_before.data(), pool.size() * sizeof(float)) == 0);
}

TEST_CASE("gla: a state too large for any workspace fails cleanly, without writing") {
  // K = V = 2^33: the state (K, V) has 2^66 elements, which no size_t counts. Before the sizes
  // saturated, K * V wrapped to 0, take() returned a 0-byte block and the scan wrote 2^66 doubles
  // into it. T = 0 keeps every tensor empty, so null data pointers are valid.
  const index_t K = index_t(1) << 33, V = K;
  gla_args<float> a;
  a.q = make_view(static_cast<const float*>(nullptr), 1, 1, 0, K);
  a.k = a.q;
  a.g = a.q;
  a.v = make_view(static_cast<const float*>(nullptr), 1, 1, 0, V);
  a.o = make_view(static_cast<float*>(nullptr), 1, 1, 0, V);
  CHECK(gla_scan_workspace_bytes(scalar{}, a) == SIZE_MAX);
  CHECK(gla_chunked_workspace_bytes(scalar{}, a, 16) == SIZE_MAX);
  test::workspace_buffer ws(1 << 16);
  test::check_status(gla_scan(scalar{}, a, ws.get()), status_code::workspace_too_small, "ws");
  test::check_status(gla_chunked(scalar{}, a, 16, ws.get()), status_code::workspace_too_small,
                     "ws");
  gla_decode_args<float> d;
  d.q = make_view(static_cast<const float*>(nullptr), 0, 1, K);
  d.k = d.q;
  d.g = d.q;
  d.v = make_view(static_cast<const float*>(nullptr), 0, 1, V);
  d.o = make_view(static_cast<float*>(nullptr), 0, 1, V);
  d.state = make_view(static_cast<float*>(nullptr), 0, 1, K, V);
  CHECK(gla_decode_workspace_bytes(scalar{}, d) == SIZE_MAX);
  // A null q whose sizes multiply beyond 2^64: its element count must not wrap to 0 (which would
  // pass the "null only when empty" check).
  a.q.shape[2] = a.k.shape[2] = a.g.shape[2] = a.v.shape[2] = a.o.shape[2] = index_t(1) << 31;
  CHECK(a.q.numel() == INT64_MAX);
  test::check_status(gla_scan(scalar{}, a, ws.get()), status_code::null_pointer, "q");
  a.q.shape[2] = a.k.shape[2] = a.g.shape[2] = a.v.shape[2] = a.o.shape[2] = 0;
  // A chunk of 2^31 - 1 positions: its cumsum G (C, K) needs 64 GiB, more than the workspace.
  a.q.shape[3] = a.k.shape[3] = a.g.shape[3] = 4;
  a.v.shape[3] = a.o.shape[3] = 4;
  test::check_status(gla_chunked(scalar{}, a, 0x7fffffff, ws.get()),
                     status_code::workspace_too_small, "ws");
}

TEST_CASE(
    "workspace: take() aligns any base, and sizes that overflow saturate instead of wrapping") {
  std::vector<unsigned char> mem(4096);
  for (std::size_t offset : {std::size_t(0), std::size_t(1), std::size_t(7), std::size_t(255)}) {
    CAPTURE(offset);
    // workspace_bytes' rule: one alignment of slack plus bytes_for per take, in order.
    const std::size_t need = workspace::sum(workspace::alignment, workspace::bytes_for<double>(3),
                                            workspace::bytes_for<float>(70));
    REQUIRE(need + offset <= mem.size());
    workspace ws{mem.data() + offset, need, 0};
    double* a = ws.take<double>(3);
    float* b = ws.take<float>(70);
    REQUIRE(a != nullptr);
    REQUIRE(b != nullptr);
    CHECK(reinterpret_cast<std::uintptr_t>(a) % workspace::alignment == 0);
    CHECK(reinterpret_cast<std::uintptr_t>(b) % workspace::alignment == 0);
    CHECK(reinterpret_cast<unsigned char*>(b) >= reinterpret_cast<unsigned char*>(a + 3));
    CHECK(reinterpret_cast<unsigned char*>(b + 70) <= mem.data() + offset + need);
    CHECK(ws.used <= ws.bytes);
  }
  workspace ws{mem.data(), mem.size(), 0};
  CHECK(ws.take<double>(SIZE_MAX / 4) == nullptr); // count * 8 wraps around
  CHECK(ws.take<double>(mem.size()) == nullptr);   // too large
  CHECK(ws.used == 0);                             // failed takes use nothing
  CHECK(ws.take<char>(0) != nullptr);
  CHECK(workspace{}.take<float>(1) == nullptr);
  CHECK(workspace::bytes_for<double>(SIZE_MAX / 4) == SIZE_MAX);
  CHECK(workspace::round_up(SIZE_MAX - 3) == SIZE_MAX);
  CHECK(workspace::round_up(1) == workspace::alignment);
  CHECK(workspace::product(std::size_t(1) << 33, std::size_t(1) << 33) == SIZE_MAX);
  CHECK(workspace::product(3, 5) == 15);
  CHECK(workspace::sum(SIZE_MAX - 1, 1, 1) == SIZE_MAX);
  CHECK(workspace::sum(1, 2, 3) == 6);
}

// ---- slot ----

TEST_CASE("gla: slot pools give the results of separate state arrays, bit for bit") {
  auto r = test::rng(19);
  const std::vector<index_t> lengths = {9, 0, 33, 0, 1, 70};
  const std::vector<std::int32_t> slot = {4, -1, 0, 6, 2, 5}; // sequence 1 is padding (empty)
  std::vector<std::int64_t> cu = {0};
  for (index_t L : lengths)
    cu.push_back(cu.back() + L);
  const index_t T = index_t(cu.back()), N = index_t(lengths.size()), P = 8, H = 2, K = 6, V = 5;
  const std::size_t one = std::size_t(H * K * V);
  problem p = make_problem(r, 1, H, T, K, V, false, true);
  const std::vector<double> pool0 = test::uniform<double>(r, std::size_t(P) * one);
  // Separate arrays: sequence n starts from pool0[slot[n]] (zeros for the padding sequence).
  p.s0.assign(std::size_t(N) * one, 0.0);
  for (index_t n = 0; n < N; ++n)
    if (slot[std::size_t(n)] >= 0)
      std::copy(pool0.begin() + slot[std::size_t(n)] * index_t(one),
                pool0.begin() + (slot[std::size_t(n)] + 1) * index_t(one),
                p.s0.begin() + n * index_t(one));
  for (int chunk : {0, 16, 7}) {
    for (bool in_place : {false, true}) {
      CAPTURE(chunk);
      CAPTURE(in_place);
      const result want = test::run_gla<double>(p, chunk, &cu);
      std::vector<double> o(std::size_t(T * H * V)), pool = pool0,
                                                     out(in_place ? 0 : std::size_t(P) * one, 0.5);
      test::poison(o);
      gla_args<double, double, double> a;
      a.q = make_view(static_cast<const double*>(p.q.data()), 1, H, T, K);
      a.k = make_view(static_cast<const double*>(p.k.data()), 1, H, T, K);
      a.v = make_view(static_cast<const double*>(p.v.data()), 1, H, T, V);
      a.g = make_view(static_cast<const double*>(p.g.data()), 1, H, T, K);
      a.o = make_view(o.data(), 1, H, T, V);
      a.initial_state = make_view(static_cast<const double*>(pool.data()), P, H, K, V);
      a.final_state = make_view(in_place ? pool.data() : out.data(), P, H, K, V);
      a.scale = p.scale;
      a.cu_seqlens = cu.data();
      a.num_seqs = N;
      a.slot = slot.data();
      test::workspace_buffer ws(gla_chunked_workspace_bytes(scalar{}, a, 16) +
                                gla_scan_workspace_bytes(scalar{}, a));
      const status s =
          chunk ? gla_chunked(scalar{}, a, chunk, ws.get()) : gla_scan(scalar{}, a, ws.get());
      REQUIRE_MESSAGE(s.ok(), to_string(s.code), ": ", s.what);
      CHECK(o == want.o); // the same arithmetic: bit-identical
      const std::vector<double>& fs = in_place ? pool : out;
      std::vector<bool> used(static_cast<std::size_t>(P), false);
      for (index_t n = 0; n < N; ++n) {
        const std::int32_t sl = slot[std::size_t(n)];
        if (sl < 0) continue;
        CAPTURE(n);
        used[std::size_t(sl)] = true;
        CHECK(std::equal(fs.begin() + sl * index_t(one), fs.begin() + (sl + 1) * index_t(one),
                         want.final_state.begin() + n * index_t(one)));
      }
      for (index_t q = 0; q < P; ++q) {
        if (used[std::size_t(q)]) continue;
        CAPTURE(q);
        for (std::size_t i = 0; i < one; ++i)
          CHECK(fs[std::size_t(q) * one + i] == (in_place ? pool0 : out)[std::size_t(q) * one + i]);
      }
      if (!in_place) CHECK(pool == pool0); // the initial pool is only read
    }
  }
}

TEST_CASE("gla scalar (f32): chunked == scan, split prefill, packed == separate") {
  test::check_gla_invariants(scalar{});
}

TEST_CASE("gla scalar: slot pools, in place and with padding sequences") {
  test::check_gla_slots(scalar{});
}

TEST_CASE("gla scalar: bad arguments of the shared body, slot contents included") {
  test::check_gla_bad_arguments(scalar{});
}
