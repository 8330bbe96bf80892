"""XLSTMLM lives in xseq.nn.lm (the synthetic tasks use it too); re-exported here for the LM recipe."""
from ..common.optim import optimizer_groups
from ..nn.lm import XLSTMLM, count_parameters

__all__ = ["XLSTMLM", "count_parameters", "optimizer_groups"]
