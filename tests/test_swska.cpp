// Shared-key sliding-window attention, scalar reference: golden fixtures of the official model,
// a straightforward formula, and the invariants that tie prefill, packed varlen, history, the ring
// and decode together.
#include "support/primitive_support.hpp"
#include "support/test_support.hpp"

#include <cstring>

#include "rodimus/backend/scalar/swska.hpp"

using namespace rodimus;

namespace {

struct dims {
  index_t B, T, Hq, Hk, Hv, D;
};

template <class A>
tensor_view<const A, 4> cview(const std::vector<A>& v, index_t a, index_t b, index_t c, index_t d) {
  return make_view<const A>(v.data(), a, b, c, d);
}
template <class A>
tensor_view<A, 4> mview(std::vector<A>& v, index_t a, index_t b, index_t c, index_t d) {
  return make_view<A>(v.data(), a, b, c, d);
}

/// The definition, in double, each sequence of the batch starting at position 0.
std::vector<double> naive(const std::vector<double>& q, const std::vector<double>& k,
                          const std::vector<double>& v, dims s, int window_left, double scale) {
  std::vector<double> o(q.size());
  for (index_t b = 0; b < s.B; ++b)
    for (index_t i = 0; i < s.T; ++i)
      for (index_t h = 0; h < s.Hq; ++h) {
        const index_t j0 = window_left < 0 ? 0 : std::max<index_t>(0, i - window_left);
        std::vector<double> p;
        for (index_t j = j0; j <= i; ++j) {
          double dot = 0;
          for (index_t d = 0; d < s.D; ++d)
            dot += q[((b * s.T + i) * s.Hq + h) * s.D + d] *
                   k[((b * s.T + j) * s.Hk + h % s.Hk) * s.D + d];
          p.push_back(dot * scale);
        }
        const double m = *std::max_element(p.begin(), p.end());
        double z = 0;
        for (auto& x : p)
          z += (x = std::exp(x - m));
        for (index_t d = 0; d < s.D; ++d) {
          double acc = 0;
          for (index_t j = j0; j <= i; ++j)
            acc += p[std::size_t(j - j0)] * v[((b * s.T + j) * s.Hv + h % s.Hv) * s.D + d];
          o[((b * s.T + i) * s.Hq + h) * s.D + d] = acc / z;
        }
      }
  return o;
}

/// swska_prefill on contiguous buffers; o poisoned first.
template <class A>
std::vector<A> prefill(const std::vector<A>& q, const std::vector<A>& k, const std::vector<A>& v,
                       dims s, int window_left, float scale = 0.0f,
                       const std::int64_t* cu = nullptr, std::int64_t num_seqs = 0) {
  std::vector<A> o(q.size());
  test::poison(o);
  swska_args<A> a;
  a.q = cview(q, s.B, s.T, s.Hq, s.D);
  a.k = cview(k, s.B, s.T, s.Hk, s.D);
  a.v = cview(v, s.B, s.T, s.Hv, s.D);
  a.o = mview(o, s.B, s.T, s.Hq, s.D);
  a.window_left = window_left;
  a.scale = scale;
  a.cu_seqlens = cu;
  a.num_seqs = num_seqs;
  test::workspace_buffer ws(swska_prefill_workspace_bytes(scalar{}, a));
  const status st = swska_prefill(scalar{}, a, ws.get());
  REQUIRE_MESSAGE(st.ok(), to_string(st.code) << ": " << st.what);
  return o;
}

/// Tokens [t0, t1) of every row of a (B, T, H, D) buffer, as (B, t1 - t0, H, D).
template <class A>
std::vector<A> slice_t(const std::vector<A>& x, index_t B, index_t T, index_t H, index_t D,
                       index_t t0, index_t t1) {
  std::vector<A> out;
  for (index_t b = 0; b < B; ++b)
    out.insert(out.end(), x.begin() + (b * T + t0) * H * D, x.begin() + (b * T + t1) * H * D);
  return out;
}

void read_golden(const std::string& name, std::vector<double>& q, std::vector<double>& k,
                 std::vector<double>& v, std::vector<double>& o, dims& s, int& window_left) {
  auto f = test::open_golden("primitives.safetensors");
  q = f.read<double>(name + ".q");
  k = f.read<double>(name + ".k");
  v = f.read<double>(name + ".v");
  o = f.read<double>(name + ".o");
  const auto& qs = f.at(name + ".q").shape;
  s = {qs[0], qs[1], qs[2], f.at(name + ".k").shape[2], f.at(name + ".v").shape[2], qs[3]};
  window_left = int(f.read<std::int64_t>(name + ".window_left").at(0));
}

} // namespace

