// Depthwise causal conv with state, scalar reference: the formula, the state contract (last W
// inputs including the current token), step == prefill, prefill split through the state == one
// prefill, packed varlen == per sequence, 16-bit dtypes against f64, bad arguments.
#include "support/primitive_support.hpp"
#include "support/test_support.hpp"

#include <cmath>
#include <cstring>

#include "rodimus/backend/scalar/causal_conv.hpp"

using namespace rodimus;

namespace {

/// The definition in double: y (B,T,C) and the final state (B,C,W).
void formula(const std::vector<double>& x, const std::vector<float>& weight,
             const std::vector<float>& bias, const std::vector<double>& init, bool silu_on,
             index_t B, index_t T, index_t C, index_t W, std::vector<double>& y,
             std::vector<double>& fin) {
  y.assign(std::size_t(B * T * C), 0.0);
  fin.assign(std::size_t(B * C * W), 0.0);
  for (index_t b = 0; b < B; ++b)
    for (index_t c = 0; c < C; ++c) {
      auto ext = [&](index_t tau) {
        if (tau >= 0) return x[std::size_t((b * T + tau) * C + c)];
        return init.empty() ? 0.0 : init[std::size_t((b * C + c) * W + W + tau)];
      };
      for (index_t t = 0; t < T; ++t) {
        double acc = bias.empty() ? 0.0 : double(bias[std::size_t(c)]);
        for (index_t w = 0; w < W; ++w)
          acc += double(weight[std::size_t(c * W + w)]) * ext(t - (W - 1) + w);
        y[std::size_t((b * T + t) * C + c)] = silu_on ? acc / (1.0 + std::exp(-acc)) : acc;
      }
      for (index_t w = 0; w < W; ++w)
        fin[std::size_t((b * C + c) * W + w)] = ext(T - W + w);
    }
}

template <class A>
status conv(const std::vector<A>& x, const std::vector<float>& weight,
            const std::vector<float>& bias, const A* init, A* fin, bool silu_on, index_t B,
            index_t T, index_t C, index_t W, std::vector<A>& y, const std::int64_t* cu = nullptr,
            std::int64_t N = 0, const std::int32_t* slot = nullptr, index_t P = -1) {
  y.assign(std::size_t(B * T * C), A{});
  test::poison(y);
  const index_t rows = P >= 0 ? P : (cu ? N : B);
  causal_conv_args<A> a;
  a.x = make_view(x.data(), B, T, C);
  a.weight = make_view(weight.data(), C, W);
  if (!bias.empty()) a.bias = make_view(bias.data(), C);
  a.y = make_view(y.data(), B, T, C);
  if (init) a.initial_state = make_view(init, rows, C, W);
  if (fin) a.final_state = make_view(fin, rows, C, W);
  a.silu = silu_on;
  a.cu_seqlens = cu;
  a.num_seqs = N;
  a.slot = slot;
  return causal_conv(scalar{}, a);
}

} // namespace

TEST_CASE(
    "causal_conv equals the formula: kernel widths, short and long sequences, state, bias, silu") {
  auto g = test::rng(31);
  const index_t B = 2, C = 5;
  for (index_t W : {1, 2, 4}) {
    for (index_t T : {1, 3, 9}) {
      const auto x = test::uniform<double>(g, std::size_t(B * T * C), -2, 2);
      const auto weight = test::uniform<float>(g, std::size_t(C * W));
      const auto bias = test::uniform<float>(g, std::size_t(C));
      const auto init = test::uniform<double>(g, std::size_t(B * C * W), -2, 2);
      for (int variant = 0; variant < 8; ++variant) {
        const bool with_init = variant & 1, silu_on = variant & 2, with_bias = variant & 4;
        CAPTURE(W);
        CAPTURE(T);
        CAPTURE(variant);
        const std::vector<float> b = with_bias ? bias : std::vector<float>{};
        std::vector<double> y_want, fin_want, y;
        formula(x, weight, b, with_init ? init : std::vector<double>{}, silu_on, B, T, C, W, y_want,
                fin_want);
        std::vector<double> fin(std::size_t(B * C * W));
        test::poison(fin);
        REQUIRE(conv(x, weight, b, with_init ? init.data() : nullptr, fin.data(), silu_on, B, T, C,
                     W, y)
                    .ok());
        test::check_close(y, y_want, 1e-14, 1.0, "y");
        CHECK(test::max_abs_diff(fin, fin_want) == 0.0);
      }
    }
  }
}

