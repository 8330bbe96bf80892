"""The registered backend functions of each op, by the names the kernel tests use."""
from types import SimpleNamespace

from xseq.ops.mlstm import cuda as _mlstm_cuda_mod
from xseq.ops.mlstm import torch_backend as _mlstm_torch_mod
from xseq.ops.slstm import cpu as _slstm_cpu_mod
from xseq.ops.slstm import cuda as _slstm_cuda_mod
from xseq.ops.slstm import torch_backend as _slstm_torch_mod

slstm = SimpleNamespace(_slstm_torch=_slstm_torch_mod._slstm_torch, _slstm_numba=_slstm_cpu_mod._slstm_numba,
                        _slstm_cuda=_slstm_cuda_mod._slstm_cuda)
mlstm = SimpleNamespace(_mlstm_torch=_mlstm_torch_mod._mlstm_torch,
                        _mlstm_step_torch=_mlstm_torch_mod._mlstm_step_torch,
                        _mlstm_cuda=_mlstm_cuda_mod._mlstm_cuda, _mlstm_step_cuda=_mlstm_cuda_mod._mlstm_step_cuda)
