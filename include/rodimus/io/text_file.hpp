// Reading a whole small text file (config.json, a checkpoint index, tokenizer.json) with a size
// limit, and errors that say what is wrong with the path: not found, a directory, or not a regular
// file (a FIFO would block the read until a writer came; a device may never end).
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>

#include "rodimus/core/error.hpp"

namespace rodimus::io::detail {

/// Throw unless `path` is a regular file; `what` names the file's role in messages ("the model
/// configuration (config.json)"), or is empty.
inline void require_regular_file(const std::string& path, const std::string& what = {}) {
  const std::string prefix = path + ": cannot open" + (what.empty() ? "" : " " + what) + ": ";
  std::error_code ec;
  const std::filesystem::file_status st = std::filesystem::status(path, ec);
  if (!std::filesystem::exists(st)) {
    if (st.type() == std::filesystem::file_type::not_found) throw error(prefix + "not found");
    throw error(prefix + "cannot read its status" + (ec ? ": " + ec.message() : std::string()));
  }
  if (std::filesystem::is_directory(st))
    throw error(prefix + "not a regular file: it is a directory, expected a file");
  if (!std::filesystem::is_regular_file(st))
    throw error(prefix + "not a regular file (a FIFO, socket or device)");
}

/// Read the whole regular file `path` of at most `max_bytes` bytes; throws naming the file.
inline std::string read_text_file(const std::string& path, std::uint64_t max_bytes,
                                  const std::string& what = {}) {
  require_regular_file(path, what);
  std::ifstream f(path, std::ios::binary);
  if (!f) throw error(path + ": cannot open for reading");
  f.seekg(0, std::ios::end);
  const std::streamoff size = f.tellg();
  if (size < 0) throw error(path + ": cannot determine the file size");
  if (std::uint64_t(size) > max_bytes)
    throw error(path + ": file is " + std::to_string(size) + " bytes, more than the limit of " +
                std::to_string(max_bytes) + (what.empty() ? "" : " for " + what));
  f.seekg(0, std::ios::beg);
  std::string text(std::size_t(size), '\0');
  if (size > 0 && !f.read(text.data(), size)) throw error(path + ": read failed");
  return text;
}

} // namespace rodimus::io::detail
