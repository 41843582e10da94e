// Per-sequence inference state of a Rodimus / Rodimus+ model (docs/MODEL.md §6), kept in pools of P
// slots so a batch of sequences can be decoded together. Per layer and slot (all f32):
//
//   conv    (E, W)       the last W = d_conv mixer inputs x, oldest first, the current one included
//   gla     (1, N, E)    the GLA memory S (K-major, N = mem_size)
//   ring_k  (Wr, Hk, d_h)  rodimus_plus: rotated keys of the last Wr positions (p in slot p % Wr)
//   ring_v  (Wr, Hv, d_h)  rodimus_plus: values, same slots
//
// plus the position counter (tokens seen). Wr = window_left + 1 = window_size // 2 + 1, so decoding
// attends the same keys as the full forward; an unbounded window (window_size absent or <= 0) keeps
// max_position_embeddings positions and a longer sequence is an error.
//
// save()/load() write and read one slot as a safetensors file: `layers.{i}.conv` [E, W],
// `layers.{i}.gla` [1, N, E], `layers.{i}.ring_k` [Wr, Hk, d_h], `layers.{i}.ring_v` [Wr, Hv, d_h]
// (F32) and `position` [1] (I64), with the model's configuration (config_fields_text) in the
// metadata under "rodimus.config". load() checks every name, shape and dtype, then the
// configuration (a state of another model with the same shapes is refused), and that every value is
// finite, before touching the slot.
// The file is the same on every backend: a state saved from the GPU loads on the CPU.
//
// state_pool<Backend>: the pools live in the backend's memory (core/memory.hpp: host memory on 2
// MiB pages for scalar / cpu, device memory for CUDA); the bookkeeping (positions, slots in use)
// stays on the host.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "rodimus/backend/cpu/huge_page_buffer.hpp"
#include "rodimus/backend/cpu/memory.hpp"
#include "rodimus/blocks/block.hpp"
#include "rodimus/core/error.hpp"
#include "rodimus/core/finite.hpp"
#include "rodimus/io/safetensors.hpp"
#include "rodimus/model/config.hpp"
#include "rodimus/model/config_fields.hpp"

