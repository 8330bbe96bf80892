"""Reading a TiRex checkpoint (tirex-ts's Lightning file: `hyper_parameters` and `state_dict`) into TiRexNet,
with weights-only loading, and writing one back in that layout.

The layout's traps (facts read from tirex-ts): tensor names carry a `block_stack.` prefix; the sLSTM's four
headwise input projections are stored as (fgate, igate, zgate, ogate) and concatenated in that order, but the
cell reads the result as (i, f, z, o), so the weight named `fgate` drives the input gate; the recurrent kernel
is (H, Dh, 4 Dh) with the gates along its last axis; the gate bias is stored head-major (H, 4, Dh); the
per-head norm stores its weight as w with the scale 1 + w."""
from __future__ import annotations

from pathlib import Path

import torch

from ...common.checkpoints import safe_load
from .config import TiRexConfig, config_from_hyper_parameters
from .model import TiRexNet

PREFIX = "block_stack."
# stored projection name -> the gate it drives (index in xseq's (i, f, z, o) order)
_GATE_OF = {"fgate": 0, "igate": 1, "zgate": 2, "ogate": 3}


def _expected_names(cfg: TiRexConfig) -> set[str]:
    names = {f"{mlp}.{layer}.{p}" for mlp in ("input_patch_embedding", "output_patch_embedding")
             for layer in ("hidden_layer", "output_layer", "residual_layer") for p in ("weight", "bias")}
    names.add("out_norm.weight")
    per_block = ["norm_slstm.weight", "norm_ffn.weight", "ffn.proj_up_gate.weight", "ffn.proj_up.weight",
                 "ffn.proj_down.weight", "slstm_layer.slstm_cell._recurrent_kernel_", "slstm_layer.slstm_cell._bias_",
                 "slstm_layer.group_norm.weight"] + [f"slstm_layer.{g}.weight" for g in _GATE_OF]
    names |= {f"blocks.{i}.{n}" for i in range(cfg.num_blocks) for n in per_block}
    return names


def _renamed(cfg: TiRexConfig) -> list[tuple[str, str]]:
    """(xseq name, tirex-ts name) of every tensor that is only renamed (same layout)."""
    pairs = [(f"{new}.{a}.{p}", f"{old}.{b}.{p}")
             for new, old in (("embed", "input_patch_embedding"), ("head", "output_patch_embedding"))
             for a, b in (("hidden", "hidden_layer"), ("out", "output_layer"), ("skip", "residual_layer"))
             for p in ("weight", "bias")]
    pairs.append(("out_norm.weight", "out_norm.weight"))
    per_block = [("norm_slstm.weight", "norm_slstm.weight"), ("norm_ffn.weight", "norm_ffn.weight"),
                 ("ffn_gate.weight", "ffn.proj_up_gate.weight"), ("ffn_up.weight", "ffn.proj_up.weight"),
                 ("ffn_down.weight", "ffn.proj_down.weight")]
    return pairs + [(f"blocks.{i}.{a}", f"blocks.{i}.{b}") for i in range(cfg.num_blocks) for a, b in per_block]


