// C entry points of the CPU-emulator build (loaded with ctypes by tests/ops/cuda_emu.py): the kernels'
// host functions with C linkage, plus the emulator's knobs.
#include <cuda_runtime.h>

#include "../mlstm_kernels.h"
#include "../slstm_kernels.h"

namespace {

// The chunkwise launchers' common fields, filled as mlstm_binding.cpp fills them.
void fill_base(xseq::MLSTMChunkParamsBase& p, int dt, int B, int H, int T, int Dqk, int Dv, const void* k,
               const void* v, const void* igate, const void* fgate) {
  p.dt = (xseq::MDType)dt;
  p.B = B;
  p.H = H;
  p.T = T;
  p.Dqk = Dqk;
  p.Dv = Dv;
  p.k = k;
  p.v = v;
  p.igate = igate;
  p.fgate = fgate;
}

void fill_states(xseq::MLSTMChunkStatesParams& p, float* C, const float* n, const float* m, float* n_out,
                 float* m_out, float* Cin, float* nin, float* min) {
  p.C = C;
  p.n = n;
  p.m = m;
  p.n_out = n_out;
  p.m_out = m_out;
  p.Cin = Cin;
  p.nin = nin;
  p.min = min;
}

}  // namespace

extern "C" {

// Positional C signatures (tests/ops/cuda_emu.py binds them with ctypes); each fills its launcher's params struct
// by name, as the torch bindings do.
int xseq_emu_slstm_forward(int dt, const void* gx, const void* R, float* c, float* n, float* m, float* h, void* hout,
                           float* gates, float* cs, float* ns, float* hprev, int B, int T, int H, int Dh,
                           int exp_forget, int keep) {
  xseq::SLSTMForwardParams p{};
  p.dt = (xseq::DType)dt;
  p.B = B;
  p.T = T;
  p.H = H;
  p.Dh = Dh;
  p.gx = gx;
  p.R = R;
  p.c = c;
  p.n = n;
  p.m = m;
  p.h = h;
  p.hout = hout;
  p.gates = gates;
  p.cs = cs;
  p.ns = ns;
  p.hprev = hprev;
  p.exp_forget = exp_forget != 0;
  p.keep = keep != 0;
  return (int)xseq::slstm_forward(p, nullptr);
}

int xseq_emu_slstm_backward(const float* RT, const float* dh_out, float* dc, float* dn, float* dh,
                            const float* gates, const float* cs, const float* ns, float* dpre, float* dlogf0, int B,
                            int T, int H, int Dh, float clip) {
  xseq::SLSTMBackwardParams p{};
  p.B = B;
  p.T = T;
  p.H = H;
  p.Dh = Dh;
  p.RT = RT;
  p.dh_out = dh_out;
  p.dc = dc;
  p.dn = dn;
  p.dh = dh;
  p.gates = gates;
  p.cs = cs;
  p.ns = ns;
  p.dpre = dpre;
  p.dlogf0 = dlogf0;
  p.clip = clip;
  return (int)xseq::slstm_backward(p, nullptr);
}

int xseq_emu_mlstm_step_forward(int dt, const void* q, const void* k, const void* v, const void* igate,
                                const void* fgate, const float* C, const float* n, const float* m, float* C_out,
                                float* n_out, float* m_out, void* h, int B, int H, int Dqk, int Dv) {
  xseq::MLSTMStepParams p{};
  p.dt = (xseq::MDType)dt;
  p.B = B;
  p.H = H;
  p.Dqk = Dqk;
  p.Dv = Dv;
  p.q = q;
  p.k = k;
  p.v = v;
  p.igate = igate;
  p.fgate = fgate;
  p.C = C;
  p.n = n;
  p.m = m;
  p.C_out = C_out;
  p.n_out = n_out;
  p.m_out = m_out;
  p.h = h;
  return (int)xseq::mlstm_step_forward(p, nullptr);
}

int xseq_emu_mlstm_chunk_forward(int dt, const void* q, const void* k, const void* v, const void* igate,
                                 const void* fgate, float* C, const float* n, const float* m, float* n_out,
                                 float* m_out, float* Cin, float* nin, float* min, void* h, float* mrow, float* den,
                                 int B, int H, int T, int Dqk, int Dv, int simt) {
  xseq::MLSTMChunkForwardParams p{};
  fill_base(p, dt, B, H, T, Dqk, Dv, k, v, igate, fgate);
  fill_states(p, C, n, m, n_out, m_out, Cin, nin, min);
  p.q = q;
  p.h = h;
  p.mrow = mrow;
  p.den = den;
  p.simt = simt != 0;
  return (int)xseq::mlstm_chunk_forward(p, nullptr);
}

int xseq_emu_mlstm_chunk_states(int dt, const void* k, const void* v, const void* igate, const void* fgate,
                                float* C, const float* n, const float* m, float* n_out, float* m_out, float* Cin,
                                float* nin, float* min, int B, int H, int T, int Dqk, int Dv) {
  xseq::MLSTMChunkStatesParams p{};
  fill_base(p, dt, B, H, T, Dqk, Dv, k, v, igate, fgate);
  fill_states(p, C, n, m, n_out, m_out, Cin, nin, min);
  return (int)xseq::mlstm_chunk_states(p, nullptr);
}

int xseq_emu_mlstm_chunk_backward(int dt, const void* q, const void* k, const void* v, const void* igate,
                                  const void* fgate, const float* dh, float* ddot, const float* mrow,
                                  const float* den, const float* Cin, const float* nin, const float* min,
                                  const float* m_last, float* dC, float* dn, float* dCs, float* dns, float* dq,
                                  float* dk, float* dv, void* CinB, void* dCsB, int B, int H, int T, int Dqk,
                                  int Dv, int simt) {
  xseq::MLSTMChunkBackwardParams p{};
  fill_base(p, dt, B, H, T, Dqk, Dv, k, v, igate, fgate);
  p.q = q;
  p.dh = dh;
  p.ddot = ddot;
  p.mrow = mrow;
  p.den = den;
  p.Cin = Cin;
  p.nin = nin;
  p.min = min;
  p.m_last = m_last;
  p.dC = dC;
  p.dn = dn;
  p.dCs = dCs;
  p.dns = dns;
  p.dq = dq;
  p.dk = dk;
  p.dv = dv;
  p.CinB = CinB;
  p.dCsB = dCsB;
  p.simt = simt != 0;
  return (int)xseq::mlstm_chunk_backward(p, nullptr);
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
