// The in-memory decode layout of block-quantised weight rows (q8_0 / q4_0, formats in
// rodimus/primitives/quant_format.hpp): the same bytes as the blocks, rearranged within each row
// so that a decode kernel reads 16 blocks (512 weights) with a handful of wide instructions. It is
// made at load (model/weights.hpp), never saved: a saved checkpoint holds the blocks
// (model/save_checkpoint.hpp unpacks rows again), and the two layouts convert into each other
// exactly (pack_quant_row, unpack_quant_row).
//
//   quant_layout::blocks    the row as quant_blocks(K) blocks in order (the saved layout).
//   quant_layout::groups16  the row's first quant_groups(nb, groups16) * 16 blocks in groups of
//                           16, each group 16 * sizeof(Block) bytes:
//                             [16 f16 scales, block 0 first: 32 bytes]
//                             [the blocks' 32-bit words interleaved: word w (w = 0..3 for q4_0,
//                              0..7 for q8_0) of block i (0..15) at (16 w + i) * 4]
//                           then the row's remaining nb % 16 blocks as blocks, in order.
//
// A block's words are its bytes after the scale (q4_0 nibbles[4w .. 4w + 3]: elements 4w .. 4w + 3
// in the low nibbles, 16 + 4w .. in the high ones; q8_0 q[4w .. 4w + 3]). So one 64-byte load of
// a group's integers holds word w of all 16 blocks, four bytes a block in block order: one 32-bit
// lane per block. A dot product that sums 4 bytes per 32-bit lane (vpdpbusd) then accumulates whole
// blocks, one block per lane, over the group's 4 (q4_0: each load gives its low nibbles and its
// high nibbles) or 8 (q8_0) loads, against x laid out the same way; the 16 block sums are scaled
// by the 16 scales in one multiply (backend/cpu/quant_linear.hpp). Rows keep their size
// (quant_blocks(K) * sizeof(Block) bytes), so views, strides and stacked matrices are unchanged;
// rows of fewer than 16 blocks are the same in both layouts.
//
// The layout of a row depends on the row's whole block count nb (which blocks form groups): a view
// of a decode-layout matrix must cover whole rows. A view of some of each row's columns reads
// blocks from the middle of a group as blocks in order (quant_linear_check refuses what it can
// detect: rows that overlap). quant_rows_view keeps a matrix's blocks and their layout together.
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "rodimus/core/tensor_view.hpp"
#include "rodimus/primitives/quant_format.hpp"

