// Fused sLSTM kernels: the plain C++ interface between the kernel-only translation unit (slstm_kernels.cu,
// no torch headers, so CI compile-checks it with `nvcc -c` on a CPU-only machine) and the torch binding.
// Math and layouts follow xseq/ops/slstm_ref.py and xseq/ops/slstm_cpu.py.
#pragma once
#include <cuda_runtime.h>

namespace xseq {

enum class DType : int { f32 = 0, bf16 = 1 };

// Forward over the whole sequence.
//   gx (B, T, 4, H, Dh) and R (4, H, Dh, Dh), contiguous, of type dt; gate order i, f, z, o.
//   c, n, m, h (B, H, Dh) float32: the initial state, overwritten with the final one.
//   hout (B, T, H, Dh) of type dt.
//   With keep (for the backward pass), float32: gates (T, 5, B, H, Dh) = i, f, z, o, d log f / d ftil;
//   cs, ns (T + 1, B, H, Dh) the cell and normaliser states before each step and after the last;
//   hprev (T, B, H, Dh) the h before each step.
cudaError_t slstm_forward(DType dt, const void* gx, const void* R, float* c, float* n, float* m, float* h,
                          void* hout, float* gates, float* cs, float* ns, float* hprev, int B, int T, int H,
                          int Dh, bool exp_forget, bool keep, cudaStream_t stream);

// Backward through time.
//   RT (4, H, Dh, Dh) float32: R with its last two axes swapped, RT[g, hh, e, d] = R[g, hh, d, e].
//   dh_out (B, T, H, Dh) float32; dc, dn, dh (B, H, Dh) float32: the gradients of the final state,
//   overwritten with those of the initial state. gates, cs, ns: as kept by slstm_forward.
//   dpre (B, T, 4, H, Dh) float32: the gradients of the pre-activations (= of gx);
//   dlogf0 (B, H, Dh) float32: that of log f at t = 0 (= of the initial m, through f_1).
//   clip: the gradient reaching h_{t-1} through R is clamped to [-clip, clip] (INFINITY: no clipping).
cudaError_t slstm_backward(const float* RT, const float* dh_out, float* dc, float* dn, float* dh,
                           const float* gates, const float* cs, const float* ns, float* dpre, float* dlogf0,
                           int B, int T, int H, int Dh, float clip, cudaStream_t stream);

// Whether slstm_forward / slstm_backward use the thread-block cluster kernels where the device has compute
// capability 9.0 or above (default true); false selects the one-block-per-head kernels everywhere (for tests).
void slstm_use_clusters(bool on);

// Whether the cluster kernels split each step's cluster barrier into arrive (after the shared-memory exchange)
// and wait (after the step's global loads and stores), so the barrier's latency overlaps that traffic
// (default false until measured on a device; benchmarks/kernels_gpu.py times both).
void slstm_split_cluster_barrier(bool on);

// Largest head size the kernels take (one thread per gate row: 4 * Dh threads per block).
constexpr int kSLSTMMaxHeadSize = 256;

}  // namespace xseq
