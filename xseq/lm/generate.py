"""Text generation with the step API: the prompt goes through the parallel face once, then each new token
costs one `step` with a fixed-size state (constant memory per token, whatever the length)."""
from __future__ import annotations

import numbers

import torch

from .model import XLSTMLM


def _check_prompt(model: XLSTMLM, prompt: torch.Tensor) -> torch.Tensor:
    if not isinstance(prompt, torch.Tensor) or prompt.dim() != 2 or prompt.shape[1] == 0:
        raise ValueError(f"prompt must be a (B, T) tensor of token ids with T >= 1; got "
                         f"{tuple(prompt.shape) if isinstance(prompt, torch.Tensor) else type(prompt).__name__}")
    model._check_tokens("prompt", prompt, 2)
    return prompt.long()


def next_token(logits: torch.Tensor, vocab_size: int, *, greedy: bool, temperature: float, top_k: int | None,
               generator: torch.Generator | None) -> torch.Tensor:
    """logits (B, padded V) -> tokens (B,). Padding ids beyond vocab_size are never chosen."""
    logits = logits[:, :vocab_size].float()
    if greedy:
        return logits.argmax(dim=-1)
    # the largest logit first to 0: dividing by a tiny temperature then gives -inf, never inf - inf = NaN
    logits = (logits - logits.max(dim=-1, keepdim=True).values) / temperature
    if top_k is not None and top_k < vocab_size:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


@torch.no_grad()
def generate(model: XLSTMLM, prompt: torch.Tensor, max_new_tokens: int, *, greedy: bool = False,
             temperature: float = 1.0, top_k: int | None = None, generator: torch.Generator | None = None,
             progress: bool = False) -> torch.Tensor:
    """prompt (B, T0) -> (B, T0 + max_new_tokens): the prompt followed by the sampled continuation."""
    if not isinstance(max_new_tokens, int) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be an int >= 0; got {max_new_tokens!r}")
    if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real):
        raise TypeError(f"temperature must be a number > 0; got {type(temperature).__name__}")
    if not greedy and not temperature > 0:
        raise ValueError(f"temperature must be > 0 (use greedy=True for argmax decoding); got {temperature!r}")
    if top_k is not None and (not isinstance(top_k, int) or top_k < 1):
        raise ValueError(f"top_k must be a positive int or None; got {top_k!r}")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None; got {type(generator).__name__}")
    prompt = _check_prompt(model, prompt)
    V = model.vocab_size
    logits, state = model(prompt)
    logits = logits[:, -1]
    out = [prompt]
    steps = range(max_new_tokens)
    if progress:
        from tqdm import tqdm
        steps = tqdm(steps, desc="generating", unit="tok")
    for i in steps:
        tok = next_token(logits, V, greedy=greedy, temperature=temperature, top_k=top_k, generator=generator)
        out.append(tok[:, None])
        if i + 1 < max_new_tokens:
            logits, state = model.step(tok, state, validate=False)  # tokens and state are ours
    return torch.cat(out, dim=1)


@torch.no_grad()
def greedy_by_forward(model: XLSTMLM, prompt: torch.Tensor, max_new_tokens: int) -> torch.Tensor:
    """Greedy decoding by re-running the parallel forward over the whole sequence for every new token:
    quadratic, the reference that `generate(greedy=True)` must reproduce token for token."""
    seq = _check_prompt(model, prompt)
    for _ in range(max_new_tokens):
        logits, _ = model(seq)
        seq = torch.cat([seq, logits[:, -1, :model.vocab_size].argmax(dim=-1, keepdim=True)], dim=1)
    return seq
