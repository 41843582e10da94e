// swska_prefill on cpu<Arch> against the scalar reference on fresh random inputs with poisoned
// outputs: batched and packed (cu_seqlens, with an empty sequence) inputs, windows smaller and
// larger than T and unbounded, key blocks crossed, Hq / Hk / Hv tilings, history rings (bounded
// and unbounded), bf16 activations and head dimensions off the SIMD path.
//
// swska_decode on cpu<Arch> against the scalar reference: several decode steps over ring pools on
// fresh random inputs (the rings start random too), with padding rows, distinct slots, bounded
// windows that wrap around the ring, unbounded attention, shared and per-head keys/values, and
// head dimensions on and off the SIMD path.
//
// Tolerances, relative to max|o|: prefill f32 1e-5 (online softmax in f32); decode f32 2e-5 (scores
// of D products accumulated in f32 and an f32 exp against the double reference; the weights are <=
// 1 and sum to 1, so the error stays at a few f32 ulps of the largest value). bf16 / f16 outputs:
// one rounding step of the output, 2^-7 / 2^-10. The rings are copies of the inputs: exact.
#include "test_cpu_support.hpp"

#include "rodimus/backend/cpu/swska.hpp"

using namespace rodimus;

namespace {

template <class T> double out_tolerance() {
  if (std::is_same_v<T, bf16>) return 1.0 / 128;
  if (std::is_same_v<T, f16>) return 1.0 / 1024;
  return 2e-5;
}

template <class Arch, class Act>
void check_decode(index_t B, index_t P, index_t W, index_t Hq, index_t Hk, index_t Hv, index_t D,
                  int window_left, bool pool) {
  CAPTURE(B);
  CAPTURE(W);
  CAPTURE(Hq);
  CAPTURE(Hk);
  CAPTURE(Hv);
  CAPTURE(D);
  CAPTURE(window_left);
  CAPTURE(pool);
  auto g = test::rng(std::uint64_t(B * 7919 + W * 131 + Hq * 17 + Hk * 5 + D));
  auto rk = test::uniform<Act>(g, std::size_t(P * W * Hk * D));
  auto rv = test::uniform<Act>(g, std::size_t(P * W * Hv * D));
  auto rk_ref = rk, rv_ref = rv;
  std::vector<std::int32_t> slot;
  std::vector<std::int64_t> position;
  for (index_t b = 0; b < B; ++b) {
    slot.push_back(b == 1 ? -1 : std::int32_t(P - 1 - b)); // row 1 is padding
    // Unbounded attention needs position < W; bounded windows start past the ring length.
    position.push_back(window_left < 0 ? b : std::int64_t(W + 3 * b));
  }
  cpu<Arch> be{pool ? &test::test_pool() : nullptr};
  for (int step = 0; step < 4; ++step) {
    auto q = test::uniform<Act>(g, std::size_t(B * Hq * D), -2.0, 2.0);
    auto k = test::uniform<Act>(g, std::size_t(B * Hk * D), -2.0, 2.0);
    auto v = test::uniform<Act>(g, std::size_t(B * Hv * D));
    std::vector<Act> o(std::size_t(B * Hq * D)), o_ref(o.size());
    test::poison(o);
    test::poison(o_ref);
    swska_decode_args<Act> a;
    a.q = make_view<const Act>(q.data(), B, Hq, D);
    a.k = make_view<const Act>(k.data(), B, Hk, D);
    a.v = make_view<const Act>(v.data(), B, Hv, D);
    a.o = make_view(o.data(), B, Hq, D);
    a.ring_k = make_view(rk.data(), P, W, Hk, D);
    a.ring_v = make_view(rv.data(), P, W, Hv, D);
    a.slot = slot.data();
    a.position = position.data();
    a.window_left = window_left;
    test::test_workspace ws(swska_decode_workspace_bytes(be, a));
    REQUIRE(swska_decode(be, a, ws.get()).ok());
    a.o = make_view(o_ref.data(), B, Hq, D);
    a.ring_k = make_view(rk_ref.data(), P, W, Hk, D);
    a.ring_v = make_view(rv_ref.data(), P, W, Hv, D);
    test::test_workspace ws_ref(swska_decode_workspace_bytes(scalar{}, a));
    REQUIRE(swska_decode(scalar{}, a, ws_ref.get()).ok());
    test::check_close(o, o_ref, out_tolerance<Act>(), 0.0, "o");
    test::check_close(rk, rk_ref, 0.0, 0.0, "ring_k");
    test::check_close(rv, rv_ref, 0.0, 0.0, "ring_v");
    for (auto& p : position)
      ++p;
  }
}

template <class T> double prefill_tolerance() {
  if (std::is_same_v<T, bf16>) return 1.0 / 128;
  if (std::is_same_v<T, f16>) return 1.0 / 1024;
  return 1e-5;
}

struct prefill_case {
  index_t B, T, Hq, Hk, Hv, D;
  int window_left;
  std::vector<std::int64_t> cu_seqlens;  // empty: batched
  std::vector<std::int64_t> history_len; // empty: no history
  index_t W = 0;                         // history ring length
};

template <class Arch, class Act> void check_prefill(const prefill_case& c, bool pool) {
  CAPTURE(c.B);
  CAPTURE(c.T);
  CAPTURE(c.Hq);
  CAPTURE(c.Hk);
  CAPTURE(c.Hv);
  CAPTURE(c.D);
  CAPTURE(c.window_left);
  CAPTURE(c.cu_seqlens.size());
  CAPTURE(c.history_len.size());
  CAPTURE(pool);
  const index_t B = c.B, T = c.T, Hq = c.Hq, Hk = c.Hk, Hv = c.Hv, D = c.D;
  auto g = test::rng(std::uint64_t(B * 7919 + T * 131 + Hq * 17 + Hk * 5 + D + c.window_left));
  auto q = test::uniform<Act>(g, std::size_t(B * T * Hq * D), -2.0, 2.0);
  auto k = test::uniform<Act>(g, std::size_t(B * T * Hk * D), -2.0, 2.0);
  auto v = test::uniform<Act>(g, std::size_t(B * T * Hv * D));
  std::vector<Act> o(std::size_t(B * T * Hq * D)), o_ref(o.size());
  test::poison(o);
  test::poison(o_ref);
  swska_args<Act> a;
  a.q = make_view<const Act>(q.data(), B, T, Hq, D);
  a.k = make_view<const Act>(k.data(), B, T, Hk, D);
  a.v = make_view<const Act>(v.data(), B, T, Hv, D);
  a.o = make_view(o.data(), B, T, Hq, D);
  a.window_left = c.window_left;
  if (!c.cu_seqlens.empty()) {
    a.cu_seqlens = c.cu_seqlens.data();
    a.num_seqs = std::int64_t(c.cu_seqlens.size()) - 1;
  }
  const index_t N = index_t(c.history_len.size()), P = N + 1;
  auto hk = test::uniform<Act>(g, std::size_t(P * c.W * Hk * D), -2.0, 2.0);
  auto hv = test::uniform<Act>(g, std::size_t(P * c.W * Hv * D));
  std::vector<std::int32_t> hslot;
  for (index_t n = 0; n < N; ++n)
    hslot.push_back(std::int32_t(P - 1 - n)); // reversed: slots differ from sequence numbers
  if (N > 0) {
    a.history_k = make_view<const Act>(hk.data(), P, c.W, Hk, D);
    a.history_v = make_view<const Act>(hv.data(), P, c.W, Hv, D);
    a.history_slot = hslot.data();
    a.history_len = c.history_len.data();
  }
  cpu<Arch> be{pool ? &test::test_pool() : nullptr};
  test::test_workspace ws(swska_prefill_workspace_bytes(be, a));
  REQUIRE(swska_prefill(be, a, ws.get()).ok());
  a.o = make_view(o_ref.data(), B, T, Hq, D);
  test::test_workspace ws_ref(swska_prefill_workspace_bytes(scalar{}, a));
  REQUIRE(swska_prefill(scalar{}, a, ws_ref.get()).ok());
  test::check_close(o, o_ref, prefill_tolerance<Act>(), 0.0, "o");
}

} // namespace

