// DDTS (temperature-gated selection, docs/MODEL.md §2.3 steps 7-9) against a straightforward f64
// computation of the same formulas, on random inputs with large |psi| and zero-norm keys.
#include "support/primitive_support.hpp"
#include "support/test_support.hpp"

#include <cmath>
#include <string>
#include <vector>

#include "rodimus/backend/scalar/ddts.hpp"

using namespace rodimus;

namespace {

struct ddts_ref {
  std::vector<double> k_hat, log_decay;
  /// Extra relative error of k_hat that f32 cannot avoid: when softplus gives a subnormal gamma
  /// (psi_sel below about -87), f32 expf gets it only to about one subnormal spacing 2^-149 (we
  /// allow two), and beta = gamma^tau inherits tau times that relative error (as PyTorch's f32).
  std::vector<double> k_hat_extra_rel;
};

/// f64 reference. psi is the f32 sum f32(preact) + bias, as the spec defines it (the f32 rounding
/// of that sum is part of the model); everything after it is f64.
template <class Act>
ddts_ref reference(const std::vector<Act>& pre, const std::vector<float>& bias,
                   const std::vector<Act>& k, index_t M, index_t N, float eps) {
  ddts_ref r;
  r.k_hat.resize(std::size_t(M * N));
  r.log_decay.resize(std::size_t(M * N));
  r.k_hat_extra_rel.resize(std::size_t(M * N));
  for (index_t m = 0; m < M; ++m) {
    double ss = 0;
    for (index_t n = 0; n < N; ++n)
      ss += std::pow(double(load_as<float>(k[std::size_t(m * N + n)])), 2);
    const double denom = std::max(std::sqrt(ss), double(eps));
    for (index_t n = 0; n < N; ++n) {
      float ps = load_as<float>(pre[std::size_t(m * 2 * N + n)]);
      float pt = load_as<float>(pre[std::size_t(m * 2 * N + N + n)]);
      if (!bias.empty()) {
        ps += bias[std::size_t(n)];
        pt += bias[std::size_t(N + n)];
      }
      const double sel = ps, tmp = pt;
      const double gamma = sel > 20 ? sel : std::log1p(std::exp(sel));
      const double tau = 1 / (1 + std::exp(-tmp));
      const double beta = std::pow(gamma, tau);
      r.log_decay[std::size_t(m * N + n)] = -gamma * tau;
      r.k_hat_extra_rel[std::size_t(m * N + n)] =
          gamma > 0 ? tau * std::ldexp(1.0, -148) / gamma : 0.0;
      r.k_hat[std::size_t(m * N + n)] =
          double(load_as<float>(k[std::size_t(m * N + n)])) / denom * beta;
    }
  }
  return r;
}

/// |got - want| <= (rel + extra_rel[i]) |want| + abs_floor for every element (f32 transcendentals
/// are good to a few ulps; the floors only cover results that f32 flushes to subnormals or zero).
void check_elementwise(const std::vector<float>& got, const std::vector<double>& want, double rel,
                       double abs_floor, const std::string& what,
                       const std::vector<double>* extra_rel = nullptr) {
  REQUIRE(got.size() == want.size());
  std::size_t bad = 0, first = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double d = std::fabs(double(got[i]) - want[i]);
    const double r = rel + (extra_rel ? (*extra_rel)[i] : 0.0);
    if (!(d <= r * std::fabs(want[i]) + abs_floor)) {
      if (bad++ == 0) first = i;
    }
  }
  INFO(what << ": " << bad << " elements out of tolerance; first at " << first << ": got "
            << (bad ? got[first] : 0.0f) << ", want " << (bad ? want[first] : 0.0));
  CHECK(bad == 0);
}

