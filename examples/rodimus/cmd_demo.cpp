// rodimus demo: run every primitive once on random data at a small Rodimus-like shape and print
// what it computed (shape, a checksum and the largest magnitude of the output) and how long it
// took.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "cli.hpp"
#include "rodimus/backend/scalar/causal_conv.hpp"
#include "rodimus/backend/scalar/ddts.hpp"
#include "rodimus/backend/scalar/gated_rmsnorm.hpp"
#include "rodimus/backend/scalar/gla.hpp"
#include "rodimus/backend/scalar/linear.hpp"
#include "rodimus/backend/scalar/rmsnorm.hpp"
#include "rodimus/backend/scalar/rotary.hpp"
#include "rodimus/backend/scalar/swiglu.hpp"
#include "rodimus/backend/scalar/swska.hpp"

namespace rodimus::cli {
namespace {

std::vector<float> random_vector(std::mt19937& gen, std::size_t n, float lo = -1.0f,
                                 float hi = 1.0f) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v)
    x = dist(gen);
  return v;
}

/// Time `run` (which returns a status), then print the output's checksum and max magnitude.
void report(const char* name, const std::string& shape, const std::vector<float>& out,
            const std::function<status()>& run) {
  const auto t0 = std::chrono::steady_clock::now();
  const status s = run();
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  throw_if_failed(s, name);
  double sum = 0, peak = 0;
  for (float x : out) {
    sum += x;
    peak = std::fmax(peak, std::fabs(x));
  }
  std::printf("  %-14s %-34s sum %+12.5f  max|y| %9.5f  %9.3f ms\n", name, shape.c_str(), sum, peak,
              ms);
}

} // namespace

