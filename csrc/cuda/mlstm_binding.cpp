// Torch binding of the fused mLSTM step (mlstm_kernels.cu): tensor checks and the current CUDA stream.
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/extension.h>

#include "mlstm_kernels.h"

namespace {

void check(const torch::Tensor& x, const char* name, torch::ScalarType dtype) {
  TORCH_CHECK(x.is_cuda(), name, " must be a CUDA tensor");
  TORCH_CHECK(x.is_contiguous(), name, " must be contiguous");
  TORCH_CHECK(x.scalar_type() == dtype, name, " must be ", dtype, "; got ", x.scalar_type());
}

// q, k (B, H, Dqk), v (B, H, Dv), igate, fgate (B, H) float32 or bfloat16, k unscaled; C, n, m float32, left
// unchanged. Returns h (B, H, Dv) in v's dtype and the new C, n, m.
std::vector<torch::Tensor> step(torch::Tensor q, torch::Tensor k, torch::Tensor v, torch::Tensor igate,
                                torch::Tensor fgate, torch::Tensor C, torch::Tensor n, torch::Tensor m) {
  const auto dt = v.scalar_type();
  TORCH_CHECK(dt == torch::kFloat32 || dt == torch::kBFloat16, "v must be float32 or bfloat16; got ", dt);
  check(q, "q", dt);
  check(k, "k", dt);
  check(v, "v", dt);
  check(igate, "igate", dt);
  check(fgate, "fgate", dt);
  check(C, "C", torch::kFloat32);
  check(n, "n", torch::kFloat32);
  check(m, "m", torch::kFloat32);
  const int64_t B = q.size(0), H = q.size(1), Dqk = q.size(2), Dv = v.size(2);
  TORCH_CHECK(C.dim() == 4 && C.size(0) == B && C.size(1) == H && C.size(2) == Dqk && C.size(3) == Dv,
              "C must be (B, H, Dqk, Dv)");
  TORCH_CHECK(n.numel() == B * H * Dqk && m.numel() == B * H, "n must be (B, H, Dqk) and m (B, H)");
  const c10::cuda::CUDAGuard guard(q.device());
  auto h = torch::empty({B, H, Dv}, v.options());
  auto C_out = torch::empty_like(C), n_out = torch::empty_like(n), m_out = torch::empty_like(m);
  xseq::MLSTMStepParams p{};
  p.dt = dt == torch::kFloat32 ? xseq::MDType::f32 : xseq::MDType::bf16;
  p.B = (int)B;
  p.H = (int)H;
  p.Dqk = (int)Dqk;
  p.Dv = (int)Dv;
  p.q = q.data_ptr();
  p.k = k.data_ptr();
  p.v = v.data_ptr();
  p.igate = igate.data_ptr();
  p.fgate = fgate.data_ptr();
  p.C = C.data_ptr<float>();
  p.n = n.data_ptr<float>();
  p.m = m.data_ptr<float>();
  p.C_out = C_out.data_ptr<float>();
  p.n_out = n_out.data_ptr<float>();
  p.m_out = m_out.data_ptr<float>();
  p.h = h.data_ptr();
  const cudaError_t err = xseq::mlstm_step_forward(p, c10::cuda::getCurrentCUDAStream().stream());
  TORCH_CHECK(err == cudaSuccess, "xseq mLSTM CUDA step: ", cudaGetErrorString(err));
  return {h, C_out, n_out, m_out};
}

xseq::MDType mdtype(const torch::Tensor& v) {
  const auto dt = v.scalar_type();
  TORCH_CHECK(dt == torch::kFloat32 || dt == torch::kBFloat16, "v must be float32 or bfloat16; got ", dt);
  return dt == torch::kFloat32 ? xseq::MDType::f32 : xseq::MDType::bf16;
}

float* f32(torch::Tensor& x) { return x.data_ptr<float>(); }
const float* cf32(const torch::Tensor& x) { return x.data_ptr<float>(); }

// The fields every chunkwise launcher takes: dtype, sizes (k (B, H, T, Dqk), v (B, H, T, Dv)) and the inputs of
// the chunk recurrence.
void fill_base(xseq::MLSTMChunkParamsBase& p, const torch::Tensor& k, const torch::Tensor& v,
               const torch::Tensor& igate, const torch::Tensor& fgate) {
  p.dt = mdtype(v);
  p.B = (int)k.size(0);
  p.H = (int)k.size(1);
  p.T = (int)k.size(2);
  p.Dqk = (int)k.size(3);
  p.Dv = (int)v.size(3);
  p.k = k.data_ptr();
  p.v = v.data_ptr();
  p.igate = igate.data_ptr();
  p.fgate = fgate.data_ptr();
}

// The chunk recurrence's state fields: C overwritten with the final C, n and m read only, the final n and m,
// and the states entering each chunk.
void fill_states(xseq::MLSTMChunkStatesParams& p, torch::Tensor& C, const torch::Tensor& n, const torch::Tensor& m,
                 torch::Tensor& n_out, torch::Tensor& m_out, torch::Tensor& Cin, torch::Tensor& nin,
                 torch::Tensor& m_in) {
  p.C = f32(C);
  p.n = cf32(n);
  p.m = cf32(m);
  p.n_out = f32(n_out);
  p.m_out = f32(m_out);
  p.Cin = f32(Cin);
  p.nin = f32(nin);
  p.min = f32(m_in);
}

// Chunkwise forward. q, k (B, H, T, Dqk) (k unscaled), v (B, H, T, Dv), igate, fgate (B, H, T) of one dtype;
// C (B, H, Dqk, Dv) float32, overwritten with the final C; n, m float32 (read only); simt: bfloat16 without tensor
// cores. Returns h, the final n and m, and the saved Cin, nin, min, mrow, den.
std::vector<torch::Tensor> chunk_forward(torch::Tensor q, torch::Tensor k, torch::Tensor v, torch::Tensor igate,
                                         torch::Tensor fgate, torch::Tensor C, torch::Tensor n, torch::Tensor m,
                                         bool simt) {
  mdtype(v);  // float32 or bfloat16
  for (auto* x : {&q, &k, &v, &igate, &fgate}) check(*x, "input", v.scalar_type());
  for (auto* x : {&C, &n, &m}) check(*x, "state", torch::kFloat32);
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2), Dqk = q.size(3), Dv = v.size(3);
  const int64_t NC = (T + xseq::kMLSTMChunk - 1) / xseq::kMLSTMChunk;
  const c10::cuda::CUDAGuard guard(q.device());
  auto o = q.options().dtype(torch::kFloat32);
  auto h = torch::empty({B, H, T, Dv}, v.options());
  auto n_out = torch::empty_like(n), m_out = torch::empty_like(m);
  auto Cin = torch::empty({B, H, NC, Dqk, Dv}, o), nin = torch::empty({B, H, NC, Dqk}, o);
  auto m_in = torch::empty({B, H, NC}, o), mrow = torch::empty({B, H, T}, o), den = torch::empty({B, H, T}, o);
  xseq::MLSTMChunkForwardParams p{};
  fill_base(p, k, v, igate, fgate);
  fill_states(p, C, n, m, n_out, m_out, Cin, nin, m_in);
  p.q = q.data_ptr();
  p.h = h.data_ptr();
  p.mrow = f32(mrow);
  p.den = f32(den);
  p.simt = simt;
  const cudaError_t err = xseq::mlstm_chunk_forward(p, c10::cuda::getCurrentCUDAStream().stream());
  TORCH_CHECK(err == cudaSuccess, "xseq mLSTM CUDA chunkwise forward: ", cudaGetErrorString(err));
  return {h, n_out, m_out, Cin, nin, m_in, mrow, den};
}

