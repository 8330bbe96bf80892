"""How a run spreads over devices: the number of processes, the split of the global batch into micro-batches
and gradient accumulation, and the Lightning strategy (auto, DDP, or FSDP wrapping each xLSTM block)."""
from __future__ import annotations

import torch

from .config import TrainConfig


def world_size(cfg: TrainConfig) -> int:
    if isinstance(cfg.devices, int):
        devices = cfg.devices
    elif cfg.accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        devices = torch.cuda.device_count()
    else:
        devices = 1
    return devices * cfg.num_nodes


def batch_split(cfg: TrainConfig, world: int) -> tuple[int, int]:
    """(micro_batch_size, accumulate) with micro_batch_size * world * accumulate == batch_size."""
    micro = cfg.micro_batch_size or cfg.batch_size // world
    if micro < 1 or cfg.batch_size % (micro * world):
        raise ValueError(f"train.batch_size ({cfg.batch_size}) must be a multiple of micro_batch_size ({micro}) x "
                         f"devices ({world}); set train.micro_batch_size to a divisor of {cfg.batch_size // world}"
                         if cfg.batch_size % world == 0 else
                         f"train.batch_size ({cfg.batch_size}) must be divisible by the number of devices ({world})")
    return micro, cfg.batch_size // (micro * world)


def make_strategy(cfg: TrainConfig):
    if cfg.strategy == "ddp":
        from lightning.pytorch.strategies import DDPStrategy
        return DDPStrategy()
    if cfg.strategy == "fsdp":
        from lightning.pytorch.strategies import FSDPStrategy

        from ..nn.mlstm_block import MLSTMBlock
        from ..nn.slstm_block import SLSTMBlock
        return FSDPStrategy(sharding_strategy=cfg.fsdp_sharding, auto_wrap_policy={MLSTMBlock, SLSTMBlock})
    return "auto"
