// A model runner and its state pool behind one virtual interface, for programs that choose the
// backend at run time (the `rodimus` tool's --backend): model_session_on<Backend> wraps
// model_runner<Backend> + state_pool<Backend>; code written against model_session runs on any of
// them. Kernels and blocks stay compile-time generic; only this thin layer is dynamic.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "rodimus/backend/cpu/memory.hpp"
#include "rodimus/runtime/runner.hpp"
#include "rodimus/runtime/state.hpp"

namespace rodimus {

class model_session {
public:
  virtual ~model_session() = default;

  virtual const model_config& config() const = 0;
  /// "scalar", "cpu-avx512bw", "cuda-sm90", ...
  virtual const std::string& backend_name() const = 0;

  // The state pool (see runtime/state.hpp).
  virtual int capacity() const = 0;
  virtual int acquire() = 0;
  virtual void release(int slot) = 0;
  virtual std::int64_t position(int slot) const = 0;
  virtual std::size_t bytes_per_sequence() const = 0;
  virtual void save(int slot, const std::string& path) const = 0;
  virtual void load(int slot, const std::string& path) = 0;

  // The runner (see runtime/runner.hpp), on this session's pool.
  virtual std::vector<float> prefill(const std::vector<std::int32_t>& slots,
                                     const std::vector<std::int64_t>& ids,
                                     const std::vector<std::int64_t>& cu_seqlens,
                                     logits_for which) = 0;
  virtual std::vector<float> decode(const std::vector<std::int32_t>& slots,
                                    const std::vector<std::int64_t>& ids) = 0;
  /// decode, then each sequence's argmax token picked on the backend (model_runner::decode_greedy).
  virtual std::vector<std::int64_t> decode_greedy(const std::vector<std::int32_t>& slots,
                                                  const std::vector<std::int64_t>& ids) = 0;
  /// sequence_logits (runtime/runner.hpp) on a pool of its own.
  virtual std::vector<float> sequence_logits(const std::vector<std::int64_t>& ids, index_t B,
                                             index_t T, index_t prefix) = 0;
  /// Wait for the backend's queued work (timing).
  virtual void synchronize() = 0;
};

template <class Backend> class model_session_on final : public model_session {
public:
  model_session_on(const model_weights& w, const Backend& be, int capacity, std::string name)
      : runner_(w, be), pool_(runner_.make_pool(capacity)), name_(std::move(name)) {}

  model_runner<Backend>& runner() noexcept { return runner_; }
  state_pool<Backend>& pool() noexcept { return pool_; }

  const model_config& config() const override { return runner_.config(); }
  const std::string& backend_name() const override { return name_; }
  int capacity() const override { return pool_.capacity(); }
  int acquire() override { return pool_.acquire(); }
  void release(int slot) override { pool_.release(slot); }
  std::int64_t position(int slot) const override { return pool_.position(slot); }
  std::size_t bytes_per_sequence() const override { return pool_.bytes_per_sequence(); }
  void save(int slot, const std::string& path) const override { pool_.save(slot, path); }
  void load(int slot, const std::string& path) override { pool_.load(slot, path); }
  std::vector<float> prefill(const std::vector<std::int32_t>& slots,
                             const std::vector<std::int64_t>& ids,
                             const std::vector<std::int64_t>& cu_seqlens,
                             logits_for which) override {
    return runner_.prefill(pool_, slots, ids, cu_seqlens, which);
  }
  std::vector<float> decode(const std::vector<std::int32_t>& slots,
                            const std::vector<std::int64_t>& ids) override {
    return runner_.decode(pool_, slots, ids);
  }
  std::vector<std::int64_t> decode_greedy(const std::vector<std::int32_t>& slots,
                                          const std::vector<std::int64_t>& ids) override {
    return runner_.decode_greedy(pool_, slots, ids);
  }
  std::vector<float> sequence_logits(const std::vector<std::int64_t>& ids, index_t B, index_t T,
                                     index_t prefix) override {
    return rodimus::sequence_logits(runner_, ids, B, T, prefix);
  }
  void synchronize() override {
    const status s = rodimus::synchronize(runner_.backend());
    if (!s.ok()) throw error(name_ + ": " + to_string(s));
  }

private:
  model_runner<Backend> runner_;
  state_pool<Backend> pool_;
  std::string name_;
};

} // namespace rodimus
