// The in-memory decode layout of block-quantised weight rows (q8_0 / q4_0, formats in
// rodimus/primitives/quant_format.hpp): the same bytes as the blocks, rearranged within each row
// so that a decode kernel reads 16 blocks (512 weights) with a handful of wide instructions. It is
// made at load (model/weights.hpp), never saved: a saved checkpoint holds the blocks
// (model/save_checkpoint.hpp unpacks rows again), and the two layouts convert into each other
// exactly (pack_quant_row, unpack_quant_row).
//
//   quant_layout::blocks    the row as quant_blocks(K) blocks in order (the saved layout).
//   quant_layout::groups16  the row's first quant_groups16(nb) * 16 blocks in groups of 16, each
//                           group 16 * sizeof(Block) bytes:
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
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

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

} // namespace rodimus
