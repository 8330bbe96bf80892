// Device helpers shared by the kernel-only units (no torch headers).
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

// Launch and dynamic shared memory through macros, so the same source also builds for the CPU emulator
// (csrc/cuda/emu, -DXSEQ_CUDA_EMU), which has no <<<>>> syntax and no extern __shared__ arrays.
// XSEQ_LAUNCH_CLUSTER(...)(args) launches with thread-block clusters of `cluster` blocks along x (compute
// capability 9.0) and returns the launch's cudaError_t.
#ifdef XSEQ_CUDA_EMU
#define XSEQ_LAUNCH(kernel, grid, block, smem, stream) ::xseq_emu::launcher(kernel, grid, block, smem, stream)
#define XSEQ_LAUNCH_CLUSTER(kernel, grid, block, smem, stream, cluster) \
  ::xseq_emu::cluster_launcher(kernel, grid, block, smem, stream, cluster)
#define XSEQ_DYNAMIC_SMEM(type, name) type* name = reinterpret_cast<type*>(::xseq_emu::dynamic_smem())
#else
#define XSEQ_LAUNCH(kernel, grid, block, smem, stream) kernel<<<grid, block, smem, stream>>>
#define XSEQ_LAUNCH_CLUSTER(kernel, grid, block, smem, stream, cluster) \
  ::xseq::cluster_launcher(kernel, grid, block, smem, stream, cluster)
#define XSEQ_DYNAMIC_SMEM(type, name) extern __shared__ __align__(16) type name[]

namespace xseq {
template <class... P>
struct ClusterLauncher {
  void (*kernel)(P...);
  dim3 grid, block;
  size_t smem;
  cudaStream_t stream;
  unsigned cluster;
  template <class... A>
  cudaError_t operator()(A&&... a) const {
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = grid;
    cfg.blockDim = block;
    cfg.dynamicSmemBytes = smem;
    cfg.stream = stream;
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeClusterDimension;
    attr[0].val.clusterDim.x = cluster;
    attr[0].val.clusterDim.y = 1;
    attr[0].val.clusterDim.z = 1;
    cfg.attrs = attr;
    cfg.numAttrs = 1;
    return cudaLaunchKernelEx(&cfg, kernel, static_cast<P>(a)...);
  }
};
template <class... P>
ClusterLauncher<P...> cluster_launcher(void (*kernel)(P...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                                       unsigned cluster) {
  return ClusterLauncher<P...>{kernel, grid, block, smem, stream, cluster};
}
}  // namespace xseq
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
