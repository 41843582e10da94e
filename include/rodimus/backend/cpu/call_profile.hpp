// Opt-in timing of the CPU backend's parallel work, per primitive: a thread_pool given a
// call_profile (thread_pool::set_profile) times every outermost parallel_for, run on the workers
// or inline, and adds the time to the entry of the functor's type: the lambda of the primitive
// that issued the call, whose demangled name says which primitive it is. Nested calls are part of
// their outer one. What runs outside parallel_for (small serial steps) is not counted.
//
//   call_profile prof;
//   pool.set_profile(&prof);
//   ... decode steps ...
//   for (const auto& row : prof.rows()) row.name, row.calls, row.seconds
//
// Recording takes a mutex and never allocates (a fixed table of `capacity` kinds; calls of kinds
// beyond it are counted in `dropped`); rows() allocates the names. For measuring, not for
// production runs: a lock and two clock reads per call.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <typeinfo>
#include <vector>

#if defined(__GNUG__)
#include <cxxabi.h>
#endif

namespace rodimus {

class call_profile {
public:
  static constexpr std::size_t capacity = 128;

  struct row {
    std::string name; // the functor's demangled type, template arguments and parameters elided
    std::uint64_t calls = 0;
    double seconds = 0;
  };

  /// Adds one call of `kind` that took `ns` nanoseconds (while recording).
  void add(const std::type_info& kind, std::uint64_t ns) noexcept {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!recording_) return;
    for (std::size_t i = 0; i < used_; ++i)
      if (*entries_[i].kind == kind) {
        ++entries_[i].calls;
        entries_[i].ns += ns;
        return;
      }
    if (used_ == capacity) {
      ++dropped_;
      return;
    }
    entries_[used_++] = {&kind, 1, ns};
  }

  /// Stops (false) or resumes (true) recording; a new profile records.
  void record(bool on) noexcept {
    std::lock_guard<std::mutex> lock(mutex_);
    recording_ = on;
  }

  /// Forgets every entry.
  void clear() noexcept {
    std::lock_guard<std::mutex> lock(mutex_);
    used_ = 0;
    dropped_ = 0;
  }

  /// Calls not recorded because the table was full.
  std::uint64_t dropped() const noexcept {
    std::lock_guard<std::mutex> lock(mutex_);
    return dropped_;
  }

  /// Every kind seen, the most time first.
  std::vector<row> rows() const {
    std::vector<row> out;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (std::size_t i = 0; i < used_; ++i)
        out.push_back(
            {readable_name(*entries_[i].kind), entries_[i].calls, double(entries_[i].ns) * 1e-9});
    }
    std::sort(out.begin(), out.end(),
              [](const row& a, const row& b) { return a.seconds > b.seconds; });
    return out;
  }

  /// The demangled type name with the contents of <...> and of (...) left out:
  /// "rodimus::linear<>()::{lambda()#1}" with GCC, "rodimus::linear<>()::$_0" with clang.
  static std::string readable_name(const std::type_info& kind) {
    std::string full = kind.name();
#if defined(__GNUG__)
    int status = 0;
    std::unique_ptr<char, void (*)(void*)> d(
        abi::__cxa_demangle(kind.name(), nullptr, nullptr, &status), std::free);
    if (status == 0 && d) full = d.get();
#endif
    std::string out;
    int angle = 0, paren = 0;
    for (const char c : full) {
      if (c == '<' && paren == 0) {
        if (angle++ == 0) out += '<';
      } else if (c == '>' && paren == 0 && angle > 0) {
        if (--angle == 0) out += '>';
      } else if (c == '(' && angle == 0) {
        if (paren++ == 0) out += '(';
      } else if (c == ')' && angle == 0 && paren > 0) {
        if (--paren == 0) out += ')';
      } else if (angle == 0 && paren == 0) {
        out += c;
      }
    }
    return out;
  }

private:
  struct entry {
    const std::type_info* kind = nullptr;
    std::uint64_t calls = 0;
    std::uint64_t ns = 0;
  };
  mutable std::mutex mutex_;
  std::array<entry, capacity> entries_{};
  std::size_t used_ = 0;
  std::uint64_t dropped_ = 0;
  bool recording_ = true;
};

} // namespace rodimus
