// C entry points of the CPU-emulator build (loaded with ctypes by xseq/ops/_cuda_emu.py): the kernels'
// host functions with C linkage, plus the emulator's knobs.
#include <cuda_runtime.h>

#include "../mlstm_kernels.h"
#include "../slstm_kernels.h"

extern "C" {

int xseq_emu_slstm_forward(int dt, const void* gx, const void* R, float* c, float* n, float* m, float* h, void* hout,
                           float* gates, float* cs, float* ns, float* hprev, int B, int T, int H, int Dh,
                           int exp_forget, int keep) {
  return (int)xseq::slstm_forward((xseq::DType)dt, gx, R, c, n, m, h, hout, gates, cs, ns, hprev, B, T, H, Dh,
                                  exp_forget != 0, keep != 0, nullptr);
}

int xseq_emu_slstm_backward(const float* RT, const float* dh_out, float* dc, float* dn, float* dh,
                            const float* gates, const float* cs, const float* ns, float* dpre, float* dlogf0, int B,
                            int T, int H, int Dh, float clip) {
  return (int)xseq::slstm_backward(RT, dh_out, dc, dn, dh, gates, cs, ns, dpre, dlogf0, B, T, H, Dh, clip, nullptr);
}

int xseq_emu_mlstm_step_forward(int dt, const void* q, const void* k, const void* v, const void* igate,
                                const void* fgate, const float* C, const float* n, const float* m, float* C_out,
                                float* n_out, float* m_out, void* h, int B, int H, int Dqk, int Dv) {
  return (int)xseq::mlstm_step_forward((xseq::MDType)dt, q, k, v, igate, fgate, C, n, m, C_out, n_out, m_out, h, B,
                                       H, Dqk, Dv, nullptr);
}

int xseq_emu_mlstm_chunk_forward(int dt, const void* q, const void* k, const void* v, const void* igate,
                                 const void* fgate, float* C, const float* n, const float* m, float* n_out,
                                 float* m_out, float* Cin, float* nin, float* min, void* h, float* mrow, float* den,
                                 int B, int H, int T, int Dqk, int Dv, int simt) {
  const xseq::MLSTMChunkFwd a{q, k, v, igate, fgate, C, n, m, n_out, m_out, Cin, nin, min, h, mrow, den, simt != 0};
  return (int)xseq::mlstm_chunk_forward((xseq::MDType)dt, a, B, H, T, Dqk, Dv, nullptr);
}

int xseq_emu_mlstm_chunk_states(int dt, const void* k, const void* v, const void* igate, const void* fgate,
                                float* C, const float* n, const float* m, float* n_out, float* m_out, float* Cin,
                                float* nin, float* min, int B, int H, int T, int Dqk, int Dv) {
  const xseq::MLSTMChunkStates a{k, v, igate, fgate, C, n, m, n_out, m_out, Cin, nin, min};
  return (int)xseq::mlstm_chunk_states((xseq::MDType)dt, a, B, H, T, Dqk, Dv, nullptr);
}

int xseq_emu_mlstm_chunk_backward(int dt, const void* q, const void* k, const void* v, const void* igate,
                                  const void* fgate, const float* dh, float* ddot, const float* mrow,
                                  const float* den, const float* Cin, const float* nin, const float* min,
                                  const float* m_last, float* dC, float* dn, float* dCs, float* dns, float* dq,
                                  float* dk, float* dv, void* CinB, void* dCsB, int B, int H, int T, int Dqk,
                                  int Dv, int simt) {
  const xseq::MLSTMChunkBwd a{q, k, v, igate, fgate, dh, ddot, mrow, den, Cin, nin, min, m_last, dC, dn, dCs, dns,
                              dq, dk, dv, CinB, dCsB, simt != 0};
  return (int)xseq::mlstm_chunk_backward((xseq::MDType)dt, a, B, H, T, Dqk, Dv, nullptr);
}

// order: 0 forward, 1 reverse, 2 shuffled with `seed`; smem_optin: the device's opt-in shared memory limit;
// cc_major: its compute capability (9: the sLSTM's cluster kernels run, below: the one-block-per-head ones)
void xseq_emu_configure(int order, unsigned seed, int smem_optin, int cc_major) {
  xseq_emu::Emu& e = xseq_emu::emu();
  e.order = (xseq_emu::Order)order;
  e.seed = seed;
  e.smem_optin = smem_optin;
  e.cc_major = cc_major;
}

void xseq_emu_slstm_split_barrier(int on) { xseq::slstm_split_cluster_barrier(on != 0); }

void xseq_emu_mlstm_two_level_states(int on) { xseq::mlstm_two_level_states(on != 0); }

const char* xseq_emu_error_string(int err) { return cudaGetErrorString((cudaError_t)err); }

long long xseq_emu_launches() { return xseq_emu::emu().launches; }

long long xseq_emu_cluster_launches() { return xseq_emu::emu().cluster_launches; }
}
