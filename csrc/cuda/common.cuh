// Device helpers shared by the kernel-only units (no torch headers).
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

// Launch and dynamic shared memory through macros, so the same source also builds for the CPU emulator
// (csrc/cuda/emu, -DXSEQ_CUDA_EMU), which has no <<<>>> syntax and no extern __shared__ arrays.
#ifdef XSEQ_CUDA_EMU
#define XSEQ_LAUNCH(kernel, grid, block, smem, stream) ::xseq_emu::launcher(kernel, grid, block, smem, stream)
#define XSEQ_DYNAMIC_SMEM(type, name) type* name = reinterpret_cast<type*>(::xseq_emu::dynamic_smem())
#else
#define XSEQ_LAUNCH(kernel, grid, block, smem, stream) kernel<<<grid, block, smem, stream>>>
#define XSEQ_DYNAMIC_SMEM(type, name) extern __shared__ __align__(16) type name[]
#endif

namespace xseq {

// Loads and stores in the kernels' storage types, arithmetic in float32.
template <typename T> __device__ __forceinline__ float to_float(T x);
template <> __device__ __forceinline__ float to_float<float>(float x) { return x; }
template <> __device__ __forceinline__ float to_float<__nv_bfloat16>(__nv_bfloat16 x) { return __bfloat162float(x); }
template <typename T> __device__ __forceinline__ T from_float(float x);
template <> __device__ __forceinline__ float from_float<float>(float x) { return x; }
template <> __device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float x) { return __float2bfloat16(x); }

// log sigmoid(x) = min(x, 0) - log1p(exp(-|x|)), overflow-free
__device__ __forceinline__ float log_sigmoid(float x) { return fminf(x, 0.f) - log1pf(expf(-fabsf(x))); }

}  // namespace xseq
