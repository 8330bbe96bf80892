"""The CUDA kernels of csrc/cuda built for the CPU emulator (csrc/cuda/emu) and bound with ctypes, with the
same methods and tensor conventions as the torch bindings (`*_binding.cpp`) but on CPU tensors. Tests swap
these in for the compiled extensions to run the real kernel code, and the autograd wiring around it, on
machines without a GPU. Needs a C++17 compiler (g++ or $CXX); builds are cached by source hash."""
from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import torch

from xseq.ops.cuda_ext import SRC

CHUNK = 64  # kMLSTMChunk in csrc/cuda/mlstm_kernels.h
ORDERS = {"forward": 0, "reverse": 1, "shuffle": 2}
_LIB: dict = {}


def compiler() -> str | None:
    return shutil.which(os.environ.get("CXX", "g++"))


def _sources() -> list[Path]:
    return sorted(SRC.glob("*_kernels.cu"))


def library() -> ctypes.CDLL:
    """Build (once per source hash) and load the emulator library."""
    if "lib" in _LIB:
        return _LIB["lib"]
    cxx = compiler()
    if cxx is None:
        raise RuntimeError("the CUDA emulator needs a C++17 compiler: set CXX or install g++")
    files = _sources() + sorted((SRC / "emu").glob("*")) + sorted(SRC.glob("*.h")) + sorted(SRC.glob("*.cuh"))
    digest = hashlib.sha256(b"".join(f.name.encode() + f.read_bytes() for f in files)).hexdigest()[:16]
    cache = Path(os.environ.get("XSEQ_CACHE_DIR", Path(tempfile.gettempdir()) / "xseq-cache"))
    cache.mkdir(parents=True, exist_ok=True)
    out = cache / f"libxseq_cuda_emu_{digest}.so"
    if not out.is_file():
        tmp = out.with_suffix(f".{os.getpid()}.tmp")
        units = [*map(str, _sources()), str(SRC / "emu" / "selftest.cu")]
        cmd = [cxx, "-std=c++17", "-O2", "-fPIC", "-shared", "-DXSEQ_CUDA_EMU", "-Wall", "-Wno-unknown-pragmas",
               "-I", str(SRC / "emu"), "-I", str(SRC), "-x", "c++", *units, "-x", "none",
               str(SRC / "emu" / "exports.cpp"), "-o", str(tmp)]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode:
            raise RuntimeError(f"building the CUDA emulator failed:\n{' '.join(cmd)}\n{res.stderr[-4000:]}")
        os.replace(tmp, out)
    lib = ctypes.CDLL(str(out))
    lib.xseq_emu_error_string.restype = ctypes.c_char_p
    lib.xseq_emu_launches.restype = ctypes.c_longlong
    lib.xseq_emu_cluster_launches.restype = ctypes.c_longlong
    _LIB["lib"] = lib
    return lib


def configure(order: str = "forward", seed: int = 0, smem_optin: int = 232448, cc_major: int = 9) -> None:
    """Order in which blocks (thread-block clusters) run, and the fibers of a block (cluster) between barriers
    ("forward", "reverse", or "shuffle" with `seed`), the emulated device's opt-in shared memory per block in
    bytes, and its compute capability's major number (9: Hopper, whose clusters the sLSTM kernels use)."""
    library().xseq_emu_configure(ORDERS[order], ctypes.c_uint(seed), smem_optin, cc_major)


def split_barrier(on: bool) -> None:
    """Whether the sLSTM cluster kernels split their per-step cluster barrier (slstm_split_cluster_barrier)."""
    library().xseq_emu_slstm_split_barrier(int(on))


def two_level_states(on: bool) -> None:
    """Whether the mLSTM chunk states come from the two-level kernels (mlstm_two_level_states)."""
    library().xseq_emu_mlstm_two_level_states(int(on))


def launches() -> int:
    return library().xseq_emu_launches()


def cluster_launches() -> int:
    """Launches made with thread-block clusters (XSEQ_LAUNCH_CLUSTER) so far."""
    return library().xseq_emu_cluster_launches()


def selftest(which: int, out: torch.Tensor, threads: int, blocks: int = 1, smem: int = 0) -> int:
    """Runs one of csrc/cuda/emu/selftest.cu's kernels into `out` (float32); returns the CUDA error code."""
    _check(out, "out", torch.float32)
    return library().xseq_emu_selftest(which, _ptr(out), threads, blocks, smem)


def error_string(err: int) -> str:
    return library().xseq_emu_error_string(err).decode()


