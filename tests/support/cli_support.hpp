// Helpers of the tests that run the `rodimus` tool through /bin/sh: a whole file as a string and a
// shell word.
#pragma once

#include <fstream>
#include <sstream>
#include <string>

namespace rodimus::test {

/// The bytes of the file at `path` ("" when it cannot be read).
inline std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

/// One shell word for /bin/sh: single quotes, with ' written as '\''.
inline std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s)
    q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

} // namespace rodimus::test
