// Helpers of the loader tests (safetensors, checkpoints, config.json): a temporary folder removed
// at the end of its scope, and the check that a call throws rodimus::error naming what is wrong.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <system_error>
#include <vector>

#include "rodimus/core/error.hpp"
#include "support/test_support.hpp"

namespace rodimus::test {

/// A fresh folder under the system's temporary directory, removed with everything in it.
struct temp_dir {
  std::filesystem::path path;
  temp_dir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "rodimus_test_XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string str() const { return path.string(); }
  std::string file(const std::string& name) const { return (path / name).string(); }
  /// Write `size` bytes at `data` to the file `name` in the folder (replacing it).
  void write(const std::string& name, const void* data, std::size_t size) const {
    std::ofstream f(path / name, std::ios::binary | std::ios::trunc);
    f.write(static_cast<const char*>(data), std::streamsize(size));
    REQUIRE(f.good());
  }
  void write(const std::string& name, const std::vector<unsigned char>& bytes) const {
    write(name, bytes.data(), bytes.size());
  }
  void write(const std::string& name, const std::string& text) const {
    write(name, text.data(), text.size());
  }
};

/// Run `f`, REQUIRE that it throws rodimus::error, and CHECK that the message contains every word.
inline void expect_error(const std::function<void()>& f, const std::vector<std::string>& words) {
  std::string message;
  bool threw = false;
  try {
    f();
  } catch (const error& e) {
    threw = true;
    message = e.what();
  }
  INFO("message: " << message);
  REQUIRE(threw);
  for (const auto& w : words) {
    INFO("expected word: " << w);
    CHECK(message.find(w) != std::string::npos);
  }
}

} // namespace rodimus::test