template <class Act>
void run_random(std::uint64_t salt, index_t M, index_t N, bool with_bias, float eps) {
  auto r = test::rng(salt);
  std::uniform_real_distribution<double> wide(-60.0, 60.0), mid(-8.0, 8.0), unit(-1.0, 1.0);
  std::uniform_int_distribution<int> pick(0, 9);
  // Special selection values: the softplus threshold and beyond; gamma underflows to 0 in f32
  // below about -104 (and in f64 below -745).
  const double sel_special[] = {20.0,  20.001, 19.999, -20.0,  0.0,    25.0,
                                -25.0, 100.0,  -100.0, 1000.0, -1000.0};
  // Special temperatures (kept >= -80: below -88.7 f32's sigmoid is 0 exactly, and 0^0 = 1 while
  // the f64 value 0^tiny = 0 when gamma is 0 as well: an f32-vs-f64 artefact, not a defect).
  const double tau_special[] = {20.0, -20.0, 40.0, -40.0, 0.0, 80.0, -80.0, 1000.0};
  std::vector<Act> pre(std::size_t(M * 2 * N)), k(std::size_t(M * N));
  for (index_t m = 0; m < M; ++m)
    for (index_t n = 0; n < N; ++n) {
      auto draw = [&](const double* special, std::size_t count) {
        const int p = pick(r);
        if (p < 2) return special[std::uniform_int_distribution<std::size_t>(0, count - 1)(r)];
        return p < 5 ? wide(r) : mid(r);
      };
      pre[std::size_t(m * 2 * N + n)] = store_as<Act>(draw(sel_special, std::size(sel_special)));
      pre[std::size_t(m * 2 * N + N + n)] =
          store_as<Act>(draw(tau_special, std::size(tau_special)));
      // Row kinds: 0 zero key, 1 tiny key (norm below eps), else ordinary.
      const double scale = m % 7 == 0   ? 0.0
                           : m % 7 == 1 ? double(eps) * 1e-2
                                        : 1.0 + 3.0 * double(m % 3);
      k[std::size_t(m * N + n)] = store_as<Act>(unit(r) * scale);
    }
  std::vector<float> bias;
  if (with_bias) bias = test::uniform<float>(r, std::size_t(2 * N), -3.0, 3.0);

  std::vector<float> k_hat(std::size_t(M * N)), log_decay(std::size_t(M * N));
  test::poison(k_hat);
  test::poison(log_decay);
  ddts_args<Act> a;
  a.gate_preact = make_view<const Act>(pre.data(), M, 2 * N);
  if (with_bias) a.gate_bias = make_view<const float>(bias.data(), 2 * N);
  a.k = make_view<const Act>(k.data(), M, N);
  a.k_hat = make_view(k_hat.data(), M, N);
  a.log_decay = make_view(log_decay.data(), M, N);
  a.normalize_eps = eps;
  const status s = ddts(scalar{}, a);
  REQUIRE_MESSAGE(s.ok(), to_string(s.code), ": ", s.what);

  const ddts_ref want = reference(pre, bias, k, M, N, eps);
  REQUIRE(test::max_abs(want.k_hat) > 0);
  check_elementwise(log_decay, want.log_decay, 1e-5, 1e-30, "log_decay");
  check_elementwise(k_hat, want.k_hat, 1e-5, 1e-20, "k_hat", &want.k_hat_extra_rel);
  for (std::size_t i = 0; i < k_hat.size(); ++i) {
    CHECK(std::isfinite(k_hat[i]));
    CHECK(std::isfinite(log_decay[i]));
    CHECK(log_decay[i] <= 0.0f);
  }
  // Zero-norm rows give a zero k_hat (k / eps = 0), not NaN.
  for (index_t n = 0; n < N; ++n)
    CHECK(k_hat[std::size_t(n)] == 0.0f);
}

} // namespace

TEST_CASE("ddts: f32 against f64 formulas, with and without bias, eps 1e-12 and 1e-5") {
  run_random<float>(21, 60, 64, true, 1e-12f);
  run_random<float>(22, 30, 7, false, 1e-12f);
  run_random<float>(23, 30, 64, true, 1e-5f);
}

TEST_CASE("ddts: f64, bf16 and f16 storage of the pre-activations and keys") {
  run_random<double>(24, 30, 64, true, 1e-12f);
  run_random<bf16>(25, 30, 64, true, 1e-12f);
  run_random<f16>(26, 30, 32, true, 1e-5f);
}

