// A model's weights copied once into a backend's memory (one block, matrices in their stored
// dtype, vectors in f32), with the same views as the loader's: what model_runner uses on a backend
// whose memory the host cannot read (CUDA). Host backends read the loader's memory directly.
// Quantised weights (model/quant_policy.hpp, or a checkpoint saved quantised) are refused here: no
// device kernel reads them yet.
#pragma once

#include <cstddef>
#include <string>

#include "rodimus/backend/cpu/memory.hpp"
#include "rodimus/core/error.hpp"
#include "rodimus/core/workspace.hpp"
#include "rodimus/model/weight_views.hpp"
#include "rodimus/model/weights.hpp"

namespace rodimus {

/// backend_weights' first check: no device kernel reads the block formats yet (the formats are
/// backend-neutral, so they can come), so quantised weights are refused with a rodimus::error.
inline void refuse_quantised_weights(const model_weights& w) {
  if (w.quant().any() || w.quantised())
    throw error(w.dir() + ": quantised weights (q8 / q4) are not supported on this backend yet: "
                          "load the stored weights (--weights stored) or use the CPU backend");
}

template <class Backend> class backend_weights {
public:
  backend_weights(const Backend& be, const model_weights& w) : views_(w.views()) {
    refuse_quantised_weights(w);
    const bool tied = w.config().tie_word_embeddings;
    std::size_t total = 0;
    for_each_weight(
        views_, tied, [&](weight_matrix& m) { total += workspace::round_up(m.bytes()); },
        [&](weight_vector& v) { total += workspace::round_up(std::size_t(v.numel()) * 4); });
    memory_ = backend_buffer<Backend>(be, total, w.dir() + ": weights on the backend");
    std::size_t used = 0;
    auto place = [&](const void* src, std::size_t bytes) {
      unsigned char* dst = memory_.data() + used;
      const status s = copy_to_backend(be, dst, src, bytes);
      if (!s.ok()) throw error(w.dir() + ": copying the weights to the backend: " + to_string(s));
      used += workspace::round_up(bytes);
      return dst;
    };
    for_each_weight(
        views_, tied, [&](weight_matrix& m) { m.data = place(m.data, m.bytes()); },
        [&](weight_vector& v) {
          v.data = reinterpret_cast<const float*>(place(v.data, std::size_t(v.numel()) * 4));
        });
    if (tied) views_.lm_head = views_.embeddings;
    const status s = synchronize(be); // the host copies must outlive the queued transfers
    if (!s.ok()) throw error(w.dir() + ": copying the weights to the backend: " + to_string(s));
  }

  const model_weight_views& views() const noexcept { return views_; }
  std::size_t bytes() const noexcept { return memory_.size(); }

private:
  backend_buffer<Backend> memory_;
  model_weight_views views_;
};

} // namespace rodimus
