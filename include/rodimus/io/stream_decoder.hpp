// Decoding for streaming generation: token ids in one at a time, complete UTF-8 characters out.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "rodimus/io/tokenizer.hpp"
#include "rodimus/io/utf8.hpp"

namespace rodimus::io {

/// Token ids in, text out, one id at a time, for streaming generation: `push` returns only complete
/// UTF-8 characters (a character split across tokens is held back until its last byte arrives), and
/// `finish` returns what is left (U+FFFD for an incomplete tail). The concatenation of all outputs
/// equals tokenizer::decode of all the ids.
class utf8_stream_decoder {
public:
  explicit utf8_stream_decoder(const tokenizer& t, bool skip_special_tokens = true)
      : tok_(&t), skip_special_(skip_special_tokens) {}
  std::string push(std::int32_t id) {
    bytes_.clear();
    tok_->append_token_bytes(id, bytes_, skip_special_);
    return assembler_.push(bytes_);
  }
  std::string finish() { return assembler_.finish(); }
  /// Bytes held back waiting for the rest of a character (0..3).
  std::size_t pending_bytes() const { return assembler_.pending_bytes(); }

private:
  const tokenizer* tok_;
  bool skip_special_;
  std::string bytes_;
  utf8::stream_assembler assembler_;
};

} // namespace rodimus::io
