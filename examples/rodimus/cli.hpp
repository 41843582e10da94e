// Shared pieces of the `rodimus` tool: a small flag parser, checked output, and the subcommand
// entry points.
#pragma once

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "rodimus/backend/cpu/huge_page_buffer.hpp"
#include "rodimus/backend/cpu/thread_pool.hpp"
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

/// Thrown by `args` for --help (or -h): the tool prints the subcommand's usage and exits 0.
struct help_requested {};

/// The flags of one subcommand. Value flags are "--name VALUE" or "--name=VALUE" (VALUE may start
/// with '-': `--prompt -x` is the prompt "-x"); a one-letter value flag may be written "-n VALUE".
/// Switches are "--name" alone (a value, as in --mmap=0, is refused). A flag given twice, an
/// unknown flag and a positional word are refused with a message naming them.
class args {
public:
  args(int argc, char** argv, const std::vector<std::string>& value_flags,
       const std::vector<std::string>& switches) {
    const auto known = [](const std::vector<std::string>& list, const std::string& name) {
      return std::find(list.begin(), list.end(), name) != list.end();
    };
    for (int i = 0; i < argc; ++i) {
      const std::string a = argv[i];
      if (a == "--help" || a == "-h") throw help_requested{};
      std::string name;
      if (a.size() == 2 && a[0] == '-' && a[1] != '-' && known(value_flags, a.substr(1)))
        name = a.substr(1); // -n
      else if (a.rfind("--", 0) == 0 && a.size() > 2)
        name = a.substr(2);
      else
        throw error("unexpected argument '" + a + "' (flags start with --)");
      std::optional<std::string> value;
      if (const auto eq = name.find('='); eq != std::string::npos) {
        value = name.substr(eq + 1);
        name.resize(eq);
      }
      const std::string flag = (a[1] == '-' ? "--" : "-") + name;
      if (known(switches, name)) {
        if (value) throw error(flag + " is a switch and takes no value (got '" + a + "')");
        value = "";
      } else if (known(value_flags, name)) {
        if (!value) {
          if (i + 1 >= argc) throw error("flag " + flag + " needs a value");
          value = argv[++i];
        }
      } else {
        throw error("unknown flag " + flag);
      }
      if (!values_.emplace(name, *value).second) throw error("flag " + flag + " is given twice");
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
  /// The integer value of --name in [lo, hi], or fallback when it is absent.
  long long get_int(const std::string& name, long long fallback,
                    long long lo = std::numeric_limits<long long>::min(),
                    long long hi = std::numeric_limits<long long>::max()) const {
    if (!has(name)) return fallback;
    const std::string v = get(name);
    const std::optional<long long> x = parse_integer(v);
    if (!x || *x < lo || *x > hi) {
      std::string range = "an integer";
      if (lo != std::numeric_limits<long long>::min() ||
          hi != std::numeric_limits<long long>::max())
        range += hi == std::numeric_limits<long long>::max()
                     ? " >= " + std::to_string(lo)
                     : " in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
      throw error(flag_name(name) + " expects " + range + ", got '" + v + "'");
    }
    return *x;
  }
  /// The value of --name as a number (tiny values such as 1e-320 included), or fallback.
  double get_double(const std::string& name, double fallback) const {
    if (!has(name)) return fallback;
    const std::string v = get(name);
    char* end = nullptr;
    errno = 0;
    const double x = v.empty() ? 0.0 : std::strtod(v.c_str(), &end);
    if (v.empty() || end != v.c_str() + v.size() || std::isspace(static_cast<unsigned char>(v[0])))
      throw error(flag_name(name) + " expects a number, got '" + v + "'");
    if (errno == ERANGE && std::isinf(x))
      throw error(flag_name(name) + ": " + v + " is too large to represent");
    return x;
  }

private:
  static std::string flag_name(const std::string& name) {
    return (name.size() == 1 ? "-" : "--") + name;
  }
  std::map<std::string, std::string> values_;
};

/// --threads N: the participants of the CPU backend's thread pool, 1 <= N <= thread_pool's
/// max_threads (1024); `fallback` when the flag is absent (0: one per hardware thread).
inline int threads_flag(const args& a, int fallback) {
  return int(a.get_int("threads", fallback, 1, thread_pool::max_threads));
}

/// Fail before any work when `path` cannot be an output file (a folder, or in a missing folder).
inline void check_output_path(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_directory(path, ec))
    throw error(path + ": cannot write the output there: it is a directory");
  const fs::path parent = fs::path(path).parent_path();
  if (!parent.empty() && !fs::is_directory(parent, ec))
    throw error(path + ": cannot write the output there: folder " + parent.string() +
                " does not exist");
}

/// Write `text` to standard output now (flushed); throws naming the system's reason on failure
/// (a full disk, a closed pipe that does not raise SIGPIPE).
inline void write_stdout(const std::string& text) {
  if (!text.empty() && std::fwrite(text.data(), 1, text.size(), stdout) != text.size())
    throw error(std::string("standard output: write failed: ") + std::strerror(errno));
  if (std::fflush(stdout) != 0)
    throw error(std::string("standard output: write failed: ") + std::strerror(errno));
}

/// Where the weights live: `--mmap` reads them in place from the file mapping; by default they are
/// copied into memory on huge pages (faster decode, see rodimus/model/weights.hpp).
inline weight_placement placement_flag(const args& a) {
  return a.has("mmap") ? weight_placement::mapped : weight_placement::memory;
}

/// --weights stored|q8|q4: which matrices are block-quantised at load (model/quant_policy.hpp;
/// default stored: none).
inline quant_policy quant_flag(const args& a) {
  return quant_policy::parse(a.get("weights", "stored"));
}

/// Load the weights in `dir` where --mmap asks, quantised as --weights asks (on --threads threads
/// when given, else one per hardware thread), saying on stderr when
/// the default placement
/// (memory) fell back to the file mapping because the weights exceed the machine's memory: reads
/// are then slower, and the file must not change while the tool runs.
inline model_weights load_weights(const std::string& dir, const args& a) {
  // Said before the weights are read (a scan of weights larger than memory takes a while).
  return model_weights::load(
      dir, placement_flag(a),
      [](const std::string& where) {
        std::fprintf(stderr,
                     "note: the weights in %s are larger than this machine's memory (%.1f GB): "
                     "they are read in place from the file mapping instead of copied into memory "
                     "(slower; the file must not change while this runs)\n",
                     where.c_str(), physical_memory_bytes() / 1e9);
      },
      quant_flag(a), unsigned(threads_flag(a, 0)));
}

// One entry point per subcommand (examples/rodimus/cmd_<name>.cpp). argv excludes the subcommand.
int run_logits(int argc, char** argv);
int run_generate(int argc, char** argv);
int run_inspect(int argc, char** argv);
int run_tokenize(int argc, char** argv);
int run_bench(int argc, char** argv);
int run_demo(int argc, char** argv);
int run_quantize(int argc, char** argv);

} // namespace rodimus::cli