TEST_CASE_TEMPLATE("cpu swska_prefill matches the scalar reference", Arch, RODIMUS_TEST_CPU_ARCHS) {
  if (!test::arch_runs_here<Arch>()) return;
  for (bool pool : {false, true}) {
    // Rodimus+ tiling (one key head), windows smaller and larger than T, unbounded; T = 150
    // crosses key blocks and query blocks.
    for (int wl : {7, 70, 400, -1})
      check_prefill<Arch, float>({2, 150, 4, 1, 4, 128, wl, {}, {}}, pool);
    // Several key heads, shared values.
    check_prefill<Arch, float>({2, 37, 4, 2, 1, 64, 9, {}, {}}, pool);
    check_prefill<Arch, float>({1, 33, 6, 3, 2, 32, -1, {}, {}}, pool);
    // Packed sequences (one empty), bounded and unbounded.
    check_prefill<Arch, float>({1, 90, 4, 1, 4, 64, 10, {0, 3, 3, 20, 90}, {}}, pool);
    check_prefill<Arch, float>({1, 90, 2, 1, 2, 64, -1, {0, 41, 41, 90}, {}}, pool);
    // History rings: bounded window (W = window_left + 1) and unbounded (W = capacity).
    check_prefill<Arch, float>({2, 30, 4, 1, 4, 64, 11, {}, {5, 40}, 12}, pool);
    check_prefill<Arch, float>({1, 50, 4, 1, 4, 32, 20, {0, 17, 50}, {0, 77}, 21}, pool);
    check_prefill<Arch, float>({2, 20, 2, 1, 2, 64, -1, {}, {9, 3}, 12}, pool);
    // 16-bit activations.
    check_prefill<Arch, bf16>({2, 70, 4, 1, 4, 128, 33, {}, {}}, pool);
    check_prefill<Arch, f16>({1, 40, 2, 1, 2, 16, -1, {}, {}}, pool);
    // Head dimensions off the SIMD path: the scalar reference runs.
    check_prefill<Arch, float>({1, 20, 3, 1, 3, 48, 8, {}, {}}, pool);
  }
}

