// The decode layout of quantised weight rows (rodimus/primitives/quant_layout.hpp): the bytes of a
// row packed into groups16 sit where the header says (scale i at 2 i, word w of block i at 32 +
// (16 w + i) * 4 from the group's start; blocks past the whole groups unchanged), quant_block_at
// reads every block back, and unpacking gives the original row exactly; quant_layout::blocks
// leaves a row alone. Rows of 1 .. 86 blocks (86: the FFN down projection of rodimus-plus-1.6b,
// 5 groups and 6 blocks), random bytes in every block (the layout moves bytes, whatever they
// mean).
#include <cstring>
#include <random>
#include <vector>

#include "rodimus/primitives/quant_layout.hpp"
#include "support/test_support.hpp"

using namespace rodimus;

namespace {

template <class Block> std::vector<Block> random_blocks(std::mt19937_64& g, index_t nb) {
  std::vector<Block> row(static_cast<std::size_t>(nb));
  std::uniform_int_distribution<int> byte(0, 255);
  auto* p = reinterpret_cast<unsigned char*>(row.data());
  for (std::size_t i = 0; i < row.size() * sizeof(Block); ++i)
    p[i] = static_cast<unsigned char>(byte(g));
  return row;
}

template <class Block> void check_layout(index_t nb) {
  CAPTURE(nb);
  CAPTURE(sizeof(Block));
  auto g = test::rng(std::uint64_t(nb * 7 + sizeof(Block)));
  const std::vector<Block> blocks = random_blocks<Block>(g, nb);
  std::vector<Block> row = blocks;
  pack_quant_row(row.data(), nb, quant_layout::blocks);
  CHECK(std::memcmp(row.data(), blocks.data(), row.size() * sizeof(Block)) == 0);

  pack_quant_row(row.data(), nb, quant_layout::groups16);
  const index_t groups = quant_groups(nb, quant_layout::groups16);
  CHECK(groups == nb / 16);
  constexpr int words = int(sizeof(Block) - 2) / 4;
  const auto* packed = reinterpret_cast<const unsigned char*>(row.data());
  for (index_t b = 0; b < nb; ++b) {
    INFO("block " << b);
    const auto* want = reinterpret_cast<const unsigned char*>(&blocks[std::size_t(b)]);
    if (b < groups * 16) { // the documented positions
      const unsigned char* group = packed + std::size_t(b / 16) * 16 * sizeof(Block);
      const int i = int(b % 16);
      CHECK(std::memcmp(group + 2 * i, want, 2) == 0);
      for (int w = 0; w < words; ++w)
        CHECK(std::memcmp(group + 32 + (16 * w + i) * 4, want + 2 + 4 * w, 4) == 0);
    } else {
      CHECK(std::memcmp(packed + std::size_t(b) * sizeof(Block), want, sizeof(Block)) == 0);
    }
    const Block back = quant_block_at(row.data(), nb, b, quant_layout::groups16);
    CHECK(std::memcmp(&back, want, sizeof(Block)) == 0);
  }
  std::vector<Block> unpacked(blocks.size());
  unpack_quant_row(row.data(), nb, quant_layout::groups16, unpacked.data());
  CHECK(std::memcmp(unpacked.data(), blocks.data(), blocks.size() * sizeof(Block)) == 0);
}

} // namespace

TEST_CASE("the decode layout: documented byte positions, blocks read back, exact round trip") {
  for (const index_t nb : {1, 15, 16, 17, 32, 47, 64, 86}) {
    check_layout<q8_0_block>(nb);
    check_layout<q4_0_block>(nb);
  }
}
