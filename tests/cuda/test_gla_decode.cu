// gla_decode on CUDA against the scalar reference (f64 math) on fresh random inputs: f32 and bf16
// activations, f32 gates and state; a slot-indexed pool with padding rows, out-of-range slots,
// unused slots and padded state rows (all checked bit for bit after copying back); outputs poisoned
// with NaN before each step; two steps in a row so the second reads a state the kernel wrote.
// The shapes reach every tile configuration (narrow/wide 16-byte tiles, the scalar-access tile) and
// every MaxK bucket. Without a GPU the device cases print "skipped: no CUDA device" and pass.
#include "support/primitive_support.hpp"
#include "support/test_support.hpp"

#include <cuda_runtime.h>

#include <algorithm>
#include <cstring>
#include <numeric>
#include <vector>

#include "rodimus/backend/cuda/gla_decode.cuh"
#include "rodimus/backend/scalar/gla.hpp"

using namespace rodimus;

namespace {

bool have_device() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

template <class T> struct device_buffer {
  T* ptr = nullptr;
  std::size_t n = 0;
  explicit device_buffer(std::size_t count) : n(count) {
    REQUIRE(cudaMalloc(reinterpret_cast<void**>(&ptr), std::max<std::size_t>(n, 1) * sizeof(T)) ==
            cudaSuccess);
  }
  explicit device_buffer(const std::vector<T>& h) : device_buffer(h.size()) { upload(h); }
  device_buffer(const device_buffer&) = delete;
  device_buffer& operator=(const device_buffer&) = delete;
  ~device_buffer() { (void)cudaFree(ptr); }
  void upload(const std::vector<T>& h) {
    REQUIRE(h.size() == n);
    REQUIRE(cudaMemcpy(ptr, h.data(), n * sizeof(T), cudaMemcpyHostToDevice) == cudaSuccess);
  }
  std::vector<T> download() const {
    std::vector<T> h(n);
    REQUIRE(cudaMemcpy(h.data(), ptr, n * sizeof(T), cudaMemcpyDeviceToHost) == cudaSuccess);
    return h;
  }
};

struct decode_case {
  index_t B, H, K, V, P;
  bool slots;       // slot array (else slot[b] = b)
  int padding;      // rows with slot -1
  int out_of_range; // rows with a slot >= P (padding on CUDA; -1 for the reference)
  index_t row_pad;  // extra floats at the end of each state row (stride[2] = V + row_pad)
};

template <class Act> void run_case(const decode_case& c, std::uint64_t salt) {
  using Gate = float;
  const index_t B = c.B, H = c.H, K = c.K, V = c.V, P = c.P, ld = V + c.row_pad;
  INFO("B=" << B << " H=" << H << " K=" << K << " V=" << V << " P=" << P << " row_pad=" << c.row_pad
            << " act=" << to_string(dtype_of<Act>::value));
  auto rng = test::rng(salt);

  // Slots: distinct pool entries in random order, then padding and out-of-range rows.
  std::vector<std::int32_t> slot_dev(static_cast<std::size_t>(B)),
      slot_ref(static_cast<std::size_t>(B));
  if (c.slots) {
    std::vector<std::int32_t> perm(static_cast<std::size_t>(P));
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), rng);
    REQUIRE(P >= B);
    for (index_t b = 0; b < B; ++b)
      slot_dev[b] = slot_ref[b] = perm[b];
    std::vector<index_t> rows(static_cast<std::size_t>(B));
    std::iota(rows.begin(), rows.end(), 0);
    std::shuffle(rows.begin(), rows.end(), rng);
    REQUIRE(c.padding + c.out_of_range <= B);
    for (int i = 0; i < c.padding; ++i)
      slot_dev[rows[i]] = slot_ref[rows[i]] = -1;
    for (int i = 0; i < c.out_of_range; ++i) {
      slot_dev[rows[c.padding + i]] = std::int32_t(P + i * 7);
      slot_ref[rows[c.padding + i]] = -1;
    }
  } else {
    std::iota(slot_ref.begin(), slot_ref.end(), 0);
  }

  const std::size_t pool_n = std::size_t(P * H * K * ld);
  const std::vector<float> pool0 = test::uniform<float>(rng, pool_n);
  std::vector<float> pool_ref = pool0;
  device_buffer<float> pool_d(pool0);
  device_buffer<std::int32_t> slot_d(slot_dev);
  std::vector<double> ws_mem;

  const index_t pool_shape[4] = {P, H, K, V};
  const index_t pool_stride[4] = {H * K * ld, K * ld, ld, 1};
  const cuda<90> gpu{};
  for (int step = 0; step < 2; ++step) {
    INFO("step " << step);
    const auto q = test::uniform<Act>(rng, std::size_t(B * H * K));
    const auto k = test::uniform<Gate>(rng, std::size_t(B * H * K));
    const auto v = test::uniform<Act>(rng, std::size_t(B * H * V));
    const auto g = test::uniform<Gate>(rng, std::size_t(B * H * K), -3.0, 0.0);
    std::vector<Act> o_ref(std::size_t(B * H * V));
    test::poison(o_ref);
    device_buffer<Act> q_d(q), v_d(v), o_d(o_ref);
    device_buffer<Gate> k_d(k), g_d(g);

    const float scale = 1.0f / std::sqrt(float(K));
    gla_decode_args<Act, Gate, float> ref;
    ref.q = make_view<const Act>(q.data(), B, H, K);
    ref.k = make_view<const Gate>(k.data(), B, H, K);
    ref.v = make_view<const Act>(v.data(), B, H, V);
    ref.g = make_view<const Gate>(g.data(), B, H, K);
    ref.o = make_view(o_ref.data(), B, H, V);
    ref.state = tensor_view<float, 4>::strided(pool_ref.data(), pool_shape, pool_stride);
    ref.slot = c.slots ? slot_ref.data() : nullptr;
    ref.scale = scale;
    ws_mem.assign(gla_decode_workspace_bytes(scalar{}, ref) / sizeof(double) + 1, 0.0);
    REQUIRE(
        gla_decode(scalar{}, ref, workspace{ws_mem.data(), ws_mem.size() * sizeof(double)}).ok());

    gla_decode_args<Act, Gate, float> dev = ref;
    dev.q = make_view<const Act>(q_d.ptr, B, H, K);
    dev.k = make_view<const Gate>(k_d.ptr, B, H, K);
    dev.v = make_view<const Act>(v_d.ptr, B, H, V);
    dev.g = make_view<const Gate>(g_d.ptr, B, H, K);
    dev.o = make_view(o_d.ptr, B, H, V);
    dev.state = tensor_view<float, 4>::strided(pool_d.ptr, pool_shape, pool_stride);
    dev.slot = c.slots ? slot_d.ptr : nullptr;
    const status s = gla_decode(gpu, dev, workspace{});
    INFO("status: " << to_string(s));
    REQUIRE(s.ok());
    REQUIRE(cudaDeviceSynchronize() == cudaSuccess);

    auto o = o_d.download();
    const double o_tol = std::is_same_v<Act, float> ? 2e-5 : 8e-3; // bf16: one rounding of o
    // Padding and out-of-range rows: o not written (primitives/slots.hpp), still poisoned.
    std::vector<bool> skip(static_cast<std::size_t>(B), false);
    for (index_t b = 0; b < B; ++b)
      skip[std::size_t(b)] = slot_ref[b] < 0;
    test::check_skipped_rows(o, o_ref, std::size_t(H * V), skip);
    test::check_close(o, o_ref, o_tol, 1e-3, "o");
  }

  // The pool: updated slots close to the reference; every other float (unused slots, padding
  // rows' slots, the row padding) bit for bit as it was.
  const auto pool = pool_d.download();
  const std::size_t slab = std::size_t(H * K * ld);
  std::vector<bool> used(static_cast<std::size_t>(P), false);
  for (index_t b = 0; b < B; ++b)
    if (slot_ref[b] >= 0) used[std::size_t(slot_ref[b])] = true;
  std::vector<float> got, want;
  int untouched_bad = 0;
  for (index_t p = 0; p < P; ++p)
    for (std::size_t e = 0; e < slab; ++e) {
      const std::size_t i = std::size_t(p) * slab + e;
      if (used[std::size_t(p)] && index_t(e % std::size_t(ld)) < V) {
        got.push_back(pool[i]);
        want.push_back(pool_ref[i]);
      } else if (std::memcmp(&pool[i], &pool0[i], sizeof(float)) != 0) {
        ++untouched_bad;
      }
    }
  CHECK(untouched_bad == 0);
  REQUIRE(!got.empty());
  test::check_close(got, want, 1e-5, 1.0, "state");
}

} // namespace