namespace rodimus {

/// How the blocks of each quantised weight row are arranged in memory (see the top of this file).
enum class quant_layout : std::uint8_t {
  blocks,   ///< quant_blocks(K) blocks in order: the saved layout
  groups16, ///< groups of 16 blocks, scales apart and words interleaved, then the rest as blocks
};

/// Blocks per group of quant_layout::groups16.
constexpr index_t kQuantLayoutGroup = 16;

/// The whole groups of a row of nb blocks in `layout` (the blocks past them are stored as blocks).
constexpr index_t quant_groups(index_t nb, quant_layout layout) noexcept {
  return layout == quant_layout::groups16 ? nb / kQuantLayoutGroup : 0;
}

namespace detail {

/// 32-bit words of a block after its scale (q4_0: 4, q8_0: 8).
template <class Block> constexpr int quant_block_words = int((sizeof(Block) - sizeof(f16)) / 4);

/// The bytes of a block after its scale.
template <class Block> inline unsigned char* quant_block_payload(Block& b) noexcept {
  if constexpr (std::is_same_v<Block, q8_0_block>)
    return reinterpret_cast<unsigned char*>(b.q);
  else
    return b.nibbles;
}

/// Where word w of block i of a group lies (bytes from the group's start).
template <class Block> constexpr std::size_t quant_group_word_at(int i, int w) noexcept {
  return sizeof(f16) * kQuantLayoutGroup + std::size_t(w * kQuantLayoutGroup + i) * 4;
}

} // namespace detail

/// Block b of a row of nb blocks stored in `layout`.
template <class Block>
inline Block quant_block_at(const Block* row, index_t nb, index_t b, quant_layout layout) noexcept {
  if (b >= quant_groups(nb, layout) * kQuantLayoutGroup) return row[b];
  const auto* group =
      reinterpret_cast<const unsigned char*>(row + b / kQuantLayoutGroup * kQuantLayoutGroup);
  const int i = int(b % kQuantLayoutGroup);
  Block out;
  std::memcpy(&out.scale, group + i * sizeof(f16), sizeof(f16));
  unsigned char* ints = detail::quant_block_payload(out);
  for (int w = 0; w < detail::quant_block_words<Block>; ++w)
    std::memcpy(ints + 4 * w, group + detail::quant_group_word_at<Block>(i, w), 4);
  return out;
}

/// The nb blocks of one row rearranged, in place, from quant_layout::blocks into `layout`.
template <class Block> inline void pack_quant_row(Block* row, index_t nb, quant_layout layout) {
  for (index_t g = 0; g < quant_groups(nb, layout); ++g) {
    Block blocks[kQuantLayoutGroup];
    Block* at = row + g * kQuantLayoutGroup;
    std::memcpy(blocks, at, sizeof(blocks));
    auto* group = reinterpret_cast<unsigned char*>(at);
    for (int i = 0; i < kQuantLayoutGroup; ++i) {
      std::memcpy(group + i * sizeof(f16), &blocks[i].scale, sizeof(f16));
      const unsigned char* ints = detail::quant_block_payload(blocks[i]);
      for (int w = 0; w < detail::quant_block_words<Block>; ++w)
        std::memcpy(group + detail::quant_group_word_at<Block>(i, w), ints + 4 * w, 4);
    }
  }
}

/// The nb blocks of one row stored in `layout`, written to out in quant_layout::blocks.
template <class Block>
inline void unpack_quant_row(const Block* row, index_t nb, quant_layout layout,
                             Block* out) noexcept {
  for (index_t b = 0; b < nb; ++b)
    out[b] = quant_block_at(row, nb, b, layout);
}

/// `rows` rows of nb blocks each (back to back, nb * sizeof(Block) bytes a row) rearranged from
/// layout `from` at src into layout `to` at dst; src == dst rearranges in place.
template <class Block>
inline void repack_quant_rows(const Block* src, Block* dst, index_t rows, index_t nb,
                              quant_layout from, quant_layout to) {
  const std::size_t row_bytes = std::size_t(nb) * sizeof(Block);
  std::vector<Block> blocks; // one row as blocks, when it is unpacked in place
  if (from != quant_layout::blocks && to != from && src == dst) blocks.resize(std::size_t(nb));
  for (index_t r = 0; r < rows; ++r) {
    const Block* in = src + r * nb;
    Block* out = dst + r * nb;
    if (from == to || from == quant_layout::blocks) {
      if (in != out) std::memcpy(out, in, row_bytes);
      if (from != to) pack_quant_row(out, nb, to);
      continue;
    }
    // Into blocks (`to`: there are two layouts), through a copy of the row when in place.
    Block* unpacked = in == out ? blocks.data() : out;
    unpack_quant_row(in, nb, from, unpacked);
    if (unpacked != out) std::memcpy(out, unpacked, row_bytes);
  }
}

/// repack_quant_rows for rows of `format` (q8_0 or q4_0) given as bytes.
inline void repack_quant_rows(const void* src, void* dst, weight_format format, index_t rows,
                              index_t nb, quant_layout from, quant_layout to) {
  if (format == weight_format::q8_0)
    repack_quant_rows(static_cast<const q8_0_block*>(src), static_cast<q8_0_block*>(dst), rows, nb,
                      from, to);
  else
    repack_quant_rows(static_cast<const q4_0_block*>(src), static_cast<q4_0_block*>(dst), rows, nb,
                      from, to);
}

/// A quantised matrix's rows as blocks together with the layout they are arranged in: reading
/// `blocks` as blocks in order is right only in quant_layout::blocks, so the two never travel
/// apart (model/weight_views.hpp hands out loaded matrices this way).
template <class Block> struct quant_rows_view {
  tensor_view<const Block, 2> blocks; // (rows, blocks per row), rows in `layout`, whole rows
  quant_layout layout = quant_layout::blocks;

  /// Block b of row r (as saved: its scale and integers together).
  Block block(index_t r, index_t b) const noexcept {
    if (layout == quant_layout::blocks) return blocks(r, b);
    return quant_block_at(&blocks(r, 0), blocks.shape[1], b, layout);
  }
  /// Row r written to out as blocks in order (blocks.shape[1] of them).
  void unpack_row(index_t r, Block* out) const noexcept {
    for (index_t b = 0; b < blocks.shape[1]; ++b)
      out[b] = block(r, b);
  }
};

} // namespace rodimus
