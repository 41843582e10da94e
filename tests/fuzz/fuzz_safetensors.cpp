// libFuzzer target: safetensors_file::from_bytes on arbitrary bytes. Only rodimus::error may escape
// the parser; every accepted file's tensors are read in full (so an out-of-bounds view is caught by
// AddressSanitizer), and writing an accepted file back and parsing it again gives the same tensors.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "rodimus/core/error.hpp"
#include "rodimus/io/safetensors.hpp"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace rodimus;
  io::safetensors_file f;
  try {
    f = io::safetensors_file::from_bytes(data, size, "fuzz.safetensors");
  } catch (const rodimus::error&) {
    return 0;
  }
  // Touch every byte of every tensor and convert every element.
  std::vector<io::tensor_to_write> again;
  volatile unsigned sum = 0;
  for (const auto& t : f.tensors()) {
    check(t.end >= t.begin);
    check(std::uint64_t(t.numel()) * size_of(t.type) == t.end - t.begin);
    for (std::size_t i = t.begin; i < t.end; ++i)
      sum = sum + t.bytes[i - t.begin];
    const bool is_int = t.type == dtype::i64 || t.type == dtype::i32;
    if (is_int) {
      check(f.read<std::int64_t>(t.name).size() == std::size_t(t.numel()));
    } else {
      check(f.read<float>(t.name).size() == std::size_t(t.numel()));
      check(f.read<double>(t.name).size() == std::size_t(t.numel()));
    }
    check(f.find(t.name) == &t);
    again.push_back({t.name, t.type, t.shape, t.bytes});
  }
  // Round trip through the writer.
  const auto bytes = io::to_safetensors_bytes(again);
  const auto g = io::safetensors_file::from_bytes(bytes.data(), bytes.size(), "round trip");
  check(g.tensors().size() == f.tensors().size());
  for (const auto& t : f.tensors()) {
    const io::tensor_info& u = g.at(t.name);
    check(u.type == t.type && u.shape == t.shape && u.end - u.begin == t.end - t.begin);
    check(t.end == t.begin || std::memcmp(u.bytes, t.bytes, t.end - t.begin) == 0);
  }
  return 0;
}