def read_checkpoint(path) -> tuple[TiRexConfig, dict]:
    """(config, state dict without the prefix) of a TiRex checkpoint file. Raises ValueError naming the file
    and what is wrong: not a torch file, a file that needs code to load, not a TiRex checkpoint, missing or
    extra tensors, tensors of the wrong shape."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"TiRex checkpoint {str(path)!r} is not a file")
    ckpt = safe_load(path, "TiRex", label="torch")
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "hyper_parameters" not in ckpt:
        raise ValueError(f"{path}: not a TiRex checkpoint (expected a dict with 'hyper_parameters' and "
                         f"'state_dict')")
    cfg = config_from_hyper_parameters(ckpt["hyper_parameters"], str(path))
    sd = ckpt["state_dict"]
    if not isinstance(sd, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in sd.items()):
        raise ValueError(f"{path}: state_dict must map names to tensors")
    sd = {k.replace(PREFIX, ""): v for k, v in sd.items()}
    if 12 * cfg.num_blocks > len(sd):  # before listing the names: a hostile count would take forever
        raise ValueError(f"{path}: state_dict does not match the configuration ({cfg.num_blocks} blocks): it holds "
                         f"only {len(sd)} tensors")
    expected = _expected_names(cfg)
    missing, extra = sorted(expected - set(sd)), sorted(set(sd) - expected)
    if missing or extra:
        raise ValueError(f"{path}: state_dict does not match the configuration ({cfg.num_blocks} blocks): "
                         f"missing {missing[:5]}{' ...' if len(missing) > 5 else ''}, "
                         f"extra {extra[:5]}{' ...' if len(extra) > 5 else ''}")
    # the widths the configuration claims, checked against the tensors before a network of that size is built
    widths = {"out_norm.weight": (cfg.d_model,), "blocks.0.ffn.proj_up.weight": (cfg.ffn_dim, cfg.d_model),
              "input_patch_embedding.hidden_layer.weight": (cfg.input_ff_dim, 2 * cfg.patch_size),
              "output_patch_embedding.output_layer.bias": (len(cfg.quantiles) * cfg.patch_size,)}
    for name, shape in widths.items():
        if tuple(sd[name].shape) != shape:
            raise ValueError(f"{path}: a tensor has the wrong shape for its configuration: {name} is "
                             f"{tuple(sd[name].shape)}, the configuration says {shape}")
    return cfg, sd


def net_from_state(cfg: TiRexConfig, sd: dict, backend: str = "auto", source: str = "checkpoint") -> TiRexNet:
    """TiRexNet with the weights of a tirex-ts state dict (names without the prefix)."""
    net = TiRexNet(cfg, backend)
    H, Dh = cfg.num_heads, cfg.head_dim
    try:
        ours = {a: sd[b] for a, b in _renamed(cfg)}
        for i in range(cfg.num_blocks):
            o = s = f"blocks.{i}."
            # headwise (H, out, in) -> W[gate, head] as (in, out), gate by the cell's reading order
            W = torch.empty(4, H, Dh, Dh)
            for name, gate in _GATE_OF.items():
                W[gate] = sd[f"{s}slstm_layer.{name}.weight"].reshape(H, Dh, Dh).transpose(1, 2)
            ours[o + "slstm.W"] = W
            R = sd[s + "slstm_layer.slstm_cell._recurrent_kernel_"]
            ours[o + "slstm.R"] = R.reshape(H, Dh, 4, Dh).permute(2, 0, 1, 3)
            ours[o + "slstm.bias"] = sd[s + "slstm_layer.slstm_cell._bias_"].reshape(H, 4, Dh).transpose(0, 1)
            ours[o + "slstm.norm.weight"] = 1.0 + sd[s + "slstm_layer.group_norm.weight"]
        net.load_state_dict({k: v.float() for k, v in ours.items()})
    except KeyError as e:
        raise ValueError(f"{source}: the weights lack {e.args[0]!r} for its configuration") from None
    except RuntimeError as e:  # a reshape or load_state_dict of a tensor of another size
        raise ValueError(f"{source}: a tensor has the wrong shape for its configuration: "
                         f"{str(e).splitlines()[-1].strip()[:300]}") from None
    return net


def state_from_net(net: TiRexNet) -> dict:
    """The inverse of net_from_state: tirex-ts's names (without the prefix) and layouts."""
    cfg, H, Dh = net.cfg, net.cfg.num_heads, net.cfg.head_dim
    ours = {k: v.detach().cpu().float() for k, v in net.state_dict().items()}
    sd = {b: ours[a] for a, b in _renamed(cfg)}
    for i in range(cfg.num_blocks):
        o = f"blocks.{i}."
        for name, gate in _GATE_OF.items():
            sd[f"{o}slstm_layer.{name}.weight"] = ours[o + "slstm.W"][gate].transpose(1, 2).contiguous()
        sd[o + "slstm_layer.slstm_cell._recurrent_kernel_"] = \
            ours[o + "slstm.R"].permute(1, 2, 0, 3).reshape(H, Dh, 4 * Dh).contiguous()
        sd[o + "slstm_layer.slstm_cell._bias_"] = ours[o + "slstm.bias"].transpose(0, 1).reshape(-1).contiguous()
        sd[o + "slstm_layer.group_norm.weight"] = ours[o + "slstm.norm.weight"] - 1.0
    return sd


def load_tirex(path, backend: str = "auto") -> TiRexNet:
    """A TiRex checkpoint file as a TiRexNet in eval mode."""
    cfg, sd = read_checkpoint(path)
    return net_from_state(cfg, sd, backend, str(path)).eval()


def save_tirex(net: TiRexNet, path) -> None:
    """Write a checkpoint in tirex-ts's layout (hyper_parameters, state_dict with the block_stack. prefix)."""
    torch.save({"hyper_parameters": net.cfg.to_hyper_parameters(),
                "state_dict": {PREFIX + k: v for k, v in state_from_net(net).items()}}, path)