// The chunk recurrence alone, for the backward pass: k (B, H, T, Dqk) unscaled, v, igate, fgate as in
// chunk_forward; C overwritten with the final C; n, m read only. Returns the final n and m, and Cin, nin, min.
std::vector<torch::Tensor> chunk_states(torch::Tensor k, torch::Tensor v, torch::Tensor igate, torch::Tensor fgate,
                                        torch::Tensor C, torch::Tensor n, torch::Tensor m) {
  mdtype(v);  // float32 or bfloat16
  for (auto* x : {&k, &v, &igate, &fgate}) check(*x, "input", v.scalar_type());
  for (auto* x : {&C, &n, &m}) check(*x, "state", torch::kFloat32);
  const int64_t B = k.size(0), H = k.size(1), T = k.size(2), Dqk = k.size(3), Dv = v.size(3);
  const int64_t NC = (T + xseq::kMLSTMChunk - 1) / xseq::kMLSTMChunk;
  const c10::cuda::CUDAGuard guard(k.device());
  auto o = k.options().dtype(torch::kFloat32);
  auto n_out = torch::empty_like(n), m_out = torch::empty_like(m);
  auto Cin = torch::empty({B, H, NC, Dqk, Dv}, o), nin = torch::empty({B, H, NC, Dqk}, o);
  auto m_in = torch::empty({B, H, NC}, o);
  xseq::MLSTMChunkStatesParams p{};
  fill_base(p, k, v, igate, fgate);
  fill_states(p, C, n, m, n_out, m_out, Cin, nin, m_in);
  const cudaError_t err = xseq::mlstm_chunk_states(p, c10::cuda::getCurrentCUDAStream().stream());
  TORCH_CHECK(err == cudaSuccess, "xseq mLSTM CUDA chunk states: ", cudaGetErrorString(err));
  return {n_out, m_out, Cin, nin, m_in};
}

