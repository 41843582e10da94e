// Every primitive of the CUDA backend (cuda<Sm>), its memory, library handles and step graphs:
// include this, or the one header you call.
#pragma once

#include "rodimus/backend/cuda/argmax_rows.cuh"
#include "rodimus/backend/cuda/causal_conv.cuh"
#include "rodimus/backend/cuda/channel_gate.cuh"
#include "rodimus/backend/cuda/context.cuh"
#include "rodimus/backend/cuda/cuda.cuh"
#include "rodimus/backend/cuda/ddts.cuh"
#include "rodimus/backend/cuda/embedding.cuh"
#include "rodimus/backend/cuda/gated_rmsnorm.cuh"
#include "rodimus/backend/cuda/gather_rows.cuh"
#include "rodimus/backend/cuda/gla.cuh"
#include "rodimus/backend/cuda/graph.cuh"
#include "rodimus/backend/cuda/linear.cuh"
#include "rodimus/backend/cuda/memory.cuh"
#include "rodimus/backend/cuda/mixer_decode.cuh"
#include "rodimus/backend/cuda/rmsnorm.cuh"
#include "rodimus/backend/cuda/rotary.cuh"
#include "rodimus/backend/cuda/scale_add.cuh"
#include "rodimus/backend/cuda/swiglu.cuh"
#include "rodimus/backend/cuda/swska.cuh"