TEST_CASE("causal_conv: one prefill equals a prefill split through the state (also in place)") {
  auto g = test::rng(32);
  const index_t B = 3, T = 11, C = 4, W = 4;
  const auto x = test::uniform<float>(g, std::size_t(B * T * C), -2, 2);
  const auto weight = test::uniform<float>(g, std::size_t(C * W));
  const auto bias = test::uniform<float>(g, std::size_t(C));
  const auto init = test::uniform<float>(g, std::size_t(B * C * W), -2, 2);
  std::vector<float> y_full, fin_full(init.size());
  REQUIRE(conv(x, weight, bias, init.data(), fin_full.data(), true, B, T, C, W, y_full).ok());
  for (index_t s : {0, 1, 2, 3, 4, 7, 10, 11}) {
    CAPTURE(s);
    auto slice = [&](index_t t0, index_t t1) {
      std::vector<float> out;
      for (index_t b = 0; b < B; ++b)
        out.insert(out.end(), x.begin() + (b * T + t0) * C, x.begin() + (b * T + t1) * C);
      return out;
    };
    // The state is updated in place: final_state aliases initial_state.
    auto state = init;
    std::vector<float> y1, y2;
    REQUIRE(conv(slice(0, s), weight, bias, state.data(), state.data(), true, B, s, C, W, y1).ok());
    REQUIRE(
        conv(slice(s, T), weight, bias, state.data(), state.data(), true, B, T - s, C, W, y2).ok());
    CHECK(test::max_abs_diff(state, fin_full) == 0.0);
    for (index_t b = 0; b < B; ++b) {
      const std::vector<float> want1(y_full.begin() + b * T * C, y_full.begin() + (b * T + s) * C);
      const std::vector<float> want2(y_full.begin() + (b * T + s) * C,
                                     y_full.begin() + (b + 1) * T * C);
      CHECK(test::max_abs_diff(
                std::vector<float>(y1.begin() + b * s * C, y1.begin() + (b + 1) * s * C), want1) ==
            0.0);
      CHECK(test::max_abs_diff(std::vector<float>(y2.begin() + b * (T - s) * C,
                                                  y2.begin() + (b + 1) * (T - s) * C),
                               want2) == 0.0);
    }
  }
}

TEST_CASE("causal_conv_step over a state pool equals the prefill; padding leaves the pool alone") {
  auto g = test::rng(33);
  const index_t T = 7, C = 6, W = 4, P = 4;
  for (bool silu_on : {true, false}) {
    const auto x = test::uniform<bf16>(g, std::size_t(2 * T * C), -2, 2);
    const auto weight = test::uniform<float>(g, std::size_t(C * W));
    const auto bias = test::uniform<float>(g, std::size_t(C));
    const auto init = test::uniform<bf16>(g, std::size_t(2 * C * W), -2, 2);
    std::vector<bf16> y_full, fin_full(init.size());
    REQUIRE(conv(x, weight, bias, init.data(), fin_full.data(), silu_on, 2, T, C, W, y_full).ok());
    // Sequence 0 in slot 3, sequence 1 in slot 1, a padding row between; slots 0 and 2 untouched.
    auto pool = test::uniform<bf16>(g, std::size_t(P * C * W));
    std::copy_n(init.begin(), C * W, pool.begin() + 3 * C * W);
    std::copy_n(init.begin() + C * W, C * W, pool.begin() + 1 * C * W);
    const auto pool0 = pool;
    const std::int32_t slot[3] = {3, padding_slot, 1};
    for (index_t t = 0; t < T; ++t) {
      auto xs = test::uniform<bf16>(g, std::size_t(3 * C));
      std::copy_n(x.begin() + t * C, C, xs.begin());
      std::copy_n(x.begin() + (T + t) * C, C, xs.begin() + 2 * C);
      std::vector<bf16> y(std::size_t(3 * C));
      test::poison(y);
      causal_conv_step_args<bf16> a;
      a.x = make_view<const bf16>(xs.data(), 3, C);
      a.weight = make_view(weight.data(), C, W);
      a.bias = make_view(bias.data(), C);
      a.state = make_view(pool.data(), P, C, W);
      a.slot = slot;
      a.y = make_view(y.data(), 3, C);
      a.silu = silu_on;
      REQUIRE(causal_conv_step(scalar{}, a).ok());
      CAPTURE(t);
      CHECK(test::max_abs_diff(
                std::vector<bf16>(y.begin(), y.begin() + C),
                std::vector<bf16>(y_full.begin() + t * C, y_full.begin() + (t + 1) * C)) == 0.0);
      CHECK(test::max_abs_diff(std::vector<bf16>(y.begin() + 2 * C, y.end()),
                               std::vector<bf16>(y_full.begin() + (T + t) * C,
                                                 y_full.begin() + (T + t + 1) * C)) == 0.0);
      for (index_t c = 0; c < C; ++c) // the padding row is not written (primitives/slots.hpp)
        CHECK(std::isnan(float(y[std::size_t(C + c)])));
    }
    CHECK(test::max_abs_diff(std::vector<bf16>(pool.begin() + 3 * C * W, pool.begin() + 4 * C * W),
                             std::vector<bf16>(fin_full.begin(), fin_full.begin() + C * W)) == 0.0);
    CHECK(test::max_abs_diff(std::vector<bf16>(pool.begin() + C * W, pool.begin() + 2 * C * W),
                             std::vector<bf16>(fin_full.begin() + C * W, fin_full.end())) == 0.0);
    CHECK(std::memcmp(pool.data(), pool0.data(), std::size_t(C * W) * 2) == 0);
    CHECK(std::memcmp(pool.data() + 2 * C * W, pool0.data() + 2 * C * W, std::size_t(C * W) * 2) ==
          0);
  }
}