int run_demo(int argc, char** argv) {
  const args a(argc, argv, {"seed"}, {});
  std::mt19937 gen(unsigned(a.get_int("seed", 2024)));
  const scalar be;
  const index_t T = 256, D = 128, E = 256, N = 64, F = 344, Hq = 4, Hv = 4, Dh = 32;
  std::printf("rodimus demo: every primitive on random data, scalar reference backend (T=%lld)\n",
              static_cast<long long>(T));

  // linear: y = x W^T
  auto x = random_vector(gen, T * D), w = random_vector(gen, E * D, -0.1f, 0.1f);
  std::vector<float> y(T * E);
  report("linear", "x(T,D) W(E,D) -> (T,E)", y, [&] {
    return linear(be, linear_args<float, float>{make_view<const float>(x.data(), T, D),
                                                make_view<const float>(w.data(), E, D),
                                                make_view(y.data(), T, E)});
  });

  // causal depthwise conv + SiLU
  auto cw = random_vector(gen, E * 4, -0.5f, 0.5f), cb = random_vector(gen, E, -0.5f, 0.5f);
  std::vector<float> conv_out(T * E);
  report("causal_conv", "(1,T,E) kernel 4", conv_out, [&] {
    causal_conv_args<float> c;
    c.x = make_view<const float>(y.data(), 1, T, E);
    c.weight = make_view<const float>(cw.data(), E, 4);
    c.bias = make_view<const float>(cb.data(), E);
    c.y = make_view(conv_out.data(), 1, T, E);
    return causal_conv(be, c);
  });

  // DDTS: gates -> k_hat, log-decay
  auto psi = random_vector(gen, T * 2 * N, -4.0f, 2.0f), kraw = random_vector(gen, T * N);
  std::vector<float> k_hat(T * N), log_decay(T * N);
  report("ddts", "psi(T,2N) k(T,N) -> k_hat, log_decay", log_decay, [&] {
    ddts_args<float> d;
    d.gate_preact = make_view<const float>(psi.data(), T, 2 * N);
    d.k = make_view<const float>(kraw.data(), T, N);
    d.k_hat = make_view(k_hat.data(), T, N);
    d.log_decay = make_view(log_decay.data(), T, N);
    d.normalize_eps = 1e-5f;
    return ddts(be, d);
  });

  // GLA: sequential scan and chunked form on the same inputs
  auto q = random_vector(gen, T * N), v = random_vector(gen, T * E);
  std::vector<float> o_scan(T * E), o_chunk(T * E), state(N * E);
  gla_args<float, float, float> g;
  g.q = make_view<const float>(q.data(), 1, 1, T, N);
  g.k = make_view<const float>(k_hat.data(), 1, 1, T, N);
  g.v = make_view<const float>(v.data(), 1, 1, T, E);
  g.g = make_view<const float>(log_decay.data(), 1, 1, T, N);
  g.final_state = make_view(state.data(), 1, 1, N, E);
  g.scale = 0.125f;
  std::vector<unsigned char> ws_bytes(
      std::max(gla_scan_workspace_bytes(be, g), gla_chunked_workspace_bytes(be, g, 64)) +
      workspace::alignment);
  report("gla_scan", "(1,1,T,N) x (1,1,T,E), state (N,E)", o_scan, [&] {
    g.o = make_view(o_scan.data(), 1, 1, T, E);
    return gla_scan(be, g, workspace{ws_bytes.data(), ws_bytes.size()});
  });
  report("gla_chunked", "same, chunk 64", o_chunk, [&] {
    g.o = make_view(o_chunk.data(), 1, 1, T, E);
    return gla_chunked(be, g, 64, workspace{ws_bytes.data(), ws_bytes.size()});
  });
  double gap = 0;
  for (std::size_t i = 0; i < o_scan.size(); ++i)
    gap = std::fmax(gap, std::fabs(o_scan[i] - o_chunk[i]));
  std::printf("  %-14s max|scan - chunked| = %.3g\n", "", gap);

  // gated RMSNorm, RMSNorm with residual, SwiGLU
  auto gate = random_vector(gen, T * E);
  std::vector<float> gnorm(T * E), ones(std::max(E, D), 1.0f);
  report("gated_rmsnorm", "norm(o * silu(g)) (T,E)", gnorm, [&] {
    return gated_rmsnorm(be, gated_rmsnorm_args<float>{make_view<const float>(o_scan.data(), T, E),
                                                       make_view<const float>(gate.data(), T, E),
                                                       make_view<const float>(ones.data(), E),
                                                       make_view(gnorm.data(), T, E), 1e-5f});
  });
  auto resid = random_vector(gen, T * D);
  std::vector<float> normed(T * D);
  report("rmsnorm", "(x + residual) (T,D)", normed, [&] {
    rmsnorm_args<float> r;
    r.x = make_view<const float>(x.data(), T, D);
    r.residual = make_view<const float>(resid.data(), T, D);
    r.weight = make_view<const float>(ones.data(), D);
    r.y = make_view(normed.data(), T, D);
    return rmsnorm(be, r);
  });
  auto fc = random_vector(gen, T * 2 * F);
  std::vector<float> glu(T * F);
  report("swiglu", "(T,2F) -> (T,F)", glu, [&] {
    return swiglu(be, swiglu_args<float>{make_view<const float>(fc.data(), T, 2 * F),
                                         make_view(glu.data(), T, F)});
  });

  // rotary + shared-key sliding-window attention
  auto aq = random_vector(gen, T * Hq * Dh), ak = random_vector(gen, T * Dh),
       av = random_vector(gen, T * Hv * Dh);
  report("rotary", "q (1,T,Hq,Dh) in place", aq, [&] {
    rotary_args<float> r;
    r.x = make_view(aq.data(), 1, T, Hq, Dh);
    return rotary(be, r);
  });
  std::vector<float> att(T * Hq * Dh);
  swska_args<float> s;
  s.q = make_view<const float>(aq.data(), 1, T, Hq, Dh);
  s.k = make_view<const float>(ak.data(), 1, T, 1, Dh);
  s.v = make_view<const float>(av.data(), 1, T, Hv, Dh);
  s.o = make_view(att.data(), 1, T, Hq, Dh);
  s.window_left = 64;
  std::vector<unsigned char> attn_ws(swska_prefill_workspace_bytes(be, s) + workspace::alignment);
  report("swska_prefill", "Hq=4 Hk=1 Hv=4 Dh=32 window_left 64", att, [&] {
    return swska_prefill(be, s, workspace{attn_ws.data(), attn_ws.size()});
  });
  return 0;
}

} // namespace rodimus::cli