TEST_CASE_TEMPLATE("cpu swska_decode matches the scalar reference", Arch, RODIMUS_TEST_CPU_ARCHS) {
  if (!test::arch_runs_here<Arch>()) return;
  for (bool pool : {false, true}) {
    // Rodimus+ shape (one shared key head, one value head per query head), a bounded window
    // that wraps the ring, more keys than one phase-1 block.
    check_decode<Arch, float>(3, 4, 150, 8, 1, 8, 128, 149, pool);
    // Shared values too, several key heads, short window.
    check_decode<Arch, float>(2, 3, 6, 4, 2, 1, 64, 5, pool);
    // Unbounded attention (W = capacity).
    check_decode<Arch, float>(3, 3, 40, 4, 1, 4, 32, -1, pool);
    // 16-bit activations and rings.
    check_decode<Arch, bf16>(3, 4, 70, 4, 1, 4, 64, 66, pool);
    check_decode<Arch, f16>(2, 2, 9, 2, 1, 2, 16, 8, pool);
    // Head dimensions off the SIMD path (not 2^i SIMD widths): the scalar reference runs.
    check_decode<Arch, float>(2, 2, 9, 3, 1, 3, 48, 8, pool);
    check_decode<Arch, float>(2, 2, 9, 2, 1, 2, 12, 8, pool);
  }
}

TEST_CASE("cpu swska_decode rejects repeated slots naming the argument") {
  std::vector<float> q(2 * 16), k(2 * 16), v(2 * 16), o(2 * 16), rk(2 * 4 * 16), rv(2 * 4 * 16);
  std::vector<std::int32_t> slot{1, 1};
  std::vector<std::int64_t> position{0, 0};
  swska_decode_args<float> a;
  a.q = make_view<const float>(q.data(), 2, 1, 16);
  a.k = make_view<const float>(k.data(), 2, 1, 16);
  a.v = make_view<const float>(v.data(), 2, 1, 16);
  a.o = make_view(o.data(), 2, 1, 16);
  a.ring_k = make_view(rk.data(), 2, 4, 1, 16);
  a.ring_v = make_view(rv.data(), 2, 4, 1, 16);
  a.slot = slot.data();
  a.position = position.data();
  a.window_left = 3;
  test::test_workspace ws(swska_decode_workspace_bytes(cpu<>{}, a));
  const status s = swska_decode(cpu<>{}, a, ws.get());
  CHECK(s.code == status_code::bad_argument);
  CHECK(std::string(s.what) == "slot");
}