TEST_CASE("causal_conv: a packed varlen batch with state slots equals one sequence at a time") {
  auto g = test::rng(34);
  const index_t C = 3, W = 4, P = 5;
  const std::int64_t cu[5] = {0, 2, 2, 8, 9};
  const std::int32_t slot[4] = {4, 0, 2, 1};
  const index_t T = 9;
  const auto x = test::uniform<double>(g, std::size_t(T * C), -2, 2);
  const auto weight = test::uniform<float>(g, std::size_t(C * W));
  const auto bias = test::uniform<float>(g, std::size_t(C));
  const auto init = test::uniform<double>(g, std::size_t(P * C * W), -2, 2);
  std::vector<double> fin(init.size(), 42.0), y;
  REQUIRE(conv(x, weight, bias, init.data(), fin.data(), true, 1, T, C, W, y, cu, 4, slot, P).ok());
  for (int n = 0; n < 4; ++n) {
    CAPTURE(n);
    const index_t L = cu[n + 1] - cu[n];
    std::vector<double> xn(x.begin() + cu[n] * C, x.begin() + cu[n + 1] * C), yn;
    std::vector<double> initn(init.begin() + slot[n] * C * W, init.begin() + (slot[n] + 1) * C * W),
        finn(initn.size());
    REQUIRE(conv(xn, weight, bias, initn.data(), finn.data(), true, 1, L, C, W, yn).ok());
    CHECK(test::max_abs_diff(std::vector<double>(y.begin() + cu[n] * C, y.begin() + cu[n + 1] * C),
                             yn) == 0.0);
    CHECK(test::max_abs_diff(std::vector<double>(fin.begin() + slot[n] * C * W,
                                                 fin.begin() + (slot[n] + 1) * C * W),
                             finn) == 0.0);
  }
  // Slot 3 is no sequence's: its final state is not written.
  for (index_t i = 3 * C * W; i < 4 * C * W; ++i)
    CHECK(fin[std::size_t(i)] == 42.0);
}

TEST_CASE("causal_conv in f32, bf16 and f16 stays within rounding of f64 on the same inputs") {
  auto g = test::rng(35);
  const index_t B = 2, T = 10, C = 16, W = 4;
  const auto x0 = test::uniform<double>(g, std::size_t(B * T * C), -2, 2);
  const auto init0 = test::uniform<double>(g, std::size_t(B * C * W), -2, 2);
  const auto weight = test::uniform<float>(g, std::size_t(C * W));
  const auto bias = test::uniform<float>(g, std::size_t(C));
  auto check = [&](auto tag, double rel, const char* what) {
    using A = decltype(tag);
    const auto x = test::convert<A>(x0), init = test::convert<A>(init0);
    const std::vector<double> xd = test::widen(x), initd = test::widen(init);
    std::vector<double> yd, find(init.size());
    REQUIRE(conv(xd, weight, bias, initd.data(), find.data(), true, B, T, C, W, yd).ok());
    std::vector<A> y, fin(init.size());
    REQUIRE(conv(x, weight, bias, init.data(), fin.data(), true, B, T, C, W, y).ok());
    test::check_close(y, yd, rel, 1.0, what);
    CHECK(test::max_abs_diff(test::widen(fin), find) ==
          0.0); // the state holds inputs: copied exactly
  };
  check(float{}, 1e-7, "f32");
  check(bf16{}, 1.0 / 256, "bf16");
  check(f16{}, 1.0 / 2048, "f16");
}

