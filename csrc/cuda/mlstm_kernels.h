// Fused mLSTM kernels: the plain C++ interface between the kernel-only translation unit (mlstm_kernels.cu,
// no torch headers) and the torch binding. Math: xseq/ops/mlstm_ref.py (mlstm_step, eqs 9-11, 46-48).
#pragma once
#include <cuda_runtime.h>

namespace xseq {

enum class MDType : int { f32 = 0, bf16 = 1 };

// One step for generation and streaming (no autograd).
//   q, k (B, H, Dqk); v (B, H, Dv); igate, fgate (B, H): contiguous, of type dt; k is not yet scaled
//   (the kernel scales it by 1/sqrt(Dqk)). C (B, H, Dqk, Dv), n (B, H, Dqk), m (B, H) float32: the state,
//   updated in place. h (B, H, Dv) of type dt.
cudaError_t mlstm_step_forward(MDType dt, const void* q, const void* k, const void* v, const void* igate,
                               const void* fgate, float* C, float* n, float* m, void* h, int B, int H, int Dqk,
                               int Dv, cudaStream_t stream);

}  // namespace xseq
