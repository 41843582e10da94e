// `rodimus::error`: the exception of the model, io and tool layers (never thrown by kernels).
// Its message names the file, tensor or key, what was expected and what was found.
#pragma once

#include <stdexcept>
#include <string>

#include "rodimus/core/status.hpp"

namespace rodimus {

class error : public std::runtime_error {
public:
  explicit error(const std::string& message) : std::runtime_error(message) {}
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
