// Fused sLSTM kernels: the plain C++ interface between the kernel-only translation unit (slstm_kernels.cu,
// no torch headers, so CI compile-checks it with `nvcc -c` on a CPU-only machine) and the torch binding.
// Math and layouts follow xseq/ops/slstm/reference.py and xseq/ops/slstm/cpu.py.
#pragma once
#include <cuda_runtime.h>

namespace xseq {

enum class DType : int { f32 = 0, bf16 = 1 };

// The launchers take their arguments as one plain struct each, in the manner of mamba's selective_scan.h: the
// binding (slstm_binding.cpp; the emulator's emu/exports.cpp) fills every field by name and passes it by const
// reference. Every tensor is contiguous (the binding checks), so there are no stride fields: the kernels index
// the layouts below directly.

// Forward over the whole sequence.
struct SLSTMForwardParams {
  DType dt;             // of gx, R and hout
  int B, T, H, Dh;      // batch, steps, heads, head size (Dh <= kSLSTMMaxHeadSize)
  const void* gx;       // (B, T, 4, H, Dh), gate order i, f, z, o
  const void* R;        // (4, H, Dh, Dh)
  float *c, *n, *m, *h;  // (B, H, Dh) each: the initial state, overwritten with the final one
  void* hout;           // (B, T, H, Dh)
  // With keep (for the backward pass; else nullptr): gates (T, 5, B, H, Dh) = i, f, z, o, d log f / d ftil;
  // cs, ns (T + 1, B, H, Dh) the cell and normaliser states before each step and after the last;
  // hprev (T, B, H, Dh) the h before each step.
  float *gates, *cs, *ns, *hprev;
  bool exp_forget;      // f = exp(ftil) instead of sigmoid(ftil)
  bool keep;            // write gates, cs, ns, hprev
};

// Backward through time; everything float32.
struct SLSTMBackwardParams {
  int B, T, H, Dh;
  const float* RT;       // (4, H, Dh, Dh): R with its last two axes swapped, RT[g, hh, e, d] = R[g, hh, d, e]
  const float* dh_out;   // (B, T, H, Dh)
  float *dc, *dn, *dh;   // (B, H, Dh) each: the final state's gradients, overwritten with the initial state's
  const float *gates, *cs, *ns;  // as kept by slstm_forward
  float* dpre;           // (B, T, 4, H, Dh): the gradients of the pre-activations (= of gx)
  float* dlogf0;         // (B, H, Dh): that of log f at t = 0 (= of the initial m, through f_1)
  float clip;            // the gradient reaching h_{t-1} through R is clamped to [-clip, clip] (INFINITY: none)
};

cudaError_t slstm_forward(const SLSTMForwardParams& params, cudaStream_t stream);
cudaError_t slstm_backward(const SLSTMBackwardParams& params, cudaStream_t stream);

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
