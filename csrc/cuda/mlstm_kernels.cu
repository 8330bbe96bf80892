// Fused mLSTM step (kernel-only translation unit; see mlstm_kernels.h). One thread block per (batch row,
// head): the state C (Dqk x Dv) is read once and the new one written once (out of place, so the caller keeps
// the old state without a copy), column j by the threads that own it, and the output C^T q is formed in the
// same pass; n and the normaliser n^T q by a block reduction.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "common.cuh"
#include "mlstm_kernels.h"

namespace xseq {
namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ float block_sum(float x, float* scratch) {
  for (int off = 16; off > 0; off >>= 1) x += __shfl_down_sync(0xffffffffu, x, off);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) scratch[warp] = x;
  __syncthreads();
  float total = 0.f;
  const int warps = (blockDim.x + 31) >> 5;
  for (int w = 0; w < warps; ++w) total += scratch[w];  // every thread reads the same sum
  return total;
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
mlstm_step_kernel(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
                  const T* __restrict__ igate, const T* __restrict__ fgate, const float* C, const float* n,
                  const float* m, float* C_out, float* n_out, float* m_out, T* __restrict__ h, int Dqk, int Dv) {
  XSEQ_DYNAMIC_SMEM(float, sm);
  float* qs = sm;           // (Dqk)
  float* ks = qs + Dqk;     // (Dqk), scaled by 1/sqrt(Dqk)
  float* scratch = ks + Dqk;  // (32)
  const int row = blockIdx.x;  // b * H + head
  const float scale = rsqrtf((float)Dqk);
  for (int d = threadIdx.x; d < Dqk; d += blockDim.x) {
    qs[d] = to_float(q[(size_t)row * Dqk + d]);
    ks[d] = to_float(k[(size_t)row * Dqk + d]) * scale;
  }
  // gates, computed alike by every thread (eqs 46-48); m = -inf in a fresh state gives f = 0
  const float it = to_float(igate[row]), ft = to_float(fgate[row]);
  const float logf = log_sigmoid(ft);
  const float m_old = m[row];
  const float m_new = fmaxf(logf + m_old, it);
  const float ig = expf(it - m_new), fg = expf(logf + m_old - m_new);
  __syncthreads();
  // n = f n + i k (eq 10) and n^T q
  float part = 0.f;
  const float* nr = n + (size_t)row * Dqk;
  float* nw = n_out + (size_t)row * Dqk;
  for (int d = threadIdx.x; d < Dqk; d += blockDim.x) {
    const float nn = fg * nr[d] + ig * ks[d];
    nw[d] = nn;
    part += nn * qs[d];
  }
  const float den = block_sum(part, scratch);
  const float norm = fmaxf(fabsf(den), expf(-m_new));  // eq 11, stabilised lower bound
  // C = f C + i k v^T (eq 9) and h = C^T q / norm, column by column
  const float* Cr = C + (size_t)row * Dqk * Dv;
  float* Cw = C_out + (size_t)row * Dqk * Dv;
  for (int j = threadIdx.x; j < Dv; j += blockDim.x) {
    const float vj = to_float(v[(size_t)row * Dv + j]);
    float num = 0.f;
    for (int d = 0; d < Dqk; ++d) {
      const float c = fg * Cr[(size_t)d * Dv + j] + ig * ks[d] * vj;
      Cw[(size_t)d * Dv + j] = c;
      num += qs[d] * c;
    }
    h[(size_t)row * Dv + j] = from_float<T>(num / norm);
  }
  __syncthreads();  // every thread has read m[row] (m_out may be m)
  if (threadIdx.x == 0) m_out[row] = m_new;
}

template <typename T>
void launch_step(const MLSTMStepParams& p, size_t bytes, cudaStream_t stream) {
  XSEQ_LAUNCH(mlstm_step_kernel<T>, dim3(p.B * p.H), dim3(kThreads), bytes, stream)(
      static_cast<const T*>(p.q), static_cast<const T*>(p.k), static_cast<const T*>(p.v),
      static_cast<const T*>(p.igate), static_cast<const T*>(p.fgate), p.C, p.n, p.m, p.C_out, p.n_out, p.m_out,
      static_cast<T*>(p.h), p.Dqk, p.Dv);
}

}  // namespace

cudaError_t mlstm_step_forward(const MLSTMStepParams& params, cudaStream_t stream) {
  if (params.B < 1 || params.H < 1 || params.Dqk < 1 || params.Dv < 1) return cudaErrorInvalidValue;
  const size_t bytes = (2 * (size_t)params.Dqk + 32) * sizeof(float);
  if (bytes > 48 * 1024) return cudaErrorInvalidValue;  // Dqk up to 6,000
  if (params.dt == MDType::f32) {
    launch_step<float>(params, bytes, stream);
  } else {
    launch_step<__nv_bfloat16>(params, bytes, stream);
  }
  return cudaGetLastError();
}

}  // namespace xseq
