// Compiler and host/device macros shared by every header.
#pragma once

#if defined(__CUDACC__) || defined(__HIPCC__)
#define RODIMUS_HOST_DEVICE __host__ __device__
#else
#define RODIMUS_HOST_DEVICE
#endif

#define RODIMUS_VERSION_MAJOR 0
#define RODIMUS_VERSION_MINOR 1
#define RODIMUS_VERSION_PATCH 0
