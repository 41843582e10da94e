// swska_decode on cpu<Arch> against the scalar reference: several decode steps over ring pools on
// fresh random inputs (the rings start random too), with padding rows, distinct slots, bounded
// windows that wrap around the ring, unbounded attention, shared and per-head keys/values, and
// head dimensions on and off the SIMD path.
//
// Tolerances, relative to max|o|: f32 2e-5 (scores of D products accumulated in f32 and an f32
// exp against the double reference; the weights are <= 1 and sum to 1, so the error stays at a
// few f32 ulps of the largest value). bf16 / f16 outputs: one rounding step of the output,
// 2^-7 / 2^-10. The rings are copies of the inputs: exact.
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

} // namespace

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
