// Shared pieces of the `rodimus` tool: a small flag parser and the subcommand entry points.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "rodimus/core/error.hpp"
#include "rodimus/model/weights.hpp"

namespace rodimus::cli {

/// `text` as a whole base-10 integer; nullopt when it is empty, has anything else in it or is out
/// of range.
inline std::optional<long long> parse_integer(const std::string& text) {
  std::size_t used = 0;
  long long x = 0;
  try {
    x = std::stoll(text, &used);
  } catch (...) {
    return std::nullopt;
  }
  if (text.empty() || used != text.size()) return std::nullopt;
  return x;
}

/// Flags as "--name value" or "--name" (switch); positional words are not used by any subcommand.
class args {
public:
  args(int argc, char** argv, const std::vector<std::string>& switches) {
    for (int i = 0; i < argc; ++i) {
      std::string a = argv[i];
      if (a.rfind("--", 0) != 0) throw error("unexpected argument '" + a + "'");
      std::string name = a.substr(2);
      const auto eq = name.find('=');
      if (eq != std::string::npos) {
        values_[name.substr(0, eq)] = name.substr(eq + 1);
        continue;
      }
      bool is_switch = false;
      for (auto& s : switches)
        is_switch |= (s == name);
      if (is_switch) {
        values_[name] = "1";
      } else {
        if (i + 1 >= argc) throw error("flag --" + name + " needs a value");
        values_[name] = argv[++i];
      }
    }
  }
  bool has(const std::string& name) const { return values_.count(name) != 0; }
  std::string get(const std::string& name, const std::string& fallback = "") const {
    auto it = values_.find(name);
    return it == values_.end() ? fallback : it->second;
  }
  std::string require(const std::string& name) const {
    if (!has(name)) throw error("missing required flag --" + name);
    return get(name);
  }
  long long get_int(const std::string& name, long long fallback) const {
    if (!has(name)) return fallback;
    const std::string v = get(name);
    const std::optional<long long> x = parse_integer(v);
    if (!x) throw error("--" + name + " expects an integer, got '" + v + "'");
    return *x;
  }
  double get_double(const std::string& name, double fallback) const {
    if (!has(name)) return fallback;
    const std::string v = get(name);
    std::size_t used = 0;
    double x = 0;
    try {
      x = std::stod(v, &used);
    } catch (...) {
      used = 0;
    }
    if (used != v.size() || v.empty())
      throw error("--" + name + " expects a number, got '" + v + "'");
    return x;
  }
  /// Throw naming the first flag that is not in `known`.
  void allow_only(const std::vector<std::string>& known) const {
    for (auto& [k, v] : values_) {
      bool ok = false;
      for (auto& n : known)
        ok |= (n == k);
      if (!ok) throw error("unknown flag --" + k);
    }
  }

private:
  std::map<std::string, std::string> values_;
};

/// Where the weights live: `--mmap` reads them in place from the file mapping; by default they are
/// copied into memory on huge pages (faster decode, see rodimus/model/weights.hpp).
inline weight_placement placement_flag(const args& a) {
  return a.has("mmap") ? weight_placement::mapped : weight_placement::memory;
}

// One entry point per subcommand (examples/rodimus/cmd_<name>.cpp). argv excludes the subcommand.
int run_logits(int argc, char** argv);
int run_generate(int argc, char** argv);
int run_inspect(int argc, char** argv);
int run_tokenize(int argc, char** argv);
int run_bench(int argc, char** argv);
int run_demo(int argc, char** argv);

} // namespace rodimus::cli