// Chunkwise backward: dh (B, H, T, Dv) and the saved tensors, all float32; dC, dn the
// final state's gradients, overwritten with the initial state's. Returns dq, dk (w.r.t. the scaled k), dv.
std::vector<torch::Tensor> chunk_backward(torch::Tensor q, torch::Tensor k, torch::Tensor v, torch::Tensor igate,
                                          torch::Tensor fgate, torch::Tensor dh, torch::Tensor mrow,
                                          torch::Tensor den, torch::Tensor Cin, torch::Tensor nin,
                                          torch::Tensor m_in, torch::Tensor m_last, torch::Tensor dC,
                                          torch::Tensor dn, bool simt) {
  const auto dt = mdtype(v);
  for (auto* x : {&q, &k, &v, &igate, &fgate}) check(*x, "input", v.scalar_type());
  for (auto* x : {&dh, &mrow, &den, &Cin, &nin, &m_in, &m_last, &dC, &dn}) {
    check(*x, "saved tensor", torch::kFloat32);
  }
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2), Dqk = q.size(3), Dv = v.size(3);
  const c10::cuda::CUDAGuard guard(q.device());
  auto o = q.options().dtype(torch::kFloat32);
  auto dCs = torch::empty_like(Cin), dns = torch::empty_like(nin), ddot = torch::empty_like(mrow);
  auto dq = torch::empty({B, H, T, Dqk}, o), dk = torch::empty({B, H, T, Dqk}, o), dv = torch::empty({B, H, T, Dv}, o);
  const bool tc = xseq::mlstm_chunk_bwd_tc(dt, (int)Dqk, (int)Dv);  // bfloat16 copies of the states
  auto CinB = tc ? torch::empty(Cin.sizes(), o.dtype(torch::kBFloat16)) : torch::empty({0}, o);
  auto dCsB = tc ? torch::empty(Cin.sizes(), o.dtype(torch::kBFloat16)) : torch::empty({0}, o);
  xseq::MLSTMChunkBackwardParams p{};
  fill_base(p, k, v, igate, fgate);
  p.q = q.data_ptr();
  p.dh = cf32(dh);
  p.ddot = f32(ddot);
  p.mrow = cf32(mrow);
  p.den = cf32(den);
  p.Cin = cf32(Cin);
  p.nin = cf32(nin);
  p.min = cf32(m_in);
  p.m_last = cf32(m_last);
  p.dC = f32(dC);
  p.dn = f32(dn);
  p.dCs = f32(dCs);
  p.dns = f32(dns);
  p.dq = f32(dq);
  p.dk = f32(dk);
  p.dv = f32(dv);
  p.CinB = tc ? CinB.data_ptr() : nullptr;
  p.dCsB = tc ? dCsB.data_ptr() : nullptr;
  p.simt = simt;
  const cudaError_t err = xseq::mlstm_chunk_backward(p, c10::cuda::getCurrentCUDAStream().stream());
  TORCH_CHECK(err == cudaSuccess, "xseq mLSTM CUDA chunkwise backward: ", cudaGetErrorString(err));
  return {dq, dk, dv};
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, mod) {
  mod.def("step", &step, "fused mLSTM step (no autograd)");
  mod.def("two_level_states", &xseq::mlstm_two_level_states,
          "whether the chunk states come from the two-level kernels (default false)");
  mod.def("chunk_forward", &chunk_forward, "chunkwise mLSTM forward");
  mod.def("chunk_states", &chunk_states, "chunkwise mLSTM: the states entering each chunk");
  mod.def("chunk_backward", &chunk_backward, "chunkwise mLSTM backward");
}
