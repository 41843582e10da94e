// Reading the fields of a parsed JSON document (io/json_strict.hpp) with errors that name where the
// field is: "<path>.<key>: missing", "<path>: expected a string, found number", ... Shared by the
// readers of tokenizer.json (io/tokenizer.hpp, io/pre_tokenizer.hpp) and config.json
// (io/config.hpp: a key that is absent or null is not present, for both).
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "rodimus/core/error.hpp"
#include "rodimus/io/json_brief.hpp"

namespace rodimus::io::detail {

inline std::string type_name(const nlohmann::json& j) {
  return j.is_null() ? "null" : std::string(j.type_name());
}

inline const nlohmann::json& member(const nlohmann::json& obj, const char* key,
                                    const std::string& path) {
  auto it = obj.find(key);
  if (it == obj.end()) throw error(path + "." + key + ": missing");
  return *it;
}
inline const nlohmann::json* optional_member(const nlohmann::json& obj, const char* key) {
  auto it = obj.find(key);
  return it == obj.end() || it->is_null() ? nullptr : &*it;
}
inline void expect_object(const nlohmann::json& j, const std::string& path) {
  if (!j.is_object()) throw error(path + ": expected an object, found " + type_name(j));
}
inline std::string get_string(const nlohmann::json& j, const std::string& path) {
  if (!j.is_string()) throw error(path + ": expected a string, found " + type_name(j));
  return j.get<std::string>();
}
inline bool get_bool(const nlohmann::json& obj, const char* key, bool fallback,
                     const std::string& path) {
  const nlohmann::json* v = optional_member(obj, key);
  if (!v) return fallback;
  if (!v->is_boolean())
    throw error(path + "." + key + ": expected true or false, found " + type_name(*v));
  return v->get<bool>();
}
inline std::int32_t get_id(const nlohmann::json& j, const std::string& path) {
  if (!j.is_number_integer() || j.get<std::int64_t>() < 0 || j.get<std::int64_t>() > INT32_MAX) {
    throw error(path + ": expected an id (integer in [0, 2^31)), found " + brief_json(j));
  }
  return std::int32_t(j.get<std::int64_t>());
}
inline std::string component_type(const nlohmann::json& j, const std::string& path) {
  expect_object(j, path);
  return get_string(member(j, "type", path), path + ".type");
}
[[noreturn]] inline void unsupported(const std::string& path, const std::string& type,
                                     const std::string& supported) {
  throw error(path + ".type: '" + type + "' is not supported (supported: " + supported + ")");
}

} // namespace rodimus::io::detail
