"""The classifier's stream core: class probabilities for the sequence seen so far, after every observation."""
from __future__ import annotations

import copy

import torch
from tensordict import TensorDict

from ..nn.rows import where_rows
from ..nn.stream import weights_digest


class ClassifierCore:
    """Observation: (B, n_features) raw values; output: (B, n_classes) probabilities, columns in the order
    of `classes_`. Context: the whole sequence since the row's last reset: the encoder's recurrent state and
    running sum of its outputs (the mean summary), the kernels' window of recent observations and their counts
    of positive outputs (the PPVs), and the number of observations."""

    def __init__(self, classifier, device):
        self.clf = classifier
        net = classifier.net_
        self.net = net if torch.device(device) == torch.device("cpu") else copy.deepcopy(net).to(device)
        self.name = "XLSTMClassifier"
        self.n_features = classifier.n_channels_

    def init(self, batch_size: int, device):
        net = self.net
        state = {"count": torch.zeros(batch_size, device=device)}
        if net.encoder is not None:
            d = net.encoder.d_model
            state["encoder"] = net.encoder.init_state(batch_size, device=device)
            state["sum"] = torch.zeros(batch_size, d, device=device)
            state["last"] = torch.zeros(batch_size, d, device=device)
            state["patch"] = torch.zeros(batch_size, net.patch, self.n_features, device=device)
        if net.kernels is not None:
            state["kernels"] = TensorDict(net.kernels.init_state(batch_size, self.n_features, device),
                                          batch_size=[batch_size], device=device)
        return TensorDict(state, batch_size=[batch_size], device=device)

    def step(self, x: torch.Tensor, state):
        net = self.net
        count = state["count"] + 1
        new = {"count": count}
        logits = 0.0
        if net.kernels is not None:
            k = state["kernels"]
            positive, window = net.kernels.step(net.scaled64(x), count == 1, k["window"], k["positive"])
            logits = net.kernel_logits_from(positive / count[:, None].double())
            new["kernels"] = TensorDict({"window": window, "positive": positive}, batch_size=[x.shape[0]],
                                        device=x.device)
        if net.encoder is not None:
            P = net.patch
            at = ((count - 1) % P).long()                                     # position within the patch
            patch = state["patch"].clone()
            patch[torch.arange(len(x), device=x.device), at] = x.to(patch.dtype)
            done = at == P - 1                                                # rows whose patch is complete
            enc_state, total, last = state["encoder"], state["sum"], state["last"]
            if done.any():  # the encoder steps every row; rows without a complete patch keep their state
                h, stepped = net.encoder.step_unchecked(net.tokens(patch)[:, 0], enc_state)
                enc_state = stepped if done.all() else where_rows(done, stepped, enc_state)
                total = torch.where(done[:, None], total + h, total)
                last = torch.where(done[:, None], h, last)
            n = torch.div(count, P, rounding_mode="floor")
            part = net.logits_from(total / n.clamp(min=1)[:, None], last).double()
            logits = logits + torch.where((n > 0)[:, None], part, 0.0)
            new.update(encoder=enc_state, sum=total, last=last, patch=patch)
        probs = torch.softmax(logits, dim=-1).to(net.mean.dtype)
        return probs, TensorDict(new, batch_size=[x.shape[0]], device=x.device)

    def identity(self) -> dict:
        c = self.clf
        return {"model": self.name, "classes": [str(k) for k in c.classes_], "n_features": self.n_features,
                "weights": weights_digest(self.net)}
