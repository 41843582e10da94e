// Safetensors files: strict parsing of a mapped (or in-memory) file into zero-copy tensor views,
// conversion to f32/f64/i64, and a writer (safetensors_writer: streamed, one tensor at a time).
//
// Format: u64 little-endian header length N | N bytes of JSON object | data. Each JSON entry
// (except "__metadata__", a string->string map) is {"dtype", "shape", "data_offsets": [begin, end]}
// with offsets relative to the data section. Validation, all with errors naming the file and the
// tensor: N within the file and at most 100 MB; the header a JSON object nested at most 8 deep,
// with no duplicate key in any object (so no duplicate names), each entry at most 2^20 JSON
// values (checked and dropped as it is parsed, so memory is that of the tensor list); known dtype;
// shape of non-negative integers whose product fits int64; shape x dtype size == end - begin with
// no overflow; the offsets tile the data section exactly (no gap, no overlap, nothing outside,
// nothing left over).
// Tensor bytes need not be aligned (a header length that is not a multiple of 8 is legal): read
// them with memcpy or the conversions here. The writer pads the header so data is 8-byte aligned.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "rodimus/core/dtype.hpp"
#include "rodimus/core/error.hpp"
#include "rodimus/io/atomic_file.hpp"
#include "rodimus/io/json_brief.hpp"
#include "rodimus/io/json_strict.hpp"
#include "rodimus/io/mapped_file.hpp"

namespace rodimus::io {

struct tensor_info {
  std::string name;
  dtype type = dtype::f32;
  std::vector<std::int64_t> shape;
  std::size_t begin = 0; // byte offsets into the data section
  std::size_t end = 0;
  const unsigned char* bytes = nullptr; // begin of this tensor's bytes in memory

  std::int64_t numel() const {
    std::int64_t n = 1;
    for (auto d : shape)
      n *= d;
    return n;
  }
  std::string shape_string() const {
    std::string s = "[";
    for (std::size_t i = 0; i < shape.size(); ++i)
      s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
  }
};

/// The safetensors dtype string for `t` ("F32", "BF16", ...).
inline const char* safetensors_dtype_name(dtype t) {
  switch (t) {
  case dtype::f64: return "F64";
  case dtype::f32: return "F32";
  case dtype::bf16: return "BF16";
  case dtype::f16: return "F16";
  case dtype::i64: return "I64";
  case dtype::i32: return "I32";
  case dtype::u8: return "U8";
  }
  return "?";
}

namespace detail {

constexpr std::uint64_t max_header_bytes = 100u * 1000u * 1000u;
/// JSON values one header entry (or __metadata__) may hold: a tensor entry needs 6 plus its rank,
/// so this only bounds the memory one hostile entry can take while it is parsed.
constexpr std::size_t max_entry_values = std::size_t(1) << 20;

inline bool parse_dtype(const std::string& s, dtype& out) {
  static const std::pair<const char*, dtype> table[] = {
      {"F64", dtype::f64}, {"F32", dtype::f32}, {"BF16", dtype::bf16}, {"F16", dtype::f16},
      {"I64", dtype::i64}, {"I32", dtype::i32}, {"U8", dtype::u8}};
  for (auto& [name, t] : table)
    if (s == name) {
      out = t;
      return true;
    }
  return false;
}

inline bool checked_mul(std::uint64_t a, std::uint64_t b, std::uint64_t& out) {
  if (a != 0 && b > std::numeric_limits<std::uint64_t>::max() / a) return false;
  out = a * b;
  return true;
}

/// `v` as To, with doubles beyond float's range becoming +-inf (the conversion is otherwise UB).
template <class To, class From> To convert_value(From v) {
  if constexpr (std::is_same_v<To, float> && std::is_same_v<From, double>) {
    if (v > double(std::numeric_limits<float>::max()))
      return std::numeric_limits<float>::infinity();
    if (v < -double(std::numeric_limits<float>::max()))
      return -std::numeric_limits<float>::infinity();
  }
  return To(v);
}

} // namespace detail

class safetensors_file {
public:
  /// Map and validate the file at `path`. Throws rodimus::error naming the file and the problem.
  static safetensors_file open(const std::string& path) {
    safetensors_file f;
    f.map_ = std::make_shared<mapped_file>(path);
    f.parse(f.map_->data(), f.map_->size(), path);
    return f;
  }
  /// Validate a file held in memory (the bytes are copied). `name` is used in messages.
  static safetensors_file from_bytes(const void* data, std::size_t size,
                                     const std::string& name = "<memory>") {
    safetensors_file f;
    auto* p = static_cast<const unsigned char*>(data);
    f.owned_ = std::make_shared<std::vector<unsigned char>>(p, p + size);
    f.parse(f.owned_->data(), f.owned_->size(), name);
    return f;
  }

