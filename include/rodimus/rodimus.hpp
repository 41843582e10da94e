// Umbrella header of the CPU library: core types, every primitive (scalar reference and the xsimd
// backend), the blocks, the model runner and the file formats. rodimus.cuh adds the CUDA backend.
#pragma once

#include "rodimus/core/backend.hpp"
#include "rodimus/core/config.hpp"
#include "rodimus/core/dtype.hpp"
#include "rodimus/core/error.hpp"
#include "rodimus/core/status.hpp"
#include "rodimus/core/tensor_view.hpp"
#include "rodimus/core/workspace.hpp"
#include "rodimus/io/safetensors.hpp"
#include "rodimus/primitives/linear.hpp"
