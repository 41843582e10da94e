// Umbrella header of the CUDA library: everything of rodimus.hpp plus the CUDA backend
// (backend tag rodimus::cuda<Sm>, RODIMUS_CUDA_TRY, and the CUDA kernels of every primitive).
#pragma once

#include "rodimus/rodimus.hpp"

#include "rodimus/backend/cuda/cuda.cuh"
#include "rodimus/backend/cuda/gla.cuh" // gla_scan, gla_chunked and gla_decode