TEST_CASE("causal_conv: bad arguments return a status naming the argument") {
  std::vector<float> x(2 * 3 * 4), y(2 * 3 * 4), w(4 * 4), b(4), st(2 * 4 * 4);
  auto base = [&] {
    causal_conv_args<float> a;
    a.x = make_view<const float>(x.data(), 2, 3, 4);
    a.weight = make_view<const float>(w.data(), 4, 4);
    a.bias = make_view<const float>(b.data(), 4);
    a.y = make_view(y.data(), 2, 3, 4);
    a.initial_state = make_view<const float>(st.data(), 2, 4, 4);
    a.final_state = make_view(st.data(), 2, 4, 4);
    return a;
  };
  CHECK(causal_conv(scalar{}, base()).ok());
  test::check_bad_cases(
      base(), [](const causal_conv_args<float>& a) { return causal_conv(scalar{}, a); },
      {
          {"x.data = nullptr", [](causal_conv_args<float>& a) { a.x.data = nullptr; },
           status_code::null_pointer, "x"},
          {"weight.data = nullptr", [](causal_conv_args<float>& a) { a.weight.data = nullptr; },
           status_code::null_pointer, "weight"},
          {"weight.shape[0] = 3", [](causal_conv_args<float>& a) { a.weight.shape[0] = 3; },
           status_code::bad_shape, "weight"},
          {"weight.shape[1] = 0", [](causal_conv_args<float>& a) { a.weight.shape[1] = 0; },
           status_code::bad_shape, "weight"},
          {"bias.shape[0] = 5", [](causal_conv_args<float>& a) { a.bias.shape[0] = 5; },
           status_code::bad_shape, "bias"},
          {"y.shape[1] = 2", [](causal_conv_args<float>& a) { a.y.shape[1] = 2; },
           status_code::bad_shape, "y"},
          {"x.shape[1] = -1", [](causal_conv_args<float>& a) { a.x.shape[1] = -1; },
           status_code::bad_shape, "x"},
          {"initial_state.shape[2] = 3",
           [](causal_conv_args<float>& a) { a.initial_state.shape[2] = 3; }, status_code::bad_shape,
           "initial_state"},
          {"final_state.shape[0] = 1",
           [](causal_conv_args<float>& a) { a.final_state.shape[0] = 1; }, status_code::bad_shape,
           "final_state"},
      });
  {
    auto a = base();
    std::int32_t sl[2] = {0, 2};
    a.slot = sl;
    test::check_status(causal_conv(scalar{}, a), status_code::bad_argument, "slot");
  }
  {
    auto a = base();
    std::int32_t sl[2] = {0, 0}; // both sequences onto one final state
    a.slot = sl;
    test::check_status(causal_conv(scalar{}, a), status_code::bad_argument, "slot");
    a.final_state = {}; // reading one initial state twice is fine
    CHECK(causal_conv(scalar{}, a).ok());
  }

  {
    auto a = base();
    std::int64_t cu[2] = {0, 3};
    a.cu_seqlens = cu;
    a.num_seqs = 1;
    test::check_status(causal_conv(scalar{}, a), status_code::bad_shape, "cu_seqlens");
  }

  std::vector<float> xs(2 * 4), ys(2 * 4), pool(3 * 4 * 4);
  auto sbase = [&] {
    causal_conv_step_args<float> a;
    a.x = make_view<const float>(xs.data(), 2, 4);
    a.weight = make_view<const float>(w.data(), 4, 4);
    a.state = make_view(pool.data(), 3, 4, 4);
    a.y = make_view(ys.data(), 2, 4);
    return a;
  };
  CHECK(causal_conv_step(scalar{}, sbase()).ok());
  test::check_bad_cases(
      sbase(), [](const causal_conv_step_args<float>& a) { return causal_conv_step(scalar{}, a); },
      {
          {"state.data = nullptr", [](causal_conv_step_args<float>& a) { a.state.data = nullptr; },
           status_code::null_pointer, "state"},
          {"state.shape[2] = 3", [](causal_conv_step_args<float>& a) { a.state.shape[2] = 3; },
           status_code::bad_shape, "state"},
          {"y.shape[1] = 3", [](causal_conv_step_args<float>& a) { a.y.shape[1] = 3; },
           status_code::bad_shape, "y"},
          {"state.shape[0] = 1", [](causal_conv_step_args<float>& a) { a.state.shape[0] = 1; },
           status_code::bad_shape, "slot"},
      });
  {
    // A rejected call leaves the pool as it was.
    auto a = sbase();
    std::int32_t sl[2] = {0, 3};
    a.slot = sl;
    pool.assign(pool.size(), 1.5f);
    test::check_status(causal_conv_step(scalar{}, a), status_code::bad_argument, "slot");
    for (float v : pool)
      CHECK(v == 1.5f);
    // Two rows on one state would shift it twice: rejected, nothing written.
    sl[0] = sl[1] = 2;
    test::check_status(causal_conv_step(scalar{}, a), status_code::bad_argument, "slot");
    for (float v : pool)
      CHECK(v == 1.5f);
    sl[0] = sl[1] = -1; // padding rows may repeat
    CHECK(causal_conv_step(scalar{}, a).ok());
  }
}
