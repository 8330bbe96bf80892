"""XLSTMLM: token embedding -> XLSTMEncoder -> LM head (untied unless config.tie_weights), with the encoder's
two faces: `forward` over whole sequences (training, scoring) and `step` one token at a time (generation in
constant memory)."""
from __future__ import annotations

import torch
from tensordict import TensorDict
from torch import nn

from ..nn.encoder import XLSTMEncoder
from ..nn.layers import small_init_
from .config import LMConfig


class XLSTMLM(nn.Module):
    """No positional encoding and no biases outside the gates and convs (paper D.2). The embedding and the
    head use the small init N(0, sqrt(2 / (5 d))); the encoder's blocks initialise themselves (small init
    for projections, scaled init for the projections into the residual stream, gate biases of the core)."""

    def __init__(self, config: LMConfig):
        super().__init__()
        if not isinstance(config, LMConfig):
            raise ValueError(f"config must be an LMConfig; got {type(config).__name__}")
        self.config = config
        d, V = config.encoder.d_model, config.padded_vocab_size
        self.embedding = nn.Embedding(V, d)
        self.encoder = XLSTMEncoder(config.encoder)
        self.head = nn.Linear(d, V, bias=False)
        small_init_(self.embedding.weight, d)
        if config.tie_weights:
            self.head.weight = self.embedding.weight
        else:
            small_init_(self.head.weight, d)

    @property
    def vocab_size(self) -> int:
        return self.config.vocab_size

    def init_state(self, batch_size: int, device=None) -> TensorDict:
        return self.encoder.init_state(batch_size, device=device)

    def _check_tokens(self, name: str, idx: torch.Tensor, ndim: int) -> None:
        if not isinstance(idx, torch.Tensor) or idx.dtype not in (torch.int64, torch.int32, torch.int16,
                                                                   torch.uint8):
            raise ValueError(f"{name} must be an integer tensor of token ids; got "
                             f"{getattr(idx, 'dtype', type(idx).__name__)}")
        layout = "(B, T)" if ndim == 2 else "(B,)"
        if idx.dim() != ndim or idx.numel() == 0:
            raise ValueError(f"{name} must have shape {layout} and not be empty; got {tuple(idx.shape)}")
        lo, hi = int(idx.min()), int(idx.max())
        if lo < 0 or hi >= self.vocab_size:
            raise ValueError(f"{name} holds token ids in [{lo}, {hi}]; the vocabulary is [0, {self.vocab_size})")

    def forward(self, idx: torch.Tensor, state: TensorDict | None = None, validate: bool = True):
        """idx (B, T) -> logits (B, T, padded_vocab_size) and the state after the last token."""
        if validate:
            self._check_tokens("idx", idx, 2)
        h, state = self.encoder(self.embedding(idx.long()), state)
        return self.head(h), state

    def step(self, idx: torch.Tensor, state: TensorDict | None = None, validate: bool = True):
        """idx (B,) one token per row -> logits (B, padded_vocab_size) and the new state. validate=False skips
        the checks of idx and state, for callers that produced both (generation checks once, not per token)."""
        if validate:
            self._check_tokens("idx", idx, 1)
            h, state = self.encoder.step(self.embedding(idx.long()), state)
        else:
            h, state = self.encoder.step_unchecked(self.embedding(idx.long()), state)
        return self.head(h), state

    def num_parameters(self, exclude_embedding: bool = False) -> int:
        n = sum(p.numel() for p in self.parameters())  # a tied matrix counts once
        return n - self.embedding.weight.numel() if exclude_embedding else n


def count_parameters(config: LMConfig) -> int:
    """The parameter count of XLSTMLM(config), built on the meta device: no weights are allocated."""
    with torch.device("meta"):
        model = XLSTMLM(config)
    return model.num_parameters()


def optimizer_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """AdamW groups of paper D.2: weight decay on the weight matrices; none on the token embedding, biases,
    norm weights and other vectors (e.g. the mLSTM skip). Every parameter lands in exactly one group."""
    decay, no_decay = [], []
    embeddings = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if id(p) in embeddings or p.dim() < 2 or name.endswith("bias"):
            no_decay.append(p)
        else:
            decay.append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
