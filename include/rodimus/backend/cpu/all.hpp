// Every primitive of the CPU backend (cpu<Arch>): include this, or the one header you call. The
// scalar reference comes with it (backend/scalar/all.hpp): each cpu header includes the scalar one
// it falls back to, and code instantiated for both tags (the runner, the tests) needs them all.
#pragma once

#include "rodimus/backend/scalar/all.hpp"

#include "rodimus/backend/cpu/argmax_rows.hpp"
#include "rodimus/backend/cpu/causal_conv.hpp"
#include "rodimus/backend/cpu/channel_gate.hpp"
#include "rodimus/backend/cpu/cpu.hpp"
#include "rodimus/backend/cpu/ddts.hpp"
#include "rodimus/backend/cpu/embedding.hpp"
#include "rodimus/backend/cpu/gated_rmsnorm.hpp"
#include "rodimus/backend/cpu/gather_rows.hpp"
#include "rodimus/backend/cpu/gla.hpp"
#include "rodimus/backend/cpu/linear.hpp"
#include "rodimus/backend/cpu/memory.hpp"
#include "rodimus/backend/cpu/mixer_decode.hpp"
#include "rodimus/backend/cpu/quant_linear.hpp"
#include "rodimus/backend/cpu/rmsnorm.hpp"
#include "rodimus/backend/cpu/rotary.hpp"
#include "rodimus/backend/cpu/scale_add.hpp"
#include "rodimus/backend/cpu/swiglu.hpp"
#include "rodimus/backend/cpu/swska.hpp"
#include "rodimus/backend/cpu/thread_pool.hpp"