TEST_CASE_TEMPLATE("gla_decode cuda matches the scalar reference", Act, float, bf16) {
  if (!have_device()) {
    MESSAGE("skipped: no CUDA device");
    return;
  }
  const decode_case cases[] = {
      // B=1 Rodimus shape: narrow 16-byte tiles, MaxK 64
      {1, 1, 64, 4096, 4, true, 0, 0, 0},
      // wide 16-byte tiles (12 x 32 CTAs >= 264), padding and out-of-range slots
      {12, 1, 64, 4096, 16, true, 2, 1, 0},
      // K below its bucket, V not a multiple of the tile, padded rows, two heads
      {3, 2, 48, 200, 5, true, 1, 0, 8},
      // odd V and odd row stride: the scalar-access tile, MaxK 128
      {5, 3, 100, 77, 9, true, 1, 1, 3},
      // no slot array: slot[b] = b, slots >= B untouched; MaxK 256
      {4, 1, 256, 512, 6, false, 0, 0, 0},
      // small K (MaxK 32) and many rows: wide tiles, partial last tile
      {300, 1, 16, 160, 300, false, 0, 0, 0},
  };
  std::uint64_t salt = std::is_same_v<Act, float> ? 100 : 200;
  for (const auto& c : cases)
    run_case<Act>(c, ++salt);
}

