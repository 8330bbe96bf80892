// Device and host helpers shared by the chunkwise mLSTM units: mlstm_chunk_kernels.cu (the chunk states and the
// forward pass) and mlstm_chunk_bwd_kernels.cu (the backward pass). Kernel-only (no torch headers). Included by
// those two units alone: everything here has internal linkage (an unnamed namespace), as when they were one unit.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "common.cuh"
#include "mlstm_kernels.h"

namespace xseq {
namespace {

constexpr int kChunk = kMLSTMChunk;            // steps per chunk
constexpr int kBV = 64;                        // columns of C per block in the state kernels
constexpr int kThreads = 256;
constexpr int kRegs = kMLSTMMaxDqk * kBV / kThreads;  // C elements per thread in the state kernels

struct Dims {
  int H, T, Dqk, Dv, NC;
  float scale;  // 1/sqrt(Dqk), applied to k as it is loaded (in float32, also for bfloat16 inputs)
};

__device__ __forceinline__ int chunk_len(const Dims& d, int c) { return min(kChunk, d.T - c * kChunk); }

// The state kernels' update of their register tile (see tile_load): reg = f reg + sum_j A[j]^T Bm[j] over the
// chunk's L steps, A (L, Dqk) and Bm (L, kBV) in shared memory. Step by step: the thread's column of Bm is
// loaded once and its rows of A are broadcast across the warp. Rows past Dqk (when Dqk < kMLSTMMaxDqk) read
// other shared memory and are never stored, so there is no per-row test.
__device__ __forceinline__ void decay_and_add_outer(float (&reg)[kRegs], float f, const float* A, const float* Bm,
                                                    int L, const Dims& d) {
  const int dd0 = threadIdx.x / kBV, ee = threadIdx.x % kBV;  // element r: row dd0 + r kThreads / kBV, column ee
#pragma unroll
  for (int r = 0; r < kRegs; ++r) reg[r] *= f;
#pragma unroll 1
  for (int j = 0; j < L; ++j) {
    const float b = Bm[j * kBV + ee];
    const float* ar = A + j * d.Dqk + dd0;
#pragma unroll
    for (int r = 0; r < kRegs; ++r) reg[r] += ar[r * (kThreads / kBV)] * b;
  }
}

// Per-chunk gate quantities in shared memory, computed by one thread in sequence order:
//   logf[t] = log sigmoid(ftil_t); a[t] = sum_{s <= t} logf[s]; to_end[j] = sum_{s > j} logf[s] + itil_j.
template <typename T>
__device__ void chunk_gates(const T* ig, const T* fg, size_t base, int Lc, float* igs, float* logf, float* a,
                            float* to_end) {
  for (int t = threadIdx.x; t < Lc; t += blockDim.x) {
    igs[t] = to_float(ig[base + t]);
    logf[t] = log_sigmoid(to_float(fg[base + t]));
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    float s = 0.f;
    for (int t = 0; t < Lc; ++t) a[t] = (s += logf[t]);
    s = 0.f;
    for (int j = Lc - 1; j >= 0; --j) {
      to_end[j] = s + igs[j];
      s += logf[j];
    }
  }
  __syncthreads();
}

// Row t of the intra-chunk log weights, Dtil[t, j] = sum_{j < s <= t} logf[s] + itil_j (eqs 76-79), summed
// per segment for precision, written to row[j] for j <= t; returns their maximum.
__device__ __forceinline__ float dtil_row(int t, const float* igs, const float* logf, float* row) {
  float s = 0.f, mx = -INFINITY;
  for (int j = t; j >= 0; --j) {
    const float d = s + igs[j];
    row[j] = d;
    mx = fmaxf(mx, d);
    s += logf[j];
  }
  return mx;
}

// This thread's share of a Dqk x kBV column tile (columns e0 ...) of a (Dqk, Dv) float32 matrix, held in
// registers by the state kernels: element r is row (tid + r kThreads) / kBV, column e0 + (tid + r kThreads) % kBV.
__device__ __forceinline__ void tile_load(float (&reg)[kRegs], const float* M, int e0, const Dims& d) {
#pragma unroll
  for (int r = 0; r < kRegs; ++r) {
    const int u = threadIdx.x + r * kThreads, dd = u / kBV, e = e0 + u % kBV;
    reg[r] = (dd < d.Dqk && e < d.Dv) ? M[(size_t)dd * d.Dv + e] : 0.f;
  }
}

__device__ __forceinline__ void tile_store(const float (&reg)[kRegs], float* M, int e0, const Dims& d) {
#pragma unroll
  for (int r = 0; r < kRegs; ++r) {
    const int u = threadIdx.x + r * kThreads, dd = u / kBV, e = e0 + u % kBV;
    if (dd < d.Dqk && e < d.Dv) M[(size_t)dd * d.Dv + e] = reg[r];
  }
}

// Edge of the tensor-core (nvcuda::wmma) tiles: 16 x 16 x 16 bf16 products with float32 accumulation.
constexpr int kTile = 16;

// Opts a kernel in to more than 48 KB of dynamic shared memory where it needs that much.
inline cudaError_t smem_optin(const void* kernel, size_t bytes) {
  if (bytes <= 48 * 1024) return cudaSuccess;
  int dev = 0, limit = 0;
  cudaError_t err = cudaGetDevice(&dev);
  if (err == cudaSuccess) err = cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev);
  if (err != cudaSuccess) return err;
  if (bytes > (size_t)limit) return cudaErrorInvalidValue;
  return cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes);
}

// The state kernels' shared memory: state_fwd_kernel's and state_local_kernel's (StateSmem), and state_bwd_kernel's.
inline size_t state_smem(int Dqk) {
  return ((size_t)kChunk * Dqk + kChunk * kBV + 4 * kChunk + 4) * sizeof(float);
}

inline bool bad_dims(const MLSTMChunkParamsBase& p) {
  return p.B < 1 || p.H < 1 || p.T < 1 || p.Dqk < 1 || p.Dv < 1 || p.Dqk > kMLSTMMaxDqk;
}

inline Dims dims(const MLSTMChunkParamsBase& p) {
  return Dims{p.H, p.T, p.Dqk, p.Dv, (p.T + kChunk - 1) / kChunk, 1.f / sqrtf((float)p.Dqk)};
}

// The sequence inputs of either pass, typed.
template <typename T>
struct Seq {
  const T *q, *k, *v, *ig, *fg;
  template <class Args>
  explicit Seq(const Args& a)
      : q(static_cast<const T*>(a.q)), k(static_cast<const T*>(a.k)), v(static_cast<const T*>(a.v)),
        ig(static_cast<const T*>(a.igate)), fg(static_cast<const T*>(a.fgate)) {}
};

}  // namespace
}  // namespace xseq
