"""The CUDA extension loader's fallback (runs anywhere: the build itself is a gpu-machine matter)."""
import warnings

import pytest
import torch

from tests.ops.backend_fns import mlstm, slstm  # noqa: E402
from xseq.ops import cuda_ext as _cuda_ext
from xseq.ops.registry import resolve


def test_failed_build_warns_once_then_falls_back(monkeypatch):
    monkeypatch.setattr(_cuda_ext, "_BROKEN", {})
    monkeypatch.setattr(_cuda_ext, "load", lambda stem: (_ for _ in ()).throw(OSError("nvcc exploded")))
    with pytest.warns(RuntimeWarning, match="fused CUDA sLSTM could not be built.*nvcc exploded"):
        assert _cuda_ext.usable("slstm", "sLSTM") is False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _cuda_ext.usable("slstm", "sLSTM") is False  # no second warning, no second build


def test_missing_sources_are_named(monkeypatch, tmp_path):
    monkeypatch.setattr(_cuda_ext, "SRC", tmp_path)
    monkeypatch.setattr(_cuda_ext, "_BUILT", {})
    with pytest.raises(ImportError, match="CUDA sources are not at"):
        _cuda_ext.load("slstm")


def test_every_kernel_unit_has_a_binding():
    stems = ["mlstm", "slstm"]
    for stem in stems:
        assert (_cuda_ext.SRC / f"{stem}_binding.cpp").is_file()
        assert (_cuda_ext.SRC / f"{stem}_kernels.h").is_file()
    built = sorted(p.name for stem in stems for p in _cuda_ext.units(stem))
    assert built == sorted(p.name for p in _cuda_ext.SRC.glob("*_kernels.cu"))  # no unit left out of a build
    assert "mlstm_chunk_kernels.cu" in built


def test_auto_picks_the_kernels_measured_faster():
    """backend="auto" on a CUDA device: the fused sLSTM and mLSTM step kernels (faster than the PyTorch paths on
    an H200), the PyTorch chunkwise mLSTM (the CUDA chunkwise kernels are not yet faster); on the CPU, the fused
    sLSTM loop. Resolving needs no device."""
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert resolve("slstm", "auto", cuda) is slstm._slstm_cuda
    assert resolve("mlstm_step", "auto", cuda) is mlstm._mlstm_step_cuda
    assert resolve("mlstm", "auto", cuda) is mlstm._mlstm_torch
    assert resolve("slstm", "auto", cpu) is slstm._slstm_numba
    assert resolve("mlstm_step", "auto", cpu) is mlstm._mlstm_step_torch
