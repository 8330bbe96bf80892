"""xseq.Stream lives in xseq.nn.stream (the stream core sits with the models it drives); kept importable here."""
from .nn.stream import Stream, weights_digest

__all__ = ["Stream", "weights_digest"]