  const std::string& path() const noexcept { return path_; }
  const std::vector<tensor_info>& tensors() const noexcept { return tensors_; }
  const std::map<std::string, std::string>& metadata() const noexcept { return metadata_; }

  const tensor_info* find(const std::string& name) const {
    auto it = index_.find(name);
    return it == index_.end() ? nullptr : &tensors_[it->second];
  }
  const tensor_info& at(const std::string& name) const {
    const tensor_info* t = find(name);
    if (!t) throw error(path_ + ": no tensor named '" + name + "'");
    return *t;
  }

  /// The tensor's values widened to To (float, double or int64); throws on a dtype mismatch of
  /// kind.
  template <class To> std::vector<To> read(const std::string& name) const {
    const tensor_info& t = at(name);
    std::vector<To> out(std::size_t(t.numel()));
    convert_into(t, out.data());
    return out;
  }
  template <class To> void convert_into(const tensor_info& t, To* out) const {
    const std::size_t n = std::size_t(t.numel());
    const unsigned char* p = t.bytes;
    constexpr bool want_int = std::is_integral_v<To>;
    const bool is_int = t.type == dtype::i64 || t.type == dtype::i32 || t.type == dtype::u8;
    if (want_int != is_int)
      throw error(path_ + ": tensor '" + t.name + "' has dtype " + safetensors_dtype_name(t.type) +
                  ", expected " + (want_int ? "an integer dtype" : "a floating-point dtype"));
    for (std::size_t i = 0; i < n; ++i)
      out[i] = element<To>(t.type, p, i);
  }

private:
  template <class To> static To element(dtype type, const unsigned char* p, std::size_t i) {
    switch (type) {
    case dtype::f64: {
      double v;
      std::memcpy(&v, p + 8 * i, 8);
      return detail::convert_value<To>(v);
    }
    case dtype::f32: {
      float v;
      std::memcpy(&v, p + 4 * i, 4);
      return To(v);
    }
    case dtype::bf16: {
      std::uint16_t v;
      std::memcpy(&v, p + 2 * i, 2);
      return To(bf16::to_float(v));
    }
    case dtype::f16: {
      std::uint16_t v;
      std::memcpy(&v, p + 2 * i, 2);
      return To(f16::to_float(v));
    }
    case dtype::i64: {
      std::int64_t v;
      std::memcpy(&v, p + 8 * i, 8);
      return To(v);
    }
    case dtype::i32: {
      std::int32_t v;
      std::memcpy(&v, p + 4 * i, 4);
      return To(v);
    }
    case dtype::u8: return To(p[i]);
    }
    return To(0);
  }

  [[noreturn]] void fail(const std::string& what) const { throw error(path_ + ": " + what); }

