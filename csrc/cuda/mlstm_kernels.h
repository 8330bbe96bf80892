// Fused mLSTM kernels: the plain C++ interface between the kernel-only translation units (mlstm_kernels.cu,
// mlstm_chunk_kernels.cu, mlstm_chunk_bwd_kernels.cu; no torch headers) and the torch binding. Math:
// xseq/ops/mlstm/reference.py (mlstm_step, eqs 9-11, 46-48).
#pragma once
#include <cuda_runtime.h>

namespace xseq {

enum class MDType : int { f32 = 0, bf16 = 1 };

// The launchers take their arguments as plain structs, in the manner of mamba's selective_scan.h: the binding
// (mlstm_binding.cpp; the emulator's emu/exports.cpp) fills every field by name and passes the struct by const
// reference. Every tensor is contiguous (the binding checks), so there are no stride fields: the kernels index
// the layouts below directly.

// One step for generation and streaming (no autograd; mlstm_kernels.cu).
struct MLSTMStepParams {
  MDType dt;                         // of q, k, v, igate, fgate and h
  int B, H, Dqk, Dv;
  const void *q, *k, *v;             // (B, H, Dqk), (B, H, Dqk), (B, H, Dv); k not yet scaled (the kernel
                                     // scales it by 1/sqrt(Dqk))
  const void *igate, *fgate;         // (B, H)
  const float *C, *n, *m;            // (B, H, Dqk, Dv), (B, H, Dqk), (B, H): the state
  float *C_out, *n_out, *m_out;      // the new state, of the same shapes (may be C, n, m: an update in place)
  void* h;                           // (B, H, Dv)
};

cudaError_t mlstm_step_forward(const MLSTMStepParams& params, cudaStream_t stream);

// Chunkwise forward and backward over a sequence (mlstm_chunk_kernels.cu: the chunk states and the forward pass;
// mlstm_chunk_bwd_kernels.cu: the backward pass). Layouts: q, k (B, H, T, Dqk) with k not yet scaled (the
// kernels scale it by 1/sqrt(Dqk) in float32); v (B, H, T, Dv); igate, fgate (B, H, T); all contiguous, of type
// dt. Everything else is float32. NC = ceil(T / kMLSTMChunk).
constexpr int kMLSTMChunk = 64;
constexpr int kMLSTMMaxDqk = 256;

// What every chunkwise launcher takes: the dtype, the sizes and the inputs of the chunk recurrence.
struct MLSTMChunkParamsBase {
  MDType dt;
  int B, H, T, Dqk, Dv;    // Dqk <= kMLSTMMaxDqk
  const void *k, *v, *igate, *fgate;
};

// The chunk recurrence alone (what the forward pass runs before the outputs): the backward pass recomputes the
// states entering each chunk with it instead of keeping them between the passes (B H NC Dqk Dv floats).
struct MLSTMChunkStatesParams : MLSTMChunkParamsBase {
  float* C;                // (B, H, Dqk, Dv): the initial C, overwritten with the final one
  const float *n, *m;      // (B, H, Dqk), (B, H): the initial n and m (every block reads them: not overwritten)
  float *n_out, *m_out;    // (B, H, Dqk), (B, H): the final n and m
  float *Cin, *nin, *min;  // (B, H, NC, Dqk, Dv), (B, H, NC, Dqk), (B, H, NC): the state entering each chunk
};

// The forward pass: the chunk states (as mlstm_chunk_states), then the outputs.
struct MLSTMChunkForwardParams : MLSTMChunkStatesParams {
  const void* q;
  void* h;                 // (B, H, T, Dv) of type dt
  float *mrow, *den;       // (B, H, T): each row's stabiliser and (signed) denominator
  bool simt;               // bfloat16: take the float32 SIMT output kernel instead of tensor cores
};

struct MLSTMChunkBackwardParams : MLSTMChunkParamsBase {
  const void* q;
  const float* dh;         // (B, H, T, Dv)
  float* ddot;             // (B, H, T): scratch, dh_t . h_t (h recomputed in float32)
  const float *mrow, *den, *Cin, *nin, *min;  // as saved by the forward pass (Cin, nin, min: or recomputed)
  const float* m_last;     // (B, H): the final stabiliser
  float *dC, *dn;          // (B, H, Dqk, Dv), (B, H, Dqk): the final state's gradients, overwritten with the
                           // initial state's
  float *dCs, *dns;        // (B, H, NC, Dqk, Dv), (B, H, NC, Dqk): scratch, the gradient of the state after
                           // each chunk
  float *dq, *dk, *dv;     // (B, H, T, Dqk), (B, H, T, Dqk), (B, H, T, Dv); dk is w.r.t. the scaled k
  void *CinB, *dCsB;       // bfloat16 scratch of Cin's size where mlstm_chunk_bwd_tc holds, else unused
  bool simt;               // bfloat16: take the float32 SIMT gradient kernel instead of tensor cores
};

// Whether the backward pass's gradient kernel can run on tensor cores (then CinB and dCsB are needed).
inline bool mlstm_chunk_bwd_tc(MDType dt, int Dqk, int Dv) {
  return dt == MDType::bf16 && Dqk % 16 == 0 && Dv % 16 == 0;
}

cudaError_t mlstm_chunk_forward(const MLSTMChunkForwardParams& params, cudaStream_t stream);
cudaError_t mlstm_chunk_states(const MLSTMChunkStatesParams& params, cudaStream_t stream);
cudaError_t mlstm_chunk_backward(const MLSTMChunkBackwardParams& params, cudaStream_t stream);

// Whether the chunk states (mlstm_chunk_forward's and mlstm_chunk_states') come from the two-level kernels (every
// chunk's contribution in parallel, then the recurrence over chunks) instead of one walk over the chunks per
// head and 64 columns (default false until measured on a device).
void mlstm_two_level_states(bool on);

}  // namespace xseq
