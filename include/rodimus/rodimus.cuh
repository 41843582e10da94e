// Umbrella header of the CUDA library: everything of rodimus.hpp plus the CUDA backend (the tag
// rodimus::cuda<Sm>, its memory and library handles, the CUDA kernels of every primitive, and the
// step graphs the model runner replays).
#pragma once

#include "rodimus/rodimus.hpp"

#include "rodimus/backend/cuda/all.cuh"
