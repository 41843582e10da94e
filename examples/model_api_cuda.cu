// The model on the GPU (the README shows this file): the same runner as examples/model_api.cpp on
// cuda<90>, then the engine form of a decode step (ids and logits in device memory, the step only
// queued on the stream). Prints "skipped" and exits 0 where no CUDA device is present.
// Usage: example_model_api_cuda [MODEL_DIR]   (default: the shipped tiny-coder)
#include <cuda_runtime.h>

#include <rodimus/rodimus.cuh>

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
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::puts("skipped: no CUDA device");
    return 0;
  }
  const std::string dir = argc > 1 ? argv[1] : RODIMUS_EXAMPLE_MODEL_DIR;
  cudaStream_t stream = nullptr;
  if (cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking) != cudaSuccess) return 1;
  {
    rodimus::cuda_context ctx(stream); // the cuBLAS handle and workspace of this stream
    const auto weights = rodimus::model_weights::load(dir);
    rodimus::model_runner<rodimus::cuda<90>> model(weights, {stream, &ctx});
    auto states = model.make_pool(/*capacity=*/2); // in device memory
    const int slot = states.acquire();
    const std::vector<std::int64_t> prompt = {1, 2, 3, 4, 5};
    std::vector<float> logits =
        model.prefill(states, {slot}, prompt, {0, std::int64_t(prompt.size())},
                      rodimus::logits_for::last_position);
    std::vector<std::int64_t> generated;
    for (int i = 0; i < 8; ++i) {
      generated.push_back(argmax(logits));
      logits = model.decode(states, {slot}, {generated.back()});
    }
    // The engine form: ids and logits live on the device; nothing waits until the copy back.
    const std::size_t V = std::size_t(weights.config().vocab_size);
    rodimus::backend_buffer<rodimus::cuda<90>> d_ids({stream, &ctx}, sizeof(std::int64_t), "ids");
    rodimus::backend_buffer<rodimus::cuda<90>> d_logits({stream, &ctx}, V * sizeof(float),
                                                        "logits");
    const std::int64_t next = argmax(logits);
    (void)rodimus::copy_to_backend(model.backend(), d_ids.data(), &next, sizeof next);
    model.decode_async(states, {slot}, d_ids.as<std::int64_t>(), d_logits.as<float>());
    std::vector<float> host(V);
    if (!rodimus::copy_to_host(model.backend(), host.data(), d_logits.data(), V * sizeof(float)))
      return 1;
    generated.push_back(next);
    generated.push_back(argmax(host));
    std::printf("generated on the GPU:");
    for (std::int64_t t : generated)
      std::printf(" %lld", static_cast<long long>(t));
    std::printf("\nstate bytes per sequence: %zu (device memory)\n", states.bytes_per_sequence());
  }
  cudaStreamDestroy(stream);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "error: %s\n", e.what());
  return 1;
}