TEST_CASE("swska_prefill matches the golden fixtures (f64 and f32)") {
  for (const char* name : {"swska_a", "swska_b"}) {
    CAPTURE(name);
    std::vector<double> q, k, v, o;
    dims s{};
    int wl = 0;
    read_golden(name, q, k, v, o, s, wl);
    REQUIRE(test::max_abs(o) > 0.0);
    test::check_close(prefill(q, k, v, s, wl), o, 1e-10, 0.0, std::string(name) + " f64");
    test::check_close(
        prefill(test::convert<float>(q), test::convert<float>(k), test::convert<float>(v), s, wl),
        o, 1e-5, 0.0, std::string(name) + " f32");
    // The fixtures' window really matters: the unbounded result differs.
    CHECK(test::max_abs_diff(prefill(q, k, v, s, -1), o) > 1e-6);
  }
}

TEST_CASE("swska_prefill equals the formula for windows, head tilings and an explicit scale") {
  auto g = test::rng(11);
  for (dims s : {dims{2, 13, 4, 1, 2, 8}, dims{1, 9, 6, 3, 2, 5}, dims{3, 1, 1, 1, 1, 3}}) {
    const auto q = test::uniform<double>(g, std::size_t(s.B * s.T * s.Hq * s.D), -2, 2);
    const auto k = test::uniform<double>(g, std::size_t(s.B * s.T * s.Hk * s.D), -2, 2);
    const auto v = test::uniform<double>(g, std::size_t(s.B * s.T * s.Hv * s.D));
    for (int wl : {-1, 0, 1, 4, 100}) {
      CAPTURE(wl);
      test::check_close(prefill(q, k, v, s, wl),
                        naive(q, k, v, s, wl, 1.0 / std::sqrt(double(s.D))), 1e-13, 1.0,
                        "default scale");
      test::check_close(prefill(q, k, v, s, wl, 0.3f), naive(q, k, v, s, wl, double(0.3f)), 1e-13,
                        1.0, "scale 0.3");
    }
  }
}

TEST_CASE("swska_prefill in f32, bf16 and f16 equals f64 on the same inputs within rounding") {
  auto g = test::rng(12);
  const dims s{2, 17, 4, 1, 4, 16};
  const auto q0 = test::uniform<double>(g, std::size_t(s.B * s.T * s.Hq * s.D), -2, 2);
  const auto k0 = test::uniform<double>(g, std::size_t(s.B * s.T * s.Hk * s.D), -2, 2);
  const auto v0 = test::uniform<double>(g, std::size_t(s.B * s.T * s.Hv * s.D));
  auto run = [&](auto tag, double rel, const char* what) {
    using A = decltype(tag);
    const auto q = test::convert<A>(q0), k = test::convert<A>(k0), v = test::convert<A>(v0);
    const auto qd = test::widen(q), kd = test::widen(k), vd = test::widen(v);
    for (int wl : {-1, 3}) {
      // Only the final rounding to A differs: half an ulp of the largest output at most.
      test::check_close(prefill(q, k, v, s, wl), prefill(qd, kd, vd, s, wl), rel, 0.0, what);
      // Against the unrounded f64 inputs: input rounding adds a few ulps.
      test::check_close(prefill(q, k, v, s, wl), prefill(q0, k0, v0, s, wl), 8 * rel, 0.0, what);
    }
  };
  run(float{}, 1e-7, "f32");
  run(bf16{}, 1.0 / 256, "bf16");
  run(f16{}, 1.0 / 2048, "f16");
}