TEST_CASE("gla_decode cuda validates before launching") {
  // No kernel is launched on any of these (host pointers are never dereferenced): runs without a
  // GPU.
  float dummy[8] = {};
  const index_t B = 2, H = 1, K = 4, V = 8;
  gla_decode_args<float, float, float> a;
  a.q = make_view<const float>(dummy, B, H, K);
  a.k = make_view<const float>(dummy, B, H, K);
  a.v = make_view<const float>(dummy, B, H, V);
  a.g = make_view<const float>(dummy, B, H, K);
  a.o = make_view(dummy, B, H, V);
  a.state = make_view(dummy, B, H, K, V);
  const cuda<90> gpu{};

  auto bad = a;
  bad.o = make_view(dummy, B, H, V + 1);
  status s = gla_decode(gpu, bad);
  CHECK(s.code == status_code::bad_shape);
  CHECK(std::string(s.what) == "o");

  bad = a;
  bad.state = make_view(dummy, B - 1, H, K, V); // P < B without a slot array
  s = gla_decode(gpu, bad);
  CHECK(s.code == status_code::bad_shape);
  CHECK(std::string(s.what) == "state");

  bad = a;
  bad.k = make_view<const float>(nullptr, B, H, K);
  s = gla_decode(gpu, bad);
  CHECK(s.code == status_code::null_pointer);
  CHECK(std::string(s.what) == "k");

  bad = a; // K beyond the largest MaxK bucket
  const index_t big = 300;
  bad.q = make_view<const float>(dummy, B, H, big);
  bad.k = make_view<const float>(dummy, B, H, big);
  bad.g = make_view<const float>(dummy, B, H, big);
  bad.state = make_view(dummy, B, H, big, V);
  s = gla_decode(gpu, bad);
  CHECK(s.code == status_code::unsupported);
  CHECK(std::string(s.what) == "q");

  gla_decode_args<float, float, double> d; // f64 state: reference only
  s = gla_decode(gpu, d);
  CHECK(s.code == status_code::unsupported);
  CHECK(std::string(s.what) == "state");

  auto empty = a; // B = 0: nothing to do
  empty.q = make_view<const float>(dummy, 0, H, K);
  empty.k = make_view<const float>(dummy, 0, H, K);
  empty.v = make_view<const float>(dummy, 0, H, V);
  empty.g = make_view<const float>(dummy, 0, H, K);
  empty.o = make_view(dummy, 0, H, V);
  CHECK(gla_decode(gpu, empty).ok());
  CHECK(gla_decode_workspace_bytes(gpu, a) == 0);
}
