"""Modules built on xseq.ops: layers, the sLSTM and mLSTM blocks, and the encoder stack."""
from .config import MLSTMLayerConfig, SLSTMLayerConfig, XLSTMConfig
from .encoder import XLSTMEncoder
from .layers import CausalConv1d, GatedFFN, HeadwiseLinear, MultiHeadNorm
from .mlstm_block import MLSTMBlock, MLSTMLayer
from .slstm_block import SLSTMBlock, SLSTMLayer

__all__ = ["XLSTMConfig", "MLSTMLayerConfig", "SLSTMLayerConfig", "XLSTMEncoder", "MLSTMBlock", "MLSTMLayer",
           "SLSTMBlock", "SLSTMLayer", "CausalConv1d", "HeadwiseLinear", "MultiHeadNorm", "GatedFFN"]
