"""The classifier's stream core: class probabilities for the sequence seen so far, after every observation."""
from __future__ import annotations

import copy

import torch
from tensordict import TensorDict

from ..nn.stream import weights_digest


class ClassifierCore:
    """Observation: (B, n_features) raw values; output: (B, n_classes) probabilities, columns in the order
    of `classes_`. Context: the whole sequence since the row's last reset (recurrent state, plus the running
    sum of the encoder's outputs for the mean summary)."""

    def __init__(self, classifier, device):
        self.clf = classifier
        net = classifier.net_
        self.net = net if torch.device(device) == torch.device("cpu") else copy.deepcopy(net).to(device)
        self.name = "XLSTMClassifier"
        self.n_features = classifier.n_channels_

    def init(self, batch_size: int, device):
        enc = self.net.encoder
        d = enc.d_model
        return TensorDict({"encoder": enc.init_state(batch_size, device=device),
                           "sum": torch.zeros(batch_size, d, device=device),
                           "count": torch.zeros(batch_size, device=device)},
                          batch_size=[batch_size], device=device)

    def step(self, x: torch.Tensor, state):
        net = self.net
        h, enc_state = net.encoder.step_unchecked(net.tokens(x.to(net.mean.dtype)), state["encoder"])
        total, count = state["sum"] + h, state["count"] + 1
        probs = torch.softmax(net.logits_from(total / count[:, None], h), dim=-1)
        return probs, TensorDict({"encoder": enc_state, "sum": total, "count": count},
                                 batch_size=[x.shape[0]], device=x.device)

    def identity(self) -> dict:
        c = self.clf
        return {"model": self.name, "classes": [str(k) for k in c.classes_], "n_features": self.n_features,
                "weights": weights_digest(self.net)}
