// Memory for streamed data (backend/cpu/huge_page_buffer.hpp) and the read-bandwidth probe
// (backend/cpu/read_probe.hpp):
//   - huge_page_buffer: zeroed, 2 MiB aligned, holds what is written, moves leave the source
//     empty, an impossible size throws an error naming the buffer;
//   - huge_page_allocator: std::vector below and above the 2 MiB threshold (heap / huge pages),
//     growth across it keeps the values, large blocks are 2 MiB aligned;
//   - read_probe: a pass takes positive time and reports a finite rate, with and without a pool.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "support/temp_dir.hpp"
#include "test_cpu_support.hpp"

#include "rodimus/backend/cpu/huge_page_buffer.hpp"
#include "rodimus/backend/cpu/read_probe.hpp"

using namespace rodimus;

namespace {

bool huge_aligned(const void* p) {
  return reinterpret_cast<std::uintptr_t>(p) % huge_page_buffer::huge_page_bytes == 0;
}

} // namespace

TEST_CASE("huge_page_buffer: zeroed, 2 MiB aligned, keeps what is written, moves") {
  auto g = test::rng(1);
  for (std::size_t bytes : {std::size_t(1), std::size_t(4096) + 3, std::size_t(5) << 20}) {
    INFO(bytes);
    huge_page_buffer b(bytes, "test buffer");
    REQUIRE(b.data() != nullptr);
    CHECK(b.size() == bytes);
    CHECK(huge_aligned(b.data()));
    std::size_t nonzero = 0;
    for (std::size_t i = 0; i < bytes; ++i)
      nonzero += b.data()[i] != 0;
    CHECK(nonzero == 0);
    std::vector<unsigned char> pattern(bytes);
    for (auto& x : pattern)
      x = static_cast<unsigned char>(g());
    std::memcpy(b.data(), pattern.data(), bytes);
    huge_page_buffer moved(std::move(b));
    CHECK(b.data() == nullptr); // the moved-from state is defined: empty
    CHECK(b.size() == 0);
    REQUIRE(moved.size() == bytes);
    CHECK(std::memcmp(moved.data(), pattern.data(), bytes) == 0);
    huge_page_buffer assigned;
    assigned = std::move(moved);
    CHECK(std::memcmp(assigned.data(), pattern.data(), bytes) == 0);
  }
  const huge_page_buffer empty(0, "empty");
  CHECK(empty.data() == nullptr);
  CHECK(empty.size() == 0);
}

TEST_CASE("huge_page_buffer: a size no machine can hold is an error naming the buffer") {
  test::expect_error([] { huge_page_buffer b(SIZE_MAX - 1, "the weights of x"); },
                     {"the weights of x", "cannot allocate"});
  CHECK(physical_memory_bytes() > 0);
}

TEST_CASE("huge_page_allocator: vectors below and above 2 MiB, growth across the threshold") {
  using vec = std::vector<float, huge_page_allocator<float>>;
  auto g = test::rng(2);
  const auto want = test::uniform<float>(g, (std::size_t(3) << 20) / sizeof(float));
  vec v;
  for (float x : want) // grows from heap blocks into huge-page blocks, copying each time
    v.push_back(x);
  REQUIRE(v.size() == want.size());
  CHECK(std::memcmp(v.data(), want.data(), want.size() * sizeof(float)) == 0);
  CHECK(huge_aligned(v.data()));
  vec small(1000, 2.5f);
  CHECK(small[999] == 2.5f);
  vec big(std::size_t(1) << 20, 0.0f); // 4 MiB, zero-filled
  CHECK(huge_aligned(big.data()));
  CHECK(big.back() == 0.0f);
  big.assign(big.size(), 1.0f);
  CHECK(big[12345] == 1.0f);
  CHECK(huge_page_allocator<float>() == huge_page_allocator<double>());
}

TEST_CASE("read_probe: passes take time and report finite rates, with and without a pool") {
  read_probe<> probe(std::size_t(16) << 20);
  CHECK(probe.bytes() > (std::size_t(16) << 20) - 256);
  CHECK(probe.bytes() <= (std::size_t(16) << 20));
  thread_pool pool(2);
  for (thread_pool* p : {static_cast<thread_pool*>(nullptr), &pool}) {
    const double s = probe.pass_seconds(p);
    CHECK(s > 0.0);
    const double bw = probe.best(p, 3);
    CHECK(std::isfinite(bw));
    CHECK(bw > 1e6); // any machine streams more than 1 MB/s
  }
}