TEST_CASE("swska_prefill: a packed varlen batch equals one sequence at a time") {
  auto g = test::rng(13);
  const index_t Hq = 4, Hk = 1, Hv = 2, D = 6;
  const std::vector<std::int64_t> lens = {3, 0, 9, 1, 6};
  std::vector<std::int64_t> cu = {0};
  for (auto l : lens)
    cu.push_back(cu.back() + l);
  const index_t T = cu.back();
  const dims packed{1, T, Hq, Hk, Hv, D};
  const auto q = test::uniform<double>(g, std::size_t(T * Hq * D), -2, 2);
  const auto k = test::uniform<double>(g, std::size_t(T * Hk * D), -2, 2);
  const auto v = test::uniform<double>(g, std::size_t(T * Hv * D));
  for (int wl : {-1, 0, 2, 50}) {
    CAPTURE(wl);
    const auto o = prefill(q, k, v, packed, wl, 0.0f, cu.data(), std::int64_t(lens.size()));
    for (std::size_t n = 0; n < lens.size(); ++n) {
      const index_t t0 = cu[n], t1 = cu[n + 1];
      if (t1 == t0) continue;
      const dims one{1, t1 - t0, Hq, Hk, Hv, D};
      const auto want = prefill(slice_t(q, 1, T, Hq, D, t0, t1), slice_t(k, 1, T, Hk, D, t0, t1),
                                slice_t(v, 1, T, Hv, D, t0, t1), one, wl);
      CHECK(test::max_abs_diff(slice_t(o, 1, T, Hq, D, t0, t1), want) == 0.0);
    }
  }
}

TEST_CASE(
    "swska_decode over the ring equals prefill at every position; padding rows leave rings alone") {
  auto g = test::rng(14);
  const index_t T = 12, Hq = 4, Hk = 1, Hv = 2, D = 5;
  const dims s{2, T, Hq, Hk, Hv, D};
  const auto q = test::uniform<double>(g, std::size_t(2 * T * Hq * D), -2, 2);
  const auto k = test::uniform<double>(g, std::size_t(2 * T * Hk * D), -2, 2);
  const auto v = test::uniform<double>(g, std::size_t(2 * T * Hv * D));
  // Windows smaller and larger than T, the minimum ring and a larger one; unbounded with W = T.
  struct cfg {
    int wl;
    index_t W;
  };
  for (cfg c :
       {cfg{0, 1}, cfg{3, 4}, cfg{3, 6}, cfg{7, 8}, cfg{30, 31}, cfg{-1, T}, cfg{-1, T + 5}}) {
    CAPTURE(c.wl);
    CAPTURE(c.W);
    const auto want = prefill(q, k, v, s, c.wl);
    const index_t P = 3;
    // Unwritten ring slots hold NaN: decode must never read them.
    std::vector<double> ring_k(std::size_t(P * c.W * Hk * D)),
        ring_v(std::size_t(P * c.W * Hv * D));
    test::poison(ring_k);
    test::poison(ring_v);
    for (std::size_t i = std::size_t(c.W * Hk * D); i < std::size_t(2 * c.W * Hk * D); ++i)
      ring_k[i] = 7.0;
    const auto ring_k_slot1 =
        std::vector<double>(ring_k.begin() + c.W * Hk * D, ring_k.begin() + 2 * c.W * Hk * D);
    const auto ring_v_slot1 =
        std::vector<double>(ring_v.begin() + c.W * Hv * D, ring_v.begin() + 2 * c.W * Hv * D);
    // Rows: sequence 0 in slot 2, a padding row, sequence 1 in slot 0; slot 1 is never touched.
    const std::int32_t slot[3] = {2, -1, 0};
    const index_t rows = 3;
    for (index_t t = 0; t < T; ++t) {
      std::vector<double> qs(std::size_t(rows * Hq * D)), ks(std::size_t(rows * Hk * D)),
          vs(std::size_t(rows * Hv * D));
      qs = test::uniform<double>(g, qs.size()); // the padding row gets random inputs
      ks = test::uniform<double>(g, ks.size());
      vs = test::uniform<double>(g, vs.size());
      const index_t seq_of_row[3] = {0, -1, 1};
      for (index_t r = 0; r < rows; ++r) {
        const index_t b = seq_of_row[r];
        if (b < 0) continue;
        std::copy_n(q.begin() + ((b * T + t) * Hq) * D, Hq * D, qs.begin() + r * Hq * D);
        std::copy_n(k.begin() + ((b * T + t) * Hk) * D, Hk * D, ks.begin() + r * Hk * D);
        std::copy_n(v.begin() + ((b * T + t) * Hv) * D, Hv * D, vs.begin() + r * Hv * D);
      }
      const std::int64_t pos[3] = {t, 123456789, t};
      std::vector<double> o(std::size_t(rows * Hq * D));
      test::poison(o);
      swska_decode_args<double> a;
      a.q = make_view<const double>(qs.data(), rows, Hq, D);
      a.k = make_view<const double>(ks.data(), rows, Hk, D);
      a.v = make_view<const double>(vs.data(), rows, Hv, D);
      a.o = make_view(o.data(), rows, Hq, D);
      a.ring_k = make_view(ring_k.data(), P, c.W, Hk, D);
      a.ring_v = make_view(ring_v.data(), P, c.W, Hv, D);
      a.slot = slot;
      a.position = pos;
      a.window_left = c.wl;
      test::workspace_buffer ws(swska_decode_workspace_bytes(scalar{}, a));
      const status st = swska_decode(scalar{}, a, ws.get());
      REQUIRE_MESSAGE(st.ok(), st.what);
      for (index_t r = 0; r < rows; ++r) {
        const index_t b = seq_of_row[r];
        const std::vector<double> got(o.begin() + r * Hq * D, o.begin() + (r + 1) * Hq * D);
        if (b < 0) { // a padding row is not written (primitives/slots.hpp)
          CHECK(test::all_nan(got));
          continue;
        }
        const std::vector<double> ref(want.begin() + ((b * T + t) * Hq) * D,
                                      want.begin() + ((b * T + t + 1) * Hq) * D);
        CAPTURE(t);
        test::check_close(got, ref, 1e-13, 1.0, "decode vs prefill");
      }
    }
    CHECK(std::memcmp(ring_k.data() + c.W * Hk * D, ring_k_slot1.data(), ring_k_slot1.size() * 8) ==
          0);
    CHECK(std::memcmp(ring_v.data() + c.W * Hv * D, ring_v_slot1.data(), ring_v_slot1.size() * 8) ==
          0);
  }
}