  void parse(const unsigned char* data, std::size_t size, const std::string& path) {
    path_ = path;
    if (size < 8)
      fail("file too short for a safetensors header (" + std::to_string(size) + " bytes)");
    std::uint64_t n = 0;
    for (int i = 7; i >= 0; --i)
      n = (n << 8) | data[i];
    if (n > detail::max_header_bytes)
      fail("header length " + std::to_string(n) + " exceeds the 100 MB limit");
    if (n > size - 8)
      fail("header length " + std::to_string(n) + " runs past the end of the file (" +
           std::to_string(size) + " bytes)");
    const char* hbeg = reinterpret_cast<const char*>(data + 8);
    const unsigned char* body = data + 8 + n;
    const std::size_t body_size = size - 8 - std::size_t(n);

    // Parse strictly (duplicate keys and deep nesting are errors; a valid header nests three
    // levels: object, entry, shape), checking each entry as soon as it is parsed: memory is that of
    // the tensor list, not of a JSON document of the whole header.
    detail::for_each_json_member(hbeg, hbeg + n, path_, "header", 8, "tensor name",
                                 detail::max_entry_values,
                                 [&](const std::string& name, const nlohmann::json& e) {
                                   if (name == "__metadata__")
                                     add_metadata(e);
                                   else
                                     add_tensor(name, e, body, body_size);
                                 });

    // The offsets must tile the data section exactly.
    std::vector<const tensor_info*> order;
    for (auto& t : tensors_)
      order.push_back(&t);
    std::sort(order.begin(), order.end(), [](auto* a, auto* b) {
      return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
    });
    std::size_t cursor = 0;
    for (auto* t : order) {
      if (t->begin < cursor)
        fail("tensor '" + detail::brief_text(t->name) +
             "' overlaps the previous tensor (begins at " + std::to_string(t->begin) +
             ", previous ends at " + std::to_string(cursor) + ")");
      if (t->begin > cursor)
        fail("gap in the data section before tensor '" + detail::brief_text(t->name) + "' (bytes " +
             std::to_string(cursor) + ".." + std::to_string(t->begin) + " unused)");
      cursor = t->end;
    }
    if (cursor != body_size)
      fail("data section has " + std::to_string(body_size - cursor) +
           " trailing bytes that no tensor covers");
    for (std::size_t i = 0; i < tensors_.size(); ++i)
      index_[tensors_[i].name] = i;
  }

  void add_metadata(const nlohmann::json& e) {
    if (!e.is_object()) fail("__metadata__ is not a JSON object, found " + detail::brief_json(e));
    for (auto m = e.begin(); m != e.end(); ++m) {
      if (!m.value().is_string())
        fail("__metadata__ value of '" + detail::brief_text(m.key()) + "' is not a string");
      metadata_[m.key()] = m.value().get<std::string>();
    }
  }

  /// Check one header entry against the data section and add it to tensors_.
  void add_tensor(const std::string& name, const nlohmann::json& e, const unsigned char* body,
                  std::size_t body_size) {
    const std::string where = "tensor '" + detail::brief_text(name) + "'";
    if (!e.is_object()) fail(where + ": entry is not a JSON object");
    for (const char* key : {"dtype", "shape", "data_offsets"})
      if (!e.contains(key)) fail(where + ": missing \"" + key + "\"");
    tensor_info t;
    t.name = name;
    if (!e["dtype"].is_string()) fail(where + ": dtype is not a string");
    const std::string dt = e["dtype"].get<std::string>();
    if (!detail::parse_dtype(dt, t.type))
      fail(where + ": unsupported dtype '" + detail::brief_text(dt) +
           "' (supported: F64, F32, BF16, F16, I64, I32, U8)");
    if (!e["shape"].is_array()) fail(where + ": shape is not an array");
    // The element count (and every partial product) must fit int64, so numel() cannot overflow.
    constexpr std::uint64_t int64_max = std::uint64_t(std::numeric_limits<std::int64_t>::max());
    std::uint64_t count = 1;
    for (const auto& d : e["shape"]) {
      const bool ok =
          d.is_number_unsigned() || (d.is_number_integer() && d.get<std::int64_t>() >= 0);
      if (!ok)
        fail(where + ": shape " + detail::brief_json(e["shape"]) +
             " has an entry that is not a non-negative integer");
      const std::uint64_t dim = d.get<std::uint64_t>();
      if (!detail::checked_mul(count, dim, count) || count > int64_max || dim > int64_max)
        fail(where + ": shape " + detail::brief_json(e["shape"]) +
             " overflows (element count beyond 2^63)");
      t.shape.push_back(std::int64_t(dim));
    }
    const auto& off = e["data_offsets"];
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() ||
        !off[1].is_number_unsigned())
      fail(where + ": data_offsets must be two non-negative integers, found " +
           detail::brief_json(off));
    const std::uint64_t b = off[0].get<std::uint64_t>(), en = off[1].get<std::uint64_t>();
    if (b > en)
      fail(where + ": data_offsets begin " + std::to_string(b) + " > end " + std::to_string(en));
    if (en > body_size)
      fail(where + ": data_offsets end " + std::to_string(en) + " is outside the data section (" +
           std::to_string(body_size) + " bytes)");
    std::uint64_t nbytes = 0;
    if (!detail::checked_mul(count, size_of(t.type), nbytes))
      fail(where + ": byte size of shape overflows");
    if (nbytes != en - b)
      fail(where + ": shape " + t.shape_string() + " x " + dt + " is " + std::to_string(nbytes) +
           " bytes but data_offsets span " + std::to_string(en - b));
    t.begin = std::size_t(b);
    t.end = std::size_t(en);
    t.bytes = body + t.begin;
    tensors_.push_back(std::move(t));
  }

