// The model API in a few lines (the README shows this file): load a checkpoint, prefill a prompt in
// one slot of a state pool, decode greedily, save the state and continue from the saved copy.
// Usage: example_model_api [MODEL_DIR]   (default: the shipped tiny-coder)
#include <rodimus/backend/cpu/all.hpp>
#include <rodimus/rodimus.hpp>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#ifndef RODIMUS_EXAMPLE_MODEL_DIR
#define RODIMUS_EXAMPLE_MODEL_DIR "examples/models/tiny-coder"
#endif

static std::int64_t argmax(const std::vector<float>& row) {
  return std::int64_t(std::max_element(row.begin(), row.end()) - row.begin());
}

int main(int argc, char** argv) try {
  const std::string dir = argc > 1 ? argv[1] : RODIMUS_EXAMPLE_MODEL_DIR;
  const auto weights = rodimus::model_weights::load(dir); // config.json + model.safetensors
  rodimus::thread_pool pool;
  rodimus::model_runner<rodimus::cpu<>> model(weights, rodimus::cpu<>{&pool});

  rodimus::state_pool states = model.make_pool(/*capacity=*/2);
  const int slot = states.acquire();
  const std::vector<std::int64_t> prompt = {1, 2, 3, 4, 5};
  std::vector<float> logits = model.prefill(
      states, {slot}, prompt, {0, std::int64_t(prompt.size())}, rodimus::logits_for::last_position);
  std::int64_t next = argmax(logits);
  states.save(slot, "/tmp/rodimus_example.state.safetensors"); // a prefix computed once

  std::vector<std::int64_t> a, b;
  for (int i = 0; i < 8; ++i) { // greedy decode in the original slot
    a.push_back(next);
    next = argmax(model.decode(states, {slot}, {next}));
  }
  const int copy = states.acquire(); // the same continuation from the saved state
  states.load(copy, "/tmp/rodimus_example.state.safetensors");
  next = a.front();
  for (int i = 0; i < 8; ++i) {
    b.push_back(next);
    next = argmax(model.decode(states, {copy}, {next}));
  }
  std::printf("greedy ids:");
  for (auto id : a)
    std::printf(" %lld", static_cast<long long>(id));
  std::printf("\nstate bytes per sequence: %zu; restored state %s\n", states.bytes_per_sequence(),
              a == b ? "continues identically" : "DIFFERS");
  return a == b ? 0 : 1;
} catch (const rodimus::error& e) {
  std::fprintf(stderr, "example_model_api: %s\n", e.what());
  return 1;
}