TEST_CASE("swska: chunked prefill through the ring (history, packed) and then decode equals one "
          "prefill") {
  auto g = test::rng(15);
  const index_t Hq = 2, Hk = 1, Hv = 2, D = 4;
  const std::vector<index_t> lens = {14, 9, 11};
  const index_t Nseq = index_t(lens.size()), T = 14;
  // Full sequences, each padded to T in a (N, T, H, D) buffer; the reference prefills each alone.
  const auto q = test::uniform<double>(g, std::size_t(Nseq * T * Hq * D), -2, 2);
  const auto k = test::uniform<double>(g, std::size_t(Nseq * T * Hk * D), -2, 2);
  const auto v = test::uniform<double>(g, std::size_t(Nseq * T * Hv * D));
  // Split schedules (the chunk ends of every sequence, per round); the last round ends at lens.
  const std::vector<std::vector<std::vector<index_t>>> schedules = {
      {{1, 1, 1}}, // 1 token, then the rest
      {{4, 0, 9}}, // a sequence with an empty first chunk, another done in round 1
      {{3, 3, 3}, {7, 4, 8}, {8, 8, 10}},
      {{13, 8, 10}}, // all but the last token, then decode-like 1-token chunks
  };
  struct cfg {
    int wl;
    index_t W;
  };
  for (cfg c : {cfg{0, 1}, cfg{2, 3}, cfg{5, 6}, cfg{5, 9}, cfg{40, 41}, cfg{-1, 14}}) {
    const auto want = prefill(q, k, v, dims{Nseq, T, Hq, Hk, Hv, D}, c.wl);
    for (std::size_t si = 0; si < schedules.size(); ++si) {
      CAPTURE(c.wl);
      CAPTURE(c.W);
      CAPTURE(si);
      std::vector<std::vector<index_t>> ends = schedules[si];
      ends.push_back(lens);
      const index_t P = Nseq + 1;
      const std::int32_t slots[3] = {3, 0, 1}; // pool slot of each sequence; slot 2 unused
      std::vector<double> ring_k(std::size_t(P * c.W * Hk * D)),
          ring_v(std::size_t(P * c.W * Hv * D));
      test::poison(ring_k);
      test::poison(ring_v);
      std::vector<index_t> done(std::size_t(Nseq), 0);
      for (const auto& e : ends) {
        // Pack this round's chunks.
        std::vector<std::int64_t> cu = {0}, hist;
        std::vector<double> qp, kp, vp;
        for (index_t n = 0; n < Nseq; ++n) {
          const index_t a = done[std::size_t(n)], b = e[std::size_t(n)];
          hist.push_back(a);
          cu.push_back(cu.back() + (b - a));
          for (index_t t = a; t < b; ++t) {
            qp.insert(qp.end(), q.begin() + ((n * T + t) * Hq) * D,
                      q.begin() + ((n * T + t + 1) * Hq) * D);
            kp.insert(kp.end(), k.begin() + ((n * T + t) * Hk) * D,
                      k.begin() + ((n * T + t + 1) * Hk) * D);
            vp.insert(vp.end(), v.begin() + ((n * T + t) * Hv) * D,
                      v.begin() + ((n * T + t + 1) * Hv) * D);
          }
        }
        const index_t Tp = cu.back();
        std::vector<double> o(std::size_t(Tp * Hq * D));
        test::poison(o);
        swska_args<double> a;
        a.q = cview(qp, 1, Tp, Hq, D);
        a.k = cview(kp, 1, Tp, Hk, D);
        a.v = cview(vp, 1, Tp, Hv, D);
        a.o = mview(o, 1, Tp, Hq, D);
        a.window_left = c.wl;
        a.cu_seqlens = cu.data();
        a.num_seqs = Nseq;
        a.history_k = cview(ring_k, P, c.W, Hk, D);
        a.history_v = cview(ring_v, P, c.W, Hv, D);
        a.slot = slots;
        a.history_len = hist.data();
        test::workspace_buffer ws(swska_prefill_workspace_bytes(scalar{}, a));
        const status st = swska_prefill(scalar{}, a, ws.get());
        REQUIRE_MESSAGE(st.ok(), st.what);
        swska_ring_store_args<double> rs;
        rs.k = a.k;
        rs.v = a.v;
        rs.ring_k = mview(ring_k, P, c.W, Hk, D);
        rs.ring_v = mview(ring_v, P, c.W, Hv, D);
        rs.slot = slots;
        rs.start_position = hist.data();
        rs.cu_seqlens = cu.data();
        rs.num_seqs = Nseq;
        REQUIRE(swska_ring_store(scalar{}, rs).ok());
        for (index_t n = 0; n < Nseq; ++n) {
          const index_t a0 = done[std::size_t(n)], b0 = e[std::size_t(n)];
          if (b0 == a0) continue;
          const std::vector<double> got(o.begin() + cu[std::size_t(n)] * Hq * D,
                                        o.begin() + cu[std::size_t(n) + 1] * Hq * D);
          const std::vector<double> ref(want.begin() + ((n * T + a0) * Hq) * D,
                                        want.begin() + ((n * T + b0) * Hq) * D);
          test::check_close(got, ref, 1e-13, 1.0, "chunk vs one prefill");
          done[std::size_t(n)] = b0;
        }
      }
    }
  }
}

