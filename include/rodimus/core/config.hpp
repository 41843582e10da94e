// Compiler and host/device macros shared by every header.
#pragma once

#if defined(__CUDACC__) || defined(__HIPCC__)
#define RODIMUS_HOST_DEVICE __host__ __device__
#define RODIMUS_DEVICE __device__
#else
#define RODIMUS_HOST_DEVICE
#define RODIMUS_DEVICE
#endif

#if defined(__CUDA_ARCH__)
#define RODIMUS_ON_DEVICE 1
#else
#define RODIMUS_ON_DEVICE 0
#endif

#define RODIMUS_INLINE inline

#define RODIMUS_VERSION_MAJOR 0
#define RODIMUS_VERSION_MINOR 1
#define RODIMUS_VERSION_PATCH 0
