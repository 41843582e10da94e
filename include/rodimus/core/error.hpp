// `rodimus::error`: the exception of the model, io and tool layers (never thrown by kernels).
// Its message names the file, tensor or key, what was expected and what was found.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>

#include "rodimus/core/status.hpp"

namespace rodimus {

/// Messages longer than this are cut (a hostile file can hold a 100 MB tensor name, or a config a
/// hundred thousand missing tensors: the message must stay readable and small).
constexpr std::size_t max_error_message_bytes = 16 * 1024;

/// `message` cut to max_error_message_bytes, never inside a UTF-8 sequence, saying how much was
/// cut.
inline std::string bounded_error_message(const std::string& message) {
  if (message.size() <= max_error_message_bytes) return message;
  std::size_t cut = max_error_message_bytes;
  while (cut > 0 && (static_cast<unsigned char>(message[cut]) & 0xC0) == 0x80)
    --cut;
  return message.substr(0, cut) + "... [" + std::to_string(message.size() - cut) +
         " more bytes of this message left out]";
}

class error : public std::runtime_error {
public:
  explicit error(const std::string& message) : std::runtime_error(bounded_error_message(message)) {}
};

/// "bad shape: q" and the context, e.g. "layer 3 mixer: bad shape: q".
inline std::string to_string(status s) {
  std::string out = to_string(s.code);
  if (s.what && *s.what) out += std::string(": ") + s.what;
  return out;
}

/// Throw `rodimus::error` with `context` when a status failed.
inline void throw_if_failed(status s, const std::string& context) {
  if (!s.ok()) throw error(context + ": " + to_string(s));
}

} // namespace rodimus