TEST_CASE("swska: prefill, swska_ring_store, then swska_decode per token equals one prefill") {
  auto g = test::rng(16);
  const index_t B = 2, T = 10, Hq = 4, Hk = 2, Hv = 4, D = 3;
  const auto q = test::uniform<float>(g, std::size_t(B * T * Hq * D), -2, 2);
  const auto k = test::uniform<float>(g, std::size_t(B * T * Hk * D), -2, 2);
  const auto v = test::uniform<float>(g, std::size_t(B * T * Hv * D));
  struct cfg {
    int wl;
    index_t W;
  };
  for (cfg c : {cfg{0, 1}, cfg{2, 3}, cfg{4, 7}, cfg{20, 21}, cfg{-1, T}}) {
    const auto want = prefill(q, k, v, dims{B, T, Hq, Hk, Hv, D}, c.wl);
    for (index_t T0 : {1, 3, 9}) {
      CAPTURE(c.wl);
      CAPTURE(c.W);
      CAPTURE(T0);
      const auto q0 = slice_t(q, B, T, Hq, D, 0, T0), k0 = slice_t(k, B, T, Hk, D, 0, T0),
                 v0 = slice_t(v, B, T, Hv, D, 0, T0);
      const auto o0 = prefill(q0, k0, v0, dims{B, T0, Hq, Hk, Hv, D}, c.wl);
      CHECK(test::max_abs_diff(o0, slice_t(want, B, T, Hq, D, 0, T0)) == 0.0);
      std::vector<float> ring_k(std::size_t(B * c.W * Hk * D)),
          ring_v(std::size_t(B * c.W * Hv * D));
      test::poison(ring_k);
      test::poison(ring_v);
      const std::int32_t slot[2] = {1, 0};
      swska_ring_store_args<float> rs;
      rs.k = cview(k0, B, T0, Hk, D);
      rs.v = cview(v0, B, T0, Hv, D);
      rs.ring_k = mview(ring_k, B, c.W, Hk, D);
      rs.ring_v = mview(ring_v, B, c.W, Hv, D);
      rs.slot = slot;
      REQUIRE(swska_ring_store(scalar{}, rs).ok());
      for (index_t t = T0; t < T; ++t) {
        const auto qt = slice_t(q, B, T, Hq, D, t, t + 1), kt = slice_t(k, B, T, Hk, D, t, t + 1),
                   vt = slice_t(v, B, T, Hv, D, t, t + 1);
        std::vector<float> o(qt.size());
        test::poison(o);
        const std::int64_t pos[2] = {t, t};
        swska_decode_args<float> a;
        a.q = make_view(qt.data(), B, Hq, D);
        a.k = make_view(kt.data(), B, Hk, D);
        a.v = make_view(vt.data(), B, Hv, D);
        a.o = make_view(o.data(), B, Hq, D);
        a.ring_k = mview(ring_k, B, c.W, Hk, D);
        a.ring_v = mview(ring_v, B, c.W, Hv, D);
        a.slot = slot;
        a.position = pos;
        a.window_left = c.wl;
        test::workspace_buffer ws(swska_decode_workspace_bytes(scalar{}, a));
        REQUIRE(swska_decode(scalar{}, a, ws.get()).ok());
        CAPTURE(t);
        CHECK(test::max_abs_diff(o, slice_t(want, B, T, Hq, D, t, t + 1)) == 0.0);
      }
    }
  }
}

