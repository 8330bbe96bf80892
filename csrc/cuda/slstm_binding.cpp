// Torch binding of the fused sLSTM kernels (slstm_kernels.cu): tensor checks, allocation and the current
// CUDA stream. The autograd wiring lives in xseq/ops/slstm/cuda.py.
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/extension.h>

#include "slstm_kernels.h"

namespace {

void check(const torch::Tensor& x, const char* name, torch::ScalarType dtype) {
  TORCH_CHECK(x.is_cuda(), name, " must be a CUDA tensor");
  TORCH_CHECK(x.is_contiguous(), name, " must be contiguous");
  TORCH_CHECK(x.scalar_type() == dtype, name, " must be ", dtype, "; got ", x.scalar_type());
}

void ok(cudaError_t err, const char* what) {
  TORCH_CHECK(err == cudaSuccess, "xseq sLSTM CUDA ", what, ": ", cudaGetErrorString(err));
}

// gx (B, T, 4, H, Dh), R (4, H, Dh, Dh) float32 or bfloat16; state (c, n, m, h) each (B, H, Dh) float32,
// updated in place to the final state. Returns hout and, with keep, gates, cs, ns, hprev (else empty).
std::vector<torch::Tensor> forward(torch::Tensor gx, torch::Tensor R, torch::Tensor c, torch::Tensor n,
                                   torch::Tensor m, torch::Tensor h, bool exp_forget, bool keep) {
  const auto dt = gx.scalar_type();
  TORCH_CHECK(dt == torch::kFloat32 || dt == torch::kBFloat16, "gx must be float32 or bfloat16; got ", dt);
  check(gx, "gx", dt);
  check(R, "R", dt);
  for (auto* s : {&c, &n, &m, &h}) check(*s, "state", torch::kFloat32);
  TORCH_CHECK(gx.dim() == 5 && gx.size(2) == 4, "gx must be (B, T, 4, H, Dh)");
  const int64_t B = gx.size(0), T = gx.size(1), H = gx.size(3), Dh = gx.size(4);
  TORCH_CHECK(Dh <= xseq::kSLSTMMaxHeadSize, "head size must be at most ", xseq::kSLSTMMaxHeadSize, "; got ", Dh);
  const c10::cuda::CUDAGuard guard(gx.device());
  auto f32 = gx.options().dtype(torch::kFloat32);
  auto hout = torch::empty({B, T, H, Dh}, gx.options());
  torch::Tensor gates, cs, ns, hprev;
  if (keep) {
    gates = torch::empty({T, 5, B, H, Dh}, f32);
    cs = torch::empty({T + 1, B, H, Dh}, f32);
    ns = torch::empty({T + 1, B, H, Dh}, f32);
    hprev = torch::empty({T, B, H, Dh}, f32);
  } else {
    gates = cs = ns = hprev = torch::empty({0}, f32);
  }
  xseq::SLSTMForwardParams p{};
  p.dt = dt == torch::kFloat32 ? xseq::DType::f32 : xseq::DType::bf16;
  p.B = (int)B;
  p.T = (int)T;
  p.H = (int)H;
  p.Dh = (int)Dh;
  p.gx = gx.data_ptr();
  p.R = R.data_ptr();
  p.c = c.data_ptr<float>();
  p.n = n.data_ptr<float>();
  p.m = m.data_ptr<float>();
  p.h = h.data_ptr<float>();
  p.hout = hout.data_ptr();
  p.gates = keep ? gates.data_ptr<float>() : nullptr;
  p.cs = keep ? cs.data_ptr<float>() : nullptr;
  p.ns = keep ? ns.data_ptr<float>() : nullptr;
  p.hprev = keep ? hprev.data_ptr<float>() : nullptr;
  p.exp_forget = exp_forget;
  p.keep = keep;
  ok(xseq::slstm_forward(p, c10::cuda::getCurrentCUDAStream().stream()), "forward");
  return {hout, gates, cs, ns, hprev};
}

// RT (4, H, Dh, Dh) float32 = R with its last two axes swapped; dh_out (B, T, H, Dh) float32; dc, dn, dh
// (B, H, Dh) float32, updated in place to the initial state's gradients; clip: the recurrent gradient's bound
// (inf: none). Returns dpre (B, T, 4, H, Dh) and dlogf0 (B, H, Dh).
std::vector<torch::Tensor> backward(torch::Tensor RT, torch::Tensor dh_out, torch::Tensor dc, torch::Tensor dn,
                                    torch::Tensor dh, torch::Tensor gates, torch::Tensor cs, torch::Tensor ns,
                                    double clip) {
  check(RT, "RT", torch::kFloat32);
  check(dh_out, "dh_out", torch::kFloat32);
  for (auto* s : {&dc, &dn, &dh, &gates, &cs, &ns}) check(*s, "saved tensor", torch::kFloat32);
  const int64_t B = dh_out.size(0), T = dh_out.size(1), H = dh_out.size(2), Dh = dh_out.size(3);
  const c10::cuda::CUDAGuard guard(dh_out.device());
  auto dpre = torch::empty({B, T, 4, H, Dh}, dh_out.options());
  auto dlogf0 = torch::empty({B, H, Dh}, dh_out.options());
  xseq::SLSTMBackwardParams p{};
  p.B = (int)B;
  p.T = (int)T;
  p.H = (int)H;
  p.Dh = (int)Dh;
  p.RT = RT.data_ptr<float>();
  p.dh_out = dh_out.data_ptr<float>();
  p.dc = dc.data_ptr<float>();
  p.dn = dn.data_ptr<float>();
  p.dh = dh.data_ptr<float>();
  p.gates = gates.data_ptr<float>();
  p.cs = cs.data_ptr<float>();
  p.ns = ns.data_ptr<float>();
  p.dpre = dpre.data_ptr<float>();
  p.dlogf0 = dlogf0.data_ptr<float>();
  p.clip = (float)clip;
  ok(xseq::slstm_backward(p, c10::cuda::getCurrentCUDAStream().stream()), "backward");
  return {dpre, dlogf0};
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, mod) {
  mod.def("forward", &forward, "fused sLSTM forward over a sequence");
  mod.def("use_clusters", &xseq::slstm_use_clusters,
          "whether compute capability 9.0+ devices run the thread-block cluster kernels (default true)");
  mod.def("split_barrier", &xseq::slstm_split_cluster_barrier,
          "whether the cluster kernels split each step's cluster barrier into arrive and wait (default false)");
  mod.def("backward", &backward, "fused sLSTM backward through time");
}
