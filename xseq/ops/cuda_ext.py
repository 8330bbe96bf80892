"""The CUDA extensions of csrc/cuda: `<stem>_binding.cpp` + `<stem>_kernels.cu`, JIT-compiled with ninja at
first use (torch.utils.cpp_extension, cached in torch's extension directory). A build that fails is
reported once with a warning and the op falls back to PyTorch."""
from __future__ import annotations

import warnings
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "csrc" / "cuda"
_BUILT: dict = {}
_BROKEN: dict[str, str] = {}


def units(stem: str) -> list[Path]:
    """The kernel-only units of an extension: `<stem>_kernels.cu` and `<stem>_<part>_kernels.cu`."""
    return [SRC / f"{stem}_kernels.cu", *sorted(SRC.glob(f"{stem}_*_kernels.cu"))]


def load(stem: str):
    """The compiled extension for `stem` ("slstm", "mlstm"); raises if it cannot be built."""
    if stem not in _BUILT:
        kernels, binding = SRC / f"{stem}_kernels.cu", SRC / f"{stem}_binding.cpp"
        if not kernels.is_file():
            raise ImportError(f"the CUDA sources are not at {SRC} (install xseq from a source checkout)")
        from torch.utils.cpp_extension import load as jit_load

        _BUILT[stem] = jit_load(name=f"xseq_{stem}_cuda", sources=[str(binding), *map(str, units(stem))],
                                extra_cflags=["-O3", "-std=c++17"], extra_cuda_cflags=["-O3", "-std=c++17"])
    return _BUILT[stem]


def usable(stem: str, what: str) -> bool:
    """Whether the extension builds here; the first failure warns (naming `what` falls back), later calls
    return False at once."""
    if stem in _BROKEN:
        return False
    try:
        load(stem)
        return True
    except (ImportError, OSError, RuntimeError) as e:
        _BROKEN[stem] = f"{type(e).__name__}: {e}"
        warnings.warn(f"xseq: the fused CUDA {what} could not be built ({_BROKEN[stem]}); using the PyTorch "
                      f"reference instead", RuntimeWarning, stacklevel=4)
        return False