TEST_CASE("swska: bad arguments return a status naming the argument") {
  std::vector<float> q(32), k(16), v(32), o(32), rk(4 * 16), rv(4 * 32);
  auto base = [&] {
    swska_args<float> a;
    a.q = cview(q, 1, 4, 2, 4);
    a.k = cview(k, 1, 4, 1, 4);
    a.v = cview(v, 1, 4, 2, 4);
    a.o = mview(o, 1, 4, 2, 4);
    return a;
  };
  std::vector<unsigned char> buf(4096);
  auto run = [&](const swska_args<float>& a) {
    return swska_prefill(scalar{}, a, workspace{buf.data(), buf.size(), 0});
  };
  CHECK(run(base()).ok());
  test::check_bad_cases(
      base(), run,
      {
          {"q.data = nullptr", [](swska_args<float>& a) { a.q.data = nullptr; },
           status_code::null_pointer, "q"},
          {"o.data = nullptr", [](swska_args<float>& a) { a.o.data = nullptr; },
           status_code::null_pointer, "o"},
          {"k.shape[1] = 3", [](swska_args<float>& a) { a.k.shape[1] = 3; }, status_code::bad_shape,
           "k"},
          {"v.shape[3] = 2", [](swska_args<float>& a) { a.v.shape[3] = 2; }, status_code::bad_shape,
           "v"},
          {"o.shape[2] = 1", [](swska_args<float>& a) { a.o.shape[2] = 1; }, status_code::bad_shape,
           "o"},
          {"q.shape[0] = -1", [](swska_args<float>& a) { a.q.shape[0] = -1; },
           status_code::bad_shape, "q"},
          {"q.shape[3] = 0, k.shape[3] = 0, v.shape[3] = 0, o.shape[3] = 0",
           [](swska_args<float>& a) {
             a.q.shape[3] = 0;
             a.k.shape[3] = 0;
             a.v.shape[3] = 0;
             a.o.shape[3] = 0;
           },
           status_code::bad_shape, "q"},
          {"window_left = -2", [](swska_args<float>& a) { a.window_left = -2; },
           status_code::bad_argument, "window_left"},
          {"scale = NAN", [](swska_args<float>& a) { a.scale = NAN; }, status_code::bad_argument,
           "scale"},
          {"k.shape[2] = 3 (Hq = 2, Hk = 3)", [](swska_args<float>& a) { a.k.shape[2] = 3; },
           status_code::bad_shape, "k"},
          {"v.shape[2] = 3 (Hq = 2, Hv = 3)", [](swska_args<float>& a) { a.v.shape[2] = 3; },
           status_code::bad_shape, "v"},
      });
  {
    std::int64_t cu[3] = {0, 3, 5}; // cu[N] != T
    auto a = base();
    a.cu_seqlens = cu;
    a.num_seqs = 2;
    test::check_status(run(a), status_code::bad_argument, "cu_seqlens");
    cu[2] = 4;
    cu[1] = 5; // decreasing
    test::check_status(run(a), status_code::bad_argument, "cu_seqlens");
    cu[1] = 2;
    CHECK(run(a).ok());
    a.num_seqs = -1;
    test::check_status(run(a), status_code::bad_shape, "num_seqs");
  }
  {
    std::int64_t hl[1] = {2};
    auto a = base();
    a.history_len = hl;
    test::check_status(run(a), status_code::null_pointer, "history_k");
    a.history_k = cview(rk, 4, 4, 1, 4);
    test::check_status(run(a), status_code::null_pointer, "history_v");
    a.history_v = cview(rv, 4, 4, 2, 4);
    CHECK(run(a).ok());
    hl[0] = -1;
    test::check_status(run(a), status_code::bad_argument, "history_len");
    hl[0] = 5;
    test::check_status(run(a), status_code::bad_argument, "history_len"); // unbounded: W = 4 < 5
    a.window_left = 4;
    CHECK(run(a).ok()); // bounded: needs W >= 4
    a.window_left = 5;
    test::check_status(run(a), status_code::bad_argument, "history_len");
    std::int32_t slot[1] = {4};
    a.window_left = 2;
    a.slot = slot;
    test::check_status(run(a), status_code::bad_argument, "slot");
    a.history_v.shape[1] = 3;
    test::check_status(run(a), status_code::bad_shape, "history_v");
  }
  {
    auto a = base();
    test::check_status(swska_prefill(scalar{}, a, workspace{}), status_code::workspace_too_small,
                       "workspace");
  }

  // Decode.
  std::vector<float> dq(8), dk(4), dv(8), dout(8);
  std::int64_t pos[1] = {0};
  auto dbase = [&] {
    swska_decode_args<float> a;
    a.q = make_view<const float>(dq.data(), 1, 2, 4);
    a.k = make_view<const float>(dk.data(), 1, 1, 4);
    a.v = make_view<const float>(dv.data(), 1, 2, 4);
    a.o = make_view(dout.data(), 1, 2, 4);
    a.ring_k = make_view(rk.data(), 4, 4, 1, 4);
    a.ring_v = make_view(rv.data(), 4, 4, 2, 4);
    a.position = pos;
    return a;
  };
  auto drun = [&](const swska_decode_args<float>& a) {
    return swska_decode(scalar{}, a, workspace{buf.data(), buf.size(), 0});
  };
  CHECK(drun(dbase()).ok());
  test::check_bad_cases(
      dbase(), drun,
      {
          {"position = nullptr", [](swska_decode_args<float>& a) { a.position = nullptr; },
           status_code::null_pointer, "position"},
          {"ring_k.data = nullptr", [](swska_decode_args<float>& a) { a.ring_k.data = nullptr; },
           status_code::null_pointer, "ring_k"},
          {"window_left = 4 (W < 5)", [](swska_decode_args<float>& a) { a.window_left = 4; },
           status_code::bad_shape, "ring_k"},
          {"window_left = -3", [](swska_decode_args<float>& a) { a.window_left = -3; },
           status_code::bad_argument, "window_left"},
          {"ring_v.shape[0] = 3", [](swska_decode_args<float>& a) { a.ring_v.shape[0] = 3; },
           status_code::bad_shape, "ring_v"},
          {"k.shape[2] = 3", [](swska_decode_args<float>& a) { a.k.shape[2] = 3; },
           status_code::bad_shape, "k"},
      });
  {
    auto a = dbase();
    pos[0] = 4;
    test::check_status(drun(a), status_code::bad_argument, "position");
    pos[0] = 0;
  }
  {
    auto a = dbase();
    pos[0] = -1;
    test::check_status(drun(a), status_code::bad_argument, "position");
    pos[0] = 0;
  }
  {
    auto a = dbase();
    std::int32_t sl[1] = {4};
    a.slot = sl;
    test::check_status(drun(a), status_code::bad_argument, "slot");
  }
  {
    auto a = dbase();
    a.ring_k.shape[0] = 0;
    a.ring_v.shape[0] = 0;
    test::check_status(drun(a), status_code::bad_shape, "slot");
  }
  {
    // A rejected call leaves the rings as they were.
    auto before = rk;
    auto a = dbase();
    pos[0] = 9;
    CHECK(!drun(a).ok());
    pos[0] = 0;
    CHECK(std::memcmp(before.data(), rk.data(), rk.size() * 4) == 0);
  }
  {
    // Two rows on one ring: each would write its key into the other's window. Rejected before
    // anything is written; a padding row (-1) may repeat.
    std::vector<float> q2(3 * 8, 0.5f), k2(3 * 4, 0.25f), v2(3 * 8, 1.0f), o2(3 * 8);
    const std::int64_t pos2[3] = {0, 1, 2};
    std::int32_t sl[3] = {1, -1, 1};
    test::poison(rk);
    const auto rk_before = rk;
    swska_decode_args<float> a;
    a.q = make_view<const float>(q2.data(), 3, 2, 4);
    a.k = make_view<const float>(k2.data(), 3, 1, 4);
    a.v = make_view<const float>(v2.data(), 3, 2, 4);
    a.o = make_view(o2.data(), 3, 2, 4);
    a.ring_k = make_view(rk.data(), 4, 4, 1, 4);
    a.ring_v = make_view(rv.data(), 4, 4, 2, 4);
    a.slot = sl;
    a.position = pos2;
    test::check_status(drun(a), status_code::bad_argument, "slot");
    CHECK(std::memcmp(rk_before.data(), rk.data(), rk.size() * 4) == 0);
    sl[2] = -1;
    CHECK(drun(a).ok());
    std::fill(rk.begin(), rk.end(), 0.0f);
  }
  // Ring store.
  {
    swska_ring_store_args<float> a;
    a.k = cview(k, 1, 4, 1, 4);
    a.v = cview(v, 1, 4, 2, 4);
    a.ring_k = mview(rk, 4, 4, 1, 4);
    a.ring_v = mview(rv, 4, 4, 2, 4);
    CHECK(swska_ring_store(scalar{}, a).ok());
    std::int64_t sp[1] = {-2};
    a.start_position = sp;
    test::check_status(swska_ring_store(scalar{}, a), status_code::bad_argument, "start_position");
    a.start_position = nullptr;
    a.ring_v.shape[1] = 2;
    test::check_status(swska_ring_store(scalar{}, a), status_code::bad_shape, "ring_v");
  }
}