TEST_CASE("ddts: the softplus threshold is PyTorch's (identity above 20)") {
  // psi_sel = 20.5: softplus is psi itself; psi_tau = 0: tau = 1/2, so log_decay = -10.25 exactly
  // and beta = sqrt(20.5).
  const float pre[] = {20.5f, 0.0f};
  const float key[] = {2.0f};
  float k_hat = NAN, log_decay = NAN;
  ddts_args<float> a;
  a.gate_preact = make_view<const float>(pre, 1, 2);
  a.k = make_view<const float>(key, 1, 1);
  a.k_hat = make_view(&k_hat, 1, 1);
  a.log_decay = make_view(&log_decay, 1, 1);
  REQUIRE(ddts(scalar{}, a).ok());
  CHECK(log_decay == -10.25f);
  CHECK(std::fabs(double(k_hat) - std::sqrt(20.5)) <= 1e-6 * std::sqrt(20.5));
}

TEST_CASE("ddts: bad arguments return a status naming the argument, and write nothing") {
  constexpr index_t M = 3, N = 4;
  std::vector<float> pre(std::size_t(M * 2 * N), 0.1f), bias(std::size_t(2 * N), 0.0f),
      k(std::size_t(M * N), 1.0f), k_hat(k.size()), ld(k.size());
  auto args = [&] {
    ddts_args<float> a;
    a.gate_preact = make_view<const float>(pre.data(), M, 2 * N);
    a.gate_bias = make_view<const float>(bias.data(), 2 * N);
    a.k = make_view<const float>(k.data(), M, N);
    a.k_hat = make_view(k_hat.data(), M, N);
    a.log_decay = make_view(ld.data(), M, N);
    return a;
  };
  REQUIRE(ddts(scalar{}, args()).ok());
  test::poison(k_hat);
  test::poison(ld);
  test::check_bad_cases(
      args(), [](const ddts_args<float>& a) { return ddts(scalar{}, a); },
      {
          {"gate_preact.shape[1] = 2 * N - 1",
           [](ddts_args<float>& a) { a.gate_preact.shape[1] = 2 * N - 1; }, status_code::bad_shape,
           "gate_preact"},
          {"gate_preact.shape[1] = 0", [](ddts_args<float>& a) { a.gate_preact.shape[1] = 0; },
           status_code::bad_shape, "gate_preact"},
          {"gate_preact.shape[0] = -1", [](ddts_args<float>& a) { a.gate_preact.shape[0] = -1; },
           status_code::bad_shape, "gate_preact"},
          {"gate_bias.shape[0] = N", [](ddts_args<float>& a) { a.gate_bias.shape[0] = N; },
           status_code::bad_shape, "gate_bias"},
          {"k.shape[1] = N + 1", [](ddts_args<float>& a) { a.k.shape[1] = N + 1; },
           status_code::bad_shape, "k"},
          {"k_hat.shape[0] = M - 1", [](ddts_args<float>& a) { a.k_hat.shape[0] = M - 1; },
           status_code::bad_shape, "k_hat"},
          {"log_decay.shape[1] = 2", [](ddts_args<float>& a) { a.log_decay.shape[1] = 2; },
           status_code::bad_shape, "log_decay"},
          {"gate_preact.data = nullptr", [](ddts_args<float>& a) { a.gate_preact.data = nullptr; },
           status_code::null_pointer, "gate_preact"},
          {"k.data = nullptr", [](ddts_args<float>& a) { a.k.data = nullptr; },
           status_code::null_pointer, "k"},
          {"k_hat.data = nullptr", [](ddts_args<float>& a) { a.k_hat.data = nullptr; },
           status_code::null_pointer, "k_hat"},
          {"log_decay.data = nullptr", [](ddts_args<float>& a) { a.log_decay.data = nullptr; },
           status_code::null_pointer, "log_decay"},
          {"normalize_eps = 0.0f", [](ddts_args<float>& a) { a.normalize_eps = 0.0f; },
           status_code::bad_argument, "normalize_eps"},
          {"normalize_eps = NAN", [](ddts_args<float>& a) { a.normalize_eps = NAN; },
           status_code::bad_argument, "normalize_eps"},
      });
  CHECK(test::all_nan(k_hat)); // a rejected call writes nothing
  CHECK(test::all_nan(ld));
}
