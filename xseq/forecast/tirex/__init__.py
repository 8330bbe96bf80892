"""TiRex (NX-AI's pretrained sLSTM forecaster) on xseq's own ops: read a checkpoint you have (xseq ships no
weights; the checkpoint carries its own licence, the NXAI Community License for NX-AI's release) and forecast
quantiles on tensors."""
from .checkpoint import load_tirex, read_checkpoint, save_tirex
from .config import TiRexConfig
from .model import TiRexNet

__all__ = ["TiRexConfig", "TiRexNet", "load_tirex", "read_checkpoint", "save_tirex"]
