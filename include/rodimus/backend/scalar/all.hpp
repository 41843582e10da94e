// Every primitive's scalar reference (the scalar tag): include this, or the one header you call.
// Each backend/cpu/X.hpp includes the scalar X it falls back to.
#pragma once

#include "rodimus/backend/scalar/argmax_rows.hpp"
#include "rodimus/backend/scalar/causal_conv.hpp"
#include "rodimus/backend/scalar/channel_gate.hpp"
#include "rodimus/backend/scalar/ddts.hpp"
#include "rodimus/backend/scalar/embedding.hpp"
#include "rodimus/backend/scalar/gated_rmsnorm.hpp"
#include "rodimus/backend/scalar/gather_rows.hpp"
#include "rodimus/backend/scalar/gla.hpp"
#include "rodimus/backend/scalar/linear.hpp"
#include "rodimus/backend/scalar/mixer_decode.hpp"
#include "rodimus/backend/scalar/quant_linear.hpp"
#include "rodimus/backend/scalar/rmsnorm.hpp"
#include "rodimus/backend/scalar/rotary.hpp"
#include "rodimus/backend/scalar/scale_add.hpp"
#include "rodimus/backend/scalar/swiglu.hpp"
#include "rodimus/backend/scalar/swska.hpp"