def _ptr(x: torch.Tensor | None):
    return ctypes.c_void_p(0 if x is None else x.data_ptr())


def _ok(err: int, what: str) -> None:
    if err:
        raise RuntimeError(f"xseq {what}: {error_string(err)}")


def _check(x: torch.Tensor, name: str, dtype: torch.dtype) -> None:
    if x.device.type != "cpu" or not x.is_contiguous() or x.dtype != dtype:
        raise ValueError(f"{name} must be a contiguous CPU {dtype} tensor for the emulator; got {x.dtype} on "
                         f"{x.device} (contiguous={x.is_contiguous()})")


def _dt(x: torch.Tensor) -> int:
    if x.dtype not in (torch.float32, torch.bfloat16):
        raise ValueError(f"expected float32 or bfloat16; got {x.dtype}")
    return 0 if x.dtype == torch.float32 else 1


class SLSTM:
    """Same calls as the torch binding of csrc/cuda/slstm_kernels.cu (slstm_binding.cpp)."""

    @staticmethod
    def forward(gx, R, c, n, m, h, exp_forget: bool, keep: bool):
        dt = _dt(gx)
        _check(gx, "gx", gx.dtype)
        _check(R, "R", gx.dtype)
        for s in (c, n, m, h):
            _check(s, "state", torch.float32)
        B, T, _, H, Dh = gx.shape
        hout = torch.empty(B, T, H, Dh, dtype=gx.dtype)
        f32 = dict(dtype=torch.float32)
        if keep:
            gates, cs, ns, hprev = (torch.empty(T, 5, B, H, Dh, **f32), torch.empty(T + 1, B, H, Dh, **f32),
                                    torch.empty(T + 1, B, H, Dh, **f32), torch.empty(T, B, H, Dh, **f32))
        else:
            gates = cs = ns = hprev = torch.empty(0, **f32)
        kept = _ptr if keep else (lambda x: _ptr(None))
        _ok(library().xseq_emu_slstm_forward(dt, _ptr(gx), _ptr(R), _ptr(c), _ptr(n), _ptr(m), _ptr(h), _ptr(hout),
                                             kept(gates), kept(cs), kept(ns), kept(hprev), B, T, H, Dh,
                                             int(exp_forget), int(keep)), "sLSTM CUDA forward (emulated)")
        return [hout, gates, cs, ns, hprev]

    @staticmethod
    def backward(RT, dh_out, dc, dn, dh, gates, cs, ns, clip: float = float("inf")):
        for x, name in ((RT, "RT"), (dh_out, "dh_out"), (dc, "dc"), (dn, "dn"), (dh, "dh"), (gates, "gates"),
                        (cs, "cs"), (ns, "ns")):
            _check(x, name, torch.float32)
        B, T, H, Dh = dh_out.shape
        dpre = torch.empty(B, T, 4, H, Dh)
        dlogf0 = torch.empty(B, H, Dh)
        _ok(library().xseq_emu_slstm_backward(_ptr(RT), _ptr(dh_out), _ptr(dc), _ptr(dn), _ptr(dh), _ptr(gates),
                                              _ptr(cs), _ptr(ns), _ptr(dpre), _ptr(dlogf0), B, T, H, Dh,
                                              ctypes.c_float(clip)),
            "sLSTM CUDA backward (emulated)")
        return [dpre, dlogf0]


