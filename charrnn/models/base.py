"""What every model of charrnn shares, whatever its task: how it builds its optimizer
and counts its parameters (makemore's habit: the training loop never asks which
model it trains)."""

from __future__ import annotations

import torch
from torch import nn


class Model(nn.Module):
    def configure_optimizers(self, lr: float, weight_decay: float, betas: tuple[float, float] = (0.9, 0.99)) -> torch.optim.Optimizer:
        """AdamW over the parameters that train (a frozen reservoir's do not), with
        weight decay on the matrices only: biases and the embedding table are left alone."""
        decay, rest = [], []
        for n, p in self.named_parameters():
            if p.requires_grad:
                (decay if p.dim() >= 2 and not n.startswith("embed") else rest).append(p)
        groups = [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]
        return torch.optim.AdamW([g for g in groups if g["params"]], lr=lr, betas=betas)

    def num_params(self, trainable: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable)
