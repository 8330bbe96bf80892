"""The xLSTM language model: token embedding -> XLSTMEncoder -> LM head (untied unless config.tie_weights),
with the encoder's two faces: `forward` over whole sequences (training, scoring) and `step` one token at a
time (generation in constant memory). `xseq.lm` trains it; the synthetic tasks use it too."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from tensordict import TensorDict
from torch import nn

from .config import XLSTMConfig
from .encoder import XLSTMEncoder
from .layers import small_init_


def check_positive(obj, *names: str) -> None:
    for name in names:
        v = getattr(obj, name)
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{type(obj).__name__}.{name} must be a positive int; got {v!r}")


@dataclass
class LMConfig:
    """Token embedding -> XLSTMEncoder -> LM head (no bias). The embedding and head have
    `padded_vocab_size` rows: vocab_size rounded up to a multiple of pad_vocab_multiple. The head is untied
    (the paper's LMs); tie_weights=True shares the embedding matrix with it (the MQAR models of Arora et al.)."""
    vocab_size: int | None = 50257  # None: taken from the tokenizer of the training data
    pad_vocab_multiple: int = 64
    tie_weights: bool = False
    encoder: XLSTMConfig = field(default_factory=lambda: XLSTMConfig(d_model=768, num_blocks=24))

    def __post_init__(self):
        if isinstance(self.encoder, dict):
            self.encoder = XLSTMConfig.from_dict(self.encoder)
        check_positive(self, "pad_vocab_multiple")
        if not isinstance(self.tie_weights, bool):
            raise ValueError(f"LMConfig.tie_weights must be a bool; got {self.tie_weights!r}")
        if self.vocab_size is not None:
            check_positive(self, "vocab_size")
        if not isinstance(self.encoder, XLSTMConfig):
            raise ValueError(f"LMConfig.encoder must be an XLSTMConfig or a mapping; got {type(self.encoder).__name__}")

    @property
    def padded_vocab_size(self) -> int:
        if self.vocab_size is None:
            raise ValueError("LMConfig.vocab_size is None (taken from the data); set it to count parameters "
                             "without the data")
        m = self.pad_vocab_multiple
        return -(-self.vocab_size // m) * m


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
