// The decode layout of quantised weight rows (rodimus/primitives/quant_layout.hpp): the bytes of a
// row packed into groups16 sit where the header says (scale i at 2 i, word w of block i at 32 +
// (16 w + i) * 4 from the group's start; blocks past the whole groups unchanged), quant_block_at
// reads every block back, and unpacking gives the original row exactly; quant_layout::blocks
// leaves a row alone. Rows of 1 .. 86 blocks (86: the FFN down projection of rodimus-plus-1.6b,
// 5 groups and 6 blocks), random bytes in every block (the layout moves bytes, whatever they
// mean). repack_quant_rows converts whole matrices both ways, in place and not. A loaded matrix
// (weight_matrix in the decode layout) is read through quant_rows(), which carries the layout
// into its blocks and into quant_linear's arguments.
#include <cstring>
#include <random>
#include <vector>

#include "rodimus/backend/scalar/quant_linear.hpp"
#include "rodimus/model/weight_views.hpp"
#include "rodimus/primitives/quant_layout.hpp"
#include "rodimus/primitives/quant_linear.hpp"
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

namespace {

/// rows x nb random blocks, repacked both ways by repack_quant_rows: out of place and in place,
/// groups16 and back give the blocks again; a layout to itself copies.
template <class Block> void check_repack(index_t rows, index_t nb) {
  CAPTURE(rows);
  CAPTURE(nb);
  auto g = test::rng(std::uint64_t(rows * 131 + nb + sizeof(Block)));
  const std::vector<Block> blocks = random_blocks<Block>(g, rows * nb);
  const std::size_t bytes = blocks.size() * sizeof(Block);
  std::vector<Block> packed(blocks.size()), back(blocks.size());
  repack_quant_rows(blocks.data(), packed.data(), rows, nb, quant_layout::blocks,
                    quant_layout::groups16);
  for (index_t r = 0; r < rows; ++r) { // row by row as pack_quant_row makes it
    std::vector<Block> row(blocks.begin() + r * nb, blocks.begin() + (r + 1) * nb);
    pack_quant_row(row.data(), nb, quant_layout::groups16);
    CHECK(std::memcmp(row.data(), packed.data() + r * nb, row.size() * sizeof(Block)) == 0);
  }
  repack_quant_rows(packed.data(), back.data(), rows, nb, quant_layout::groups16,
                    quant_layout::blocks);
  CHECK(std::memcmp(back.data(), blocks.data(), bytes) == 0);
  std::vector<Block> in_place = blocks;
  repack_quant_rows(in_place.data(), in_place.data(), rows, nb, quant_layout::blocks,
                    quant_layout::groups16);
  CHECK(std::memcmp(in_place.data(), packed.data(), bytes) == 0);
  repack_quant_rows(in_place.data(), in_place.data(), rows, nb, quant_layout::groups16,
                    quant_layout::blocks);
  CHECK(std::memcmp(in_place.data(), blocks.data(), bytes) == 0);
  repack_quant_rows(packed.data(), back.data(), rows, nb, quant_layout::groups16,
                    quant_layout::groups16);
  CHECK(std::memcmp(back.data(), packed.data(), bytes) == 0);
  // The byte-level form (what the loader and save_checkpoint call) picks the block type.
  std::vector<Block> by_format(blocks.size());
  repack_quant_rows(blocks.data(), by_format.data(), format_of<Block>(), rows, nb,
                    quant_layout::blocks, quant_layout::groups16);
  CHECK(std::memcmp(by_format.data(), packed.data(), bytes) == 0);
}

/// A weight_matrix the way the loader leaves it (rows of 33 blocks: two groups and one block, in
/// the decode layout): its quant_rows() give back the saved blocks, and quant_linear_args_for
/// passes the layout on, so the product equals the product with the saved blocks.
template <class Block> void check_loaded_matrix() {
  const index_t N = 5, K = 33 * 32 - 7, nb = quant_blocks(K), M = 2;
  auto g = test::rng(std::uint64_t(K + sizeof(Block)));
  std::vector<Block> saved(std::size_t(N * nb));
  const auto wf = test::uniform<float>(g, std::size_t(N * K));
  for (index_t n = 0; n < N; ++n)
    REQUIRE(quantise_row(wf.data() + n * K, K, saved.data() + n * nb).ok());
  std::vector<Block> loaded(saved.size());
  repack_quant_rows(saved.data(), loaded.data(), N, nb, quant_layout::blocks,
                    quant_layout::groups16);
  weight_matrix m;
  m.data = loaded.data();
  m.rows = N;
  m.cols = K;
  m.format = format_of<Block>();
  m.layout = quant_layout::groups16;
  const quant_rows_view<Block> rows = m.quant_rows<Block>();
  CHECK(rows.layout == quant_layout::groups16);
  std::vector<Block> row(static_cast<std::size_t>(nb));
  for (index_t n = 0; n < N; ++n) {
    for (index_t b = 0; b < nb; ++b) {
      const Block blk = rows.block(n, b);
      CHECK(std::memcmp(&blk, &saved[std::size_t(n * nb + b)], sizeof(Block)) == 0);
    }
    rows.unpack_row(n, row.data());
    CHECK(std::memcmp(row.data(), &saved[std::size_t(n * nb)], row.size() * sizeof(Block)) == 0);
  }
  const auto x = test::uniform<float>(g, std::size_t(M * K));
  std::vector<float> y(std::size_t(M * N)), y_saved(y.size());
  const auto xv = make_view<const float>(x.data(), M, K);
  REQUIRE(quant_linear(scalar{}, quant_linear_args_for(xv, rows, make_view(y.data(), M, N))).ok());
  REQUIRE(
      quant_linear(scalar{},
                   quant_linear_args<float, Block>{xv, make_view<const Block>(saved.data(), N, nb),
                                                   make_view(y_saved.data(), M, N)})
          .ok());
  CHECK(std::memcmp(y.data(), y_saved.data(), y.size() * sizeof(float)) == 0);
}

} // namespace

TEST_CASE("repack_quant_rows converts whole matrices between the layouts, in place too") {
  for (const index_t nb : {1, 16, 17, 86})
    for (const index_t rows : {1, 3}) {
      check_repack<q8_0_block>(rows, nb);
      check_repack<q4_0_block>(rows, nb);
    }
}

TEST_CASE("a matrix in the decode layout is read through quant_rows, which carries its layout") {
  check_loaded_matrix<q8_0_block>();
  check_loaded_matrix<q4_0_block>();
}
