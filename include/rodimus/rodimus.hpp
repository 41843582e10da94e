// Umbrella header of the library: core types, every primitive with its scalar reference, the
// blocks, the model runner and the file formats. The xsimd backend is rodimus/backend/cpu/all.hpp
// (not included here: it needs the host compiler's SIMD flags, which nvcc translation units of
// rodimus.cuh do not have); rodimus.cuh adds the CUDA backend.
// The tokenizer (rodimus/io/tokenizer.hpp) needs Oniguruma: include it and link rodimus::text.
#pragma once

#include "rodimus/backend/scalar/all.hpp"
#include "rodimus/core/backend.hpp"
#include "rodimus/core/dtype.hpp"
#include "rodimus/core/error.hpp"
#include "rodimus/core/macros.hpp"
#include "rodimus/core/status.hpp"
#include "rodimus/core/tensor_view.hpp"
#include "rodimus/core/workspace.hpp"
#include "rodimus/io/checkpoint.hpp"
#include "rodimus/io/config.hpp"
#include "rodimus/io/safetensors.hpp"
#include "rodimus/model/config.hpp"
#include "rodimus/model/weights.hpp"
#include "rodimus/primitives/causal_conv.hpp"
#include "rodimus/primitives/ddts.hpp"
#include "rodimus/primitives/gated_rmsnorm.hpp"
#include "rodimus/primitives/gla.hpp"
#include "rodimus/primitives/linear.hpp"
#include "rodimus/primitives/rmsnorm.hpp"
#include "rodimus/primitives/rotary.hpp"
#include "rodimus/primitives/swiglu.hpp"
#include "rodimus/primitives/swska.hpp"
#include "rodimus/runtime/runner.hpp"
#include "rodimus/runtime/state.hpp"