  std::string path_;
  std::shared_ptr<mapped_file> map_;
  std::shared_ptr<std::vector<unsigned char>> owned_;
  std::vector<tensor_info> tensors_;
  std::map<std::string, std::size_t> index_;
  std::map<std::string, std::string> metadata_;
};

/// One tensor to write: its name, dtype, shape and bytes (numel x size_of(type)). The streaming
/// writer (safetensors_writer) takes the bytes later and ignores `bytes` here.
struct tensor_to_write {
  std::string name;
  dtype type;
  std::vector<std::int64_t> shape;
  const void* bytes = nullptr;
};

namespace detail {

/// The bytes of `t` (numel x size_of(type)); throws naming `t` on a negative dimension or an
/// overflow.
inline std::size_t tensor_bytes(const tensor_to_write& t) {
  std::uint64_t n = size_of(t.type);
  for (auto d : t.shape)
    if (d < 0 || !checked_mul(n, std::uint64_t(d), n))
      throw error("safetensors writer: tensor '" + t.name +
                  "': bad shape (a negative dimension or a byte size beyond 2^64)");
  if (n > std::numeric_limits<std::size_t>::max())
    throw error("safetensors writer: tensor '" + t.name + "': size overflows");
  return std::size_t(n);
}

/// The file's first bytes (the u64 header length and the JSON header, padded so the data section
/// starts 8-byte aligned) for `tensors` in the order given (their `bytes` are not read);
/// `data_bytes` gets the size of the data section that follows.
inline std::string safetensors_header(const std::vector<tensor_to_write>& tensors,
                                      const std::map<std::string, std::string>& metadata,
                                      std::size_t& data_bytes) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::size_t offset = 0;
  for (const auto& t : tensors) {
    const std::string where = "safetensors writer: tensor '" + t.name + "'";
    if (t.name == "__metadata__") throw error(where + ": the name is reserved");
    if (header.contains(t.name)) throw error(where + ": duplicate tensor name");
    const std::size_t n = tensor_bytes(t);
    if (n > std::numeric_limits<std::size_t>::max() - offset)
      throw error(where + ": total size overflows");
    header[t.name] = {{"dtype", safetensors_dtype_name(t.type)},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + n}}};
    offset += n;
  }
  std::string h;
  try {
    h = header.dump();
  } catch (const nlohmann::json::exception& e) {
    throw error(std::string("safetensors writer: a tensor name or metadata is not valid UTF-8: ") +
                e.what());
  }
  while ((h.size() + 8) % 8 != 0)
    h += ' '; // keep the data section 8-byte aligned
  std::string out(8, '\0');
  const std::uint64_t hn = h.size();
  for (int i = 0; i < 8; ++i)
    out[std::size_t(i)] = static_cast<char>(static_cast<unsigned char>(hn >> (8 * i)));
  data_bytes = offset;
  return out + h;
}

/// t's bytes, or an error naming t when they are missing.
inline const void* tensor_data(const tensor_to_write& t, std::size_t n) {
  if (n > 0 && t.bytes == nullptr)
    throw error("safetensors writer: tensor '" + t.name + "': bytes is null for " +
                std::to_string(n) + " bytes of data");
  return t.bytes;
}

} // namespace detail