namespace rodimus {

template <class Backend = scalar> class state_pool {
public:
  state_pool(const model_config& cfg, int capacity, const Backend& be = Backend{})
      : cfg_(cfg), capacity_(capacity), be_(be) {
    if (capacity < 1)
      throw error("state_pool: capacity must be >= 1, got " + std::to_string(capacity));
    const std::size_t P = std::size_t(capacity);
    // Refuse more than the machine's memory up front: zero-filling an over-committed allocation
    // would end in the OOM killer rather than an error.
    const double want = double(P) * double(bytes_per_sequence(cfg));
    const double physical = memory_traits<Backend>::host_accessible ? physical_memory_bytes() : 0;
    if (physical > 0 && want > physical)
      throw error("state_pool: " + std::to_string(capacity) + " sequences need " +
                  std::to_string(want / 1e9) + " GB of state, more than this machine's " +
                  std::to_string(physical / 1e9) +
                  " GB (an unbounded attention window keeps "
                  "max_position_embeddings positions per layer)");
    try {
      layers_.resize(std::size_t(cfg.n_layer));
      auto pool = [&](index_t elems) {
        return backend_buffer<Backend>(
            be_, workspace::product(P, std::size_t(elems) * sizeof(float)), "state_pool");
      };
      for (auto& l : layers_) {
        l.conv = pool(conv_elems());
        l.gla = pool(gla_elems());
        if (cfg.is_plus()) {
          l.ring_k = pool(ring_k_elems());
          l.ring_v = pool(ring_v_elems());
        }
      }
    } catch (
        const std::bad_alloc&) { // e.g. an unbounded window with a huge max_position_embeddings
      throw error("state_pool: cannot allocate " + std::to_string(capacity) + " sequences of " +
                  std::to_string(bytes_per_sequence(cfg)) + " bytes of state each");
    } catch (const std::length_error&) {
      throw error("state_pool: " + std::to_string(capacity) + " sequences of " +
                  std::to_string(bytes_per_sequence(cfg)) +
                  " bytes of state exceed the address space");
    }
    position_.assign(P, 0);
    used_.assign(P, false);
  }

  const model_config& config() const noexcept { return cfg_; }
  int capacity() const noexcept { return capacity_; }
  const Backend& backend() const noexcept { return be_; }
  /// Positions each sequence's attention ring keeps (0 for pure Rodimus models).
  index_t ring_size() const noexcept { return cfg_.is_plus() ? cfg_.attn_ring_size() : 0; }

  /// A free slot with an empty state (position 0). Throws when every slot is in use.
  int acquire() {
    for (int s = 0; s < capacity_; ++s)
      if (!used_[std::size_t(s)]) {
        used_[std::size_t(s)] = true;
        reset(s);
        return s;
      }
    throw error("state_pool: all " + std::to_string(capacity_) + " slots are in use");
  }
  void release(int slot) { used_[checked(slot)] = false; }
  bool in_use(int slot) const { return used_[checked(slot)]; }

  /// Empty the state of `slot` (zeros, position 0).
  void reset(int slot) {
    const std::size_t s = checked(slot);
    for (auto& l : layers_) {
      zero(l.conv, s, conv_elems());
      zero(l.gla, s, gla_elems());
      if (cfg_.is_plus()) {
        zero(l.ring_k, s, ring_k_elems());
        zero(l.ring_v, s, ring_v_elems());
      }
    }
    position_[s] = 0;
  }

  /// Copy the state of slot `from` into slot `to` (a shared prefix continued twice), on the
  /// backend.
  void copy_slot(int from, int to) {
    const std::size_t a = checked(from), b = checked(to);
    for (const slot_tensor& t : slot_tensors()) {
      const std::size_t bytes = std::size_t(elems(t)) * sizeof(float);
      check(copy_within(be_, slot_data(t, b), slot_data(t, a), bytes), "copy_slot");
    }
    position_[b] = position_[a];
  }

  /// Tokens `slot` has seen.
  std::int64_t position(int slot) const { return position_[checked(slot)]; }
  /// The position counters of every slot (P).
  std::int64_t* positions() noexcept { return position_.data(); }

  /// Views of layer `l`'s pools.
  layer_state layer(index_t l) noexcept {
    layer_store& s = layers_[std::size_t(l)];
    const index_t P = capacity_, E = cfg_.d_inner(), W = cfg_.d_conv, N = cfg_.mem_size;
    layer_state v;
    v.mixer.conv = make_view(s.conv.template as<float>(), P, E, W);
    v.mixer.gla = make_view(s.gla.template as<float>(), P, index_t(1), N, E);
    if (cfg_.is_plus()) {
      const index_t Wr = ring_size(), dh = cfg_.head_dim();
      v.attn.ring_k = make_view(s.ring_k.template as<float>(), P, Wr, cfg_.heads_k(), dh);
      v.attn.ring_v = make_view(s.ring_v.template as<float>(), P, Wr, cfg_.heads_v(), dh);
    }
    return v;
  }

  /// Bytes of one sequence's state (all layers, plus the position counter).
  static std::size_t bytes_per_sequence(const model_config& c) {
    state_pool_sizes z{c};
    return std::size_t(c.n_layer) * std::size_t(z.conv() + z.gla() + z.ring_k() + z.ring_v()) *
               sizeof(float) +
           sizeof(std::int64_t);
  }
  std::size_t bytes_per_sequence() const { return bytes_per_sequence(cfg_); }

  /// The metadata key of the model configuration in a saved state.
  static constexpr const char* config_metadata_key = "rodimus.config";

  /// Write the state of `slot` to a safetensors file.
  void save(int slot, const std::string& path) const {
    const std::size_t s = checked(slot);
    const std::vector<slot_tensor> tensors = slot_tensors();
    std::vector<std::vector<float>> host(tensors.size()); // the slot's state, read back to the host
    std::vector<io::tensor_to_write> ts;
    for (std::size_t i = 0; i < tensors.size(); ++i) {
      host[i].resize(std::size_t(elems(tensors[i])));
      check(copy_to_host(be_, host[i].data(), slot_data(tensors[i], s),
                         host[i].size() * sizeof(float)),
            "save");
      ts.push_back({tensors[i].name, dtype::f32, tensors[i].shape, host[i].data()});
    }
    ts.push_back({"position", dtype::i64, {1}, &position_[s]});
    io::write_safetensors(path, ts, {{config_metadata_key, config_fields_text(cfg_)}});
  }

  /// Read a state written by save() into `slot`. Every tensor is checked first; on an error the
  /// slot is left as it was.
  void load(int slot, const std::string& path) {
    const std::size_t s = checked(slot);
    const io::safetensors_file f = io::safetensors_file::open(path);
    const std::vector<slot_tensor> wants = slot_tensors();
    auto check = [&](const std::string& name, dtype type, const std::vector<std::int64_t>& shape) {
      const io::tensor_info* t = f.find(name);
      if (!t)
        throw error(path + ": state has no tensor '" + name + "' (not a state of this model)");
      if (t->type != type || t->shape != shape) {
        io::tensor_info e;
        e.shape = shape;
        throw error(path + ": state tensor '" + name + "' is " +
                    io::safetensors_dtype_name(t->type) + " " + t->shape_string() + ", expected " +
                    io::safetensors_dtype_name(type) + " " + e.shape_string() + " for this model");
      }
    };
    for (const slot_tensor& w : wants)
      check(w.name, dtype::f32, w.shape);
    check("position", dtype::i64, {1});
    if (f.tensors().size() != wants.size() + 1)
      throw error(path + ": state has " + std::to_string(f.tensors().size()) +
                  " tensors, expected " + std::to_string(wants.size() + 1) + " for this model");
    check_saved_config(f, path); // after the shapes, which name the first tensor that differs
    const std::int64_t pos = f.read<std::int64_t>("position")[0];
    if (pos < 0) throw error(path + ": state position " + std::to_string(pos) + " is negative");
    if (cfg_.is_plus() && cfg_.window_left() < 0 && pos > ring_size())
      throw error(path + ": state position " + std::to_string(pos) +
                  " exceeds the attention capacity " + std::to_string(ring_size()));
    for (const slot_tensor& w : wants) {
      const io::tensor_info& t = f.at(w.name);
      const std::size_t n = std::size_t(t.numel());
      const std::size_t bad = first_non_finite(t.type, t.bytes, n);
      if (bad < n)
        throw error(path + ": state tensor '" + w.name + "' holds a non-finite value (" +
                    non_finite_kind(t.type, t.bytes, bad) + ") at element " + std::to_string(bad));
    }
    std::vector<std::vector<float>> host(wants.size()); // every tensor read before the slot changes
    for (std::size_t i = 0; i < wants.size(); ++i) {
      host[i].resize(std::size_t(elems(wants[i])));
      f.convert_into(f.at(wants[i].name), host[i].data());
    }
    for (std::size_t i = 0; i < wants.size(); ++i)
      state_pool::check(copy_to_backend(be_, slot_data(wants[i], s), host[i].data(),
                                        host[i].size() * sizeof(float)),
                        "load");
    state_pool::check(synchronize(be_), "load");
    position_[s] = pos;
  }

private:
  /// The configuration a state file was saved with must be this pool's.
  void check_saved_config(const io::safetensors_file& f, const std::string& path) const {
    const auto it = f.metadata().find(config_metadata_key);
    if (it == f.metadata().end())
      throw error(path + ": state has no model configuration (metadata '" +
                  std::string(config_metadata_key) +
                  "'): not a state saved by this version of rodimus");
    const std::string diff = first_config_difference(it->second, config_fields_text(cfg_));
    if (!diff.empty())
      throw error(path + ": state was saved by another model (its configuration differs: " +
                  io::detail::brief_text(diff) + ", saved vs this model)");
  }

  // Pools of 2 MiB or more are on huge pages on the host backends: a decode step streams every
  // slot's GLA state in and out (bench/results/README.md).
  using state_vector = backend_buffer<Backend>;
  struct state_pool_sizes {
    const model_config& c;
    index_t conv() const { return c.d_inner() * c.d_conv; }
    index_t gla() const { return c.mem_size * c.d_inner(); }
    index_t ring_k() const {
      return c.is_plus() ? c.attn_ring_size() * c.heads_k() * c.head_dim() : 0;
    }
    index_t ring_v() const {
      return c.is_plus() ? c.attn_ring_size() * c.heads_v() * c.head_dim() : 0;
    }
  };
  struct layer_store {
    state_vector conv, gla, ring_k, ring_v;
  };
  /// One tensor of a slot's saved state: layers.{layer}.{conv|gla|ring_k|ring_v}.
  struct slot_tensor {
    std::string name;
    std::vector<std::int64_t> shape;
    std::size_t layer;
    state_vector layer_store::*store;
  };

  /// The tensors save() writes and load() expects, in file order (position excluded).
  std::vector<slot_tensor> slot_tensors() const {
    const index_t E = cfg_.d_inner(), W = cfg_.d_conv, N = cfg_.mem_size;
    std::vector<slot_tensor> out;
    for (std::size_t l = 0; l < layers_.size(); ++l) {
      const std::string p = "layers." + std::to_string(l) + ".";
      out.push_back({p + "conv", {E, W}, l, &layer_store::conv});
      out.push_back({p + "gla", {1, N, E}, l, &layer_store::gla});
      if (cfg_.is_plus()) {
        const index_t Wr = ring_size(), dh = cfg_.head_dim();
        out.push_back({p + "ring_k", {Wr, cfg_.heads_k(), dh}, l, &layer_store::ring_k});
        out.push_back({p + "ring_v", {Wr, cfg_.heads_v(), dh}, l, &layer_store::ring_v});
      }
    }
    return out;
  }
  /// Slot s's part of the pool a slot_tensor names.
  float* slot_data(const slot_tensor& t, std::size_t s) const {
    return (layers_[t.layer].*t.store).template as<float>() + s * std::size_t(elems(t));
  }
  static index_t elems(const slot_tensor& t) {
    index_t n = 1;
    for (const auto d : t.shape)
      n *= d;
    return n;
  }

  index_t conv_elems() const { return state_pool_sizes{cfg_}.conv(); }
  index_t gla_elems() const { return state_pool_sizes{cfg_}.gla(); }
  index_t ring_k_elems() const { return state_pool_sizes{cfg_}.ring_k(); }
  index_t ring_v_elems() const { return state_pool_sizes{cfg_}.ring_v(); }

  std::size_t checked(int slot) const {
    if (slot < 0 || slot >= capacity_)
      throw error("state_pool: slot " + std::to_string(slot) + " is out of range [0, " +
                  std::to_string(capacity_) + ")");
    return std::size_t(slot);
  }
  void zero(state_vector& v, std::size_t slot, index_t elems) {
    const std::size_t bytes = std::size_t(elems) * sizeof(float);
    check(fill_zero(be_, v.data() + slot * bytes, bytes), "reset");
  }
  static void check(status s, const char* what) {
    if (!s.ok()) throw error(std::string("state_pool: ") + what + ": " + to_string(s));
  }

  model_config cfg_;
  int capacity_ = 0;
  Backend be_;
  std::vector<layer_store> layers_;
  std::vector<std::int64_t> position_;
  std::vector<bool> used_;
};

} // namespace rodimus
