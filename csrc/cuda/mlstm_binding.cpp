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

// q, k (B, H, Dqk), v (B, H, Dv), igate, fgate (B, H) float32 or bfloat16, k unscaled; C, n, m float32,
// updated in place. Returns h (B, H, Dv) in v's dtype.
torch::Tensor step(torch::Tensor q, torch::Tensor k, torch::Tensor v, torch::Tensor igate, torch::Tensor fgate,
                   torch::Tensor C, torch::Tensor n, torch::Tensor m) {
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
  const c10::cuda::CUDAGuard guard(q.device());
  auto h = torch::empty({B, H, Dv}, v.options());
  const cudaError_t err = xseq::mlstm_step_forward(
      dt == torch::kFloat32 ? xseq::MDType::f32 : xseq::MDType::bf16, q.data_ptr(), k.data_ptr(), v.data_ptr(),
      igate.data_ptr(), fgate.data_ptr(), C.data_ptr<float>(), n.data_ptr<float>(), m.data_ptr<float>(),
      h.data_ptr(), (int)B, (int)H, (int)Dqk, (int)Dv, c10::cuda::getCurrentCUDAStream().stream());
  TORCH_CHECK(err == cudaSuccess, "xseq mLSTM CUDA step: ", cudaGetErrorString(err));
  return h;
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, mod) { mod.def("step", &step, "fused mLSTM step (no autograd)"); }
