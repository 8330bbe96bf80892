// Kernels that check the emulator itself (tests/ops/test_cuda_emulated.py): each one is right or wrong in a
// known way, so the tests can show that the emulator tells the two apart.
#include <cuda_runtime.h>

#include "../common.cuh"

namespace {

// out[i] = the value thread i + 1 wrote; without the barrier the read races with the write.
__global__ void neighbour_kernel(float* out, bool barrier) {
  XSEQ_DYNAMIC_SMEM(float, s);
  const int i = threadIdx.x;
  s[i] = (float)(i * i);
  if (barrier) __syncthreads();
  out[blockIdx.x * blockDim.x + i] = s[(i + 1) % blockDim.x];
}

// A warp reduction with shuffles: out[warp] = sum of the lane ids (496 for a full warp).
__global__ void warp_sum_kernel(float* out) {
  float x = (float)(threadIdx.x & 31);
  for (int off = 16; off > 0; off >>= 1) x += __shfl_xor_sync(0xffffffffu, x, off);
  if ((threadIdx.x & 31) == 0) out[threadIdx.x >> 5] = x;
}

// Lane 0 of each warp waits at __syncthreads while the others shuffle: a hang on the hardware.
__global__ void divergent_barrier_kernel(float* out) {
  float x = 1.f;
  if ((threadIdx.x & 31) == 0) {
    __syncthreads();
  } else {
    x = __shfl_down_sync(0xffffffffu, x, 1);
  }
  out[threadIdx.x] = x;
}

}  // namespace

extern "C" {

int xseq_emu_selftest(int which, float* out, int threads, int blocks, int smem) {
  switch (which) {
    case 0: XSEQ_LAUNCH(neighbour_kernel, dim3(blocks), dim3(threads), smem, nullptr)(out, true); break;
    case 1: XSEQ_LAUNCH(neighbour_kernel, dim3(blocks), dim3(threads), smem, nullptr)(out, false); break;
    case 2: XSEQ_LAUNCH(warp_sum_kernel, dim3(blocks), dim3(threads), smem, nullptr)(out); break;
    case 3: XSEQ_LAUNCH(divergent_barrier_kernel, dim3(blocks), dim3(threads), smem, nullptr)(out); break;
    default: return (int)cudaErrorInvalidValue;
  }
  return (int)cudaGetLastError();
}
}