/// Serialise tensors (in the order given) and `metadata` (the header's "__metadata__", left out
/// when empty) to safetensors bytes.
/// Throws rodimus::error on a duplicate or reserved name, a negative dimension or a size overflow.
inline std::vector<unsigned char>
to_safetensors_bytes(const std::vector<tensor_to_write>& tensors,
                     const std::map<std::string, std::string>& metadata = {}) {
  std::size_t data_bytes = 0;
  const std::string h = detail::safetensors_header(tensors, metadata, data_bytes);
  std::vector<unsigned char> out(h.size() + data_bytes);
  std::memcpy(out.data(), h.data(), h.size());
  std::size_t pos = h.size();
  for (const auto& t : tensors) {
    const std::size_t n = detail::tensor_bytes(t);
    if (n) std::memcpy(out.data() + pos, detail::tensor_data(t, n), n);
    pos += n;
  }
  return out;
}

/// A safetensors file written as its tensors are produced, one at a time: a checkpoint larger
/// than memory never exists whole anywhere but on the disk.
///
///   io::safetensors_writer f(path, tensors, metadata); // the header: names, dtypes, shapes
///   f.write_next(bytes, n);                            // each tensor's bytes, in that order
///   f.commit();                                        // now path holds the file
///
/// The file is written beside `path` and renamed over it by commit() (io/atomic_file.hpp): until
/// then, or when the writer is dropped without commit(), `path` stays as it was. The tensors'
/// `bytes` are not read. Throws rodimus::error naming the tensor on a duplicate or reserved name, a
/// negative dimension, a size overflow, a tensor given the wrong number of bytes, too many tensors
/// or a commit() before the last one; naming the file when it cannot be written.
class safetensors_writer {
public:
  safetensors_writer(const std::string& path, std::vector<tensor_to_write> tensors,
                     const std::map<std::string, std::string>& metadata = {})
      : tensors_(std::move(tensors)) {
    std::size_t data_bytes = 0;
    const std::string h = detail::safetensors_header(tensors_, metadata, data_bytes);
    file_.emplace(path);
    file_->write(h);
  }

  /// The tensor write_next takes next (its name, dtype and shape), or nullptr after the last.
  const tensor_to_write* next() const noexcept {
    return next_ < tensors_.size() ? &tensors_[next_] : nullptr;
  }

  /// The next tensor's data: exactly its numel x size_of(type) bytes.
  void write_next(const void* bytes, std::size_t n) {
    const tensor_to_write* t = next();
    if (!t)
      throw error(file_->path() + ": safetensors writer: all " + std::to_string(tensors_.size()) +
                  " tensors are written already");
    const std::size_t want = detail::tensor_bytes(*t);
    if (n != want)
      throw error(file_->path() + ": safetensors writer: tensor '" + t->name + "' takes " +
                  std::to_string(want) + " bytes, given " + std::to_string(n));
    file_->write(detail::tensor_data({t->name, t->type, t->shape, bytes}, n), n);
    ++next_;
  }

  /// Flush and rename over the destination; every tensor must have been written.
  void commit() {
    if (const tensor_to_write* t = next())
      throw error(file_->path() + ": safetensors writer: tensor '" + t->name +
                  "' (and any after it) not written");
    file_->commit();
  }

private:
  std::vector<tensor_to_write> tensors_;
  std::size_t next_ = 0;
  std::optional<atomic_file> file_;
};

/// Write tensors (and metadata, as to_safetensors_bytes) to `path`, streamed tensor by tensor (no
/// copy of the whole file in memory; safetensors_writer). Throws rodimus::error naming the file
/// when it cannot be written.
inline void write_safetensors(const std::string& path, const std::vector<tensor_to_write>& tensors,
                              const std::map<std::string, std::string>& metadata = {}) {
  safetensors_writer f(path, tensors, metadata);
  for (const auto& t : tensors) {
    const std::size_t n = detail::tensor_bytes(t);
    f.write_next(detail::tensor_data(t, n), n);
  }
  f.commit();
}

} // namespace rodimus::io