class MLSTM:
    """Same calls as the torch binding of csrc/cuda/mlstm_kernels.cu (mlstm_binding.cpp)."""

    @staticmethod
    def step(q, k, v, igate, fgate, C, n, m):
        dt = _dt(v)
        for x, name in ((q, "q"), (k, "k"), (v, "v"), (igate, "igate"), (fgate, "fgate")):
            _check(x, name, v.dtype)
        for x, name in ((C, "C"), (n, "n"), (m, "m")):
            _check(x, name, torch.float32)
        B, H, Dqk = q.shape
        Dv = v.shape[-1]
        h = torch.empty(B, H, Dv, dtype=v.dtype)
        C_out, n_out, m_out = torch.empty_like(C), torch.empty_like(n), torch.empty_like(m)
        _ok(library().xseq_emu_mlstm_step_forward(dt, _ptr(q), _ptr(k), _ptr(v), _ptr(igate), _ptr(fgate), _ptr(C),
                                                  _ptr(n), _ptr(m), _ptr(C_out), _ptr(n_out), _ptr(m_out), _ptr(h),
                                                  B, H, Dqk, Dv),
            "mLSTM CUDA step (emulated)")
        return h, C_out, n_out, m_out

    @staticmethod
    def _state_buffers(seq, float32, k, v, n, m):
        """Checks the sequence inputs (of v's dtype) and the float32 ones; returns the dtype code and the
        buffers of the chunk recurrence: the final n and m, and the states entering each chunk."""
        for x, name in seq:
            _check(x, name, v.dtype)
        for x, name in float32:
            _check(x, name, torch.float32)
        B, H, T, Dqk = k.shape
        NC = -(-T // CHUNK)
        buffers = [torch.empty_like(n), torch.empty_like(m), torch.empty(B, H, NC, Dqk, v.shape[-1]),
                   torch.empty(B, H, NC, Dqk), torch.empty(B, H, NC)]
        return _dt(v), buffers

    @staticmethod
    def chunk_forward(q, k, v, igate, fgate, C, n, m, simt: bool = False):
        """k unscaled; C is overwritten with the final C; returns h, the final n and m, and what the backward
        pass needs."""
        dt, (n_out, m_out, Cin, nin, m_in) = MLSTM._state_buffers(
            ((q, "q"), (k, "k"), (v, "v"), (igate, "igate"), (fgate, "fgate")), ((C, "C"), (n, "n"), (m, "m")),
            k, v, n, m)
        B, H, T, Dqk = q.shape
        Dv = v.shape[-1]
        h = torch.empty(B, H, T, Dv, dtype=v.dtype)
        mrow, den = torch.empty(B, H, T), torch.empty(B, H, T)
        _ok(library().xseq_emu_mlstm_chunk_forward(dt, *map(_ptr, (q, k, v, igate, fgate, C, n, m, n_out, m_out, Cin,
                                                                   nin, m_in, h, mrow, den)), B, H, T, Dqk, Dv,
                                                   int(simt)),
            "mLSTM CUDA chunkwise forward (emulated)")
        return [h, n_out, m_out, Cin, nin, m_in, mrow, den]

    @staticmethod
    def chunk_states(k, v, igate, fgate, C, n, m):
        """The chunk recurrence alone: C is overwritten with the final C; returns the final n and m and the
        states entering each chunk (Cin, nin, min)."""
        dt, out = MLSTM._state_buffers(((k, "k"), (v, "v"), (igate, "igate"), (fgate, "fgate")),
                                       ((C, "C"), (n, "n"), (m, "m")), k, v, n, m)
        B, H, T, Dqk = k.shape
        _ok(library().xseq_emu_mlstm_chunk_states(dt, *map(_ptr, (k, v, igate, fgate, C, n, m, *out)), B, H, T, Dqk,
                                                  v.shape[-1]),
            "mLSTM CUDA chunk states (emulated)")
        return out

    @staticmethod
    def chunk_backward(q, k, v, igate, fgate, dh, mrow, den, Cin, nin, m_in, m_last, dC, dn, simt: bool = False):
        dt = _dt(v)
        for x, name in ((q, "q"), (k, "k"), (v, "v"), (igate, "igate"), (fgate, "fgate")):
            _check(x, name, v.dtype)
        for x, name in ((dh, "dh"), (mrow, "mrow"), (den, "den"), (Cin, "Cin"), (nin, "nin"),
                        (m_in, "min"), (m_last, "m_last"), (dC, "dC"), (dn, "dn")):
            _check(x, name, torch.float32)
        B, H, T, Dqk = q.shape
        Dv = v.shape[-1]
        dCs, dns, ddot = torch.empty_like(Cin), torch.empty_like(nin), torch.empty_like(mrow)
        dq, dk, dv = torch.empty(B, H, T, Dqk), torch.empty(B, H, T, Dqk), torch.empty(B, H, T, Dv)
        tc = dt == 1 and Dqk % 16 == 0 and Dv % 16 == 0  # mlstm_chunk_bwd_tc: bfloat16 scratch for the states
        CinB = torch.empty(Cin.shape, dtype=torch.bfloat16) if tc else None
        dCsB = torch.empty(Cin.shape, dtype=torch.bfloat16) if tc else None
        _ok(library().xseq_emu_mlstm_chunk_backward(dt, *map(_ptr, (q, k, v, igate, fgate, dh, ddot, mrow, den, Cin,
                                                                    nin, m_in, m_last, dC, dn, dCs, dns, dq, dk,
                                                                    dv, CinB, dCsB)), B, H, T, Dqk, Dv, int(simt)),
            "mLSTM CUDA chunkwise backward (emulated)")
        return [dq, dk, dv]
