"""A tiny PyTorch network for the flavor tests (imported only where torch is installed)."""

from __future__ import annotations

import torch


class TinyNet(torch.nn.Module):
    def __init__(self, n_in: int = 4, hidden: int = 8) -> None:
        super().__init__()
        self.hidden = torch.nn.Linear(n_in, hidden)
        self.out = torch.nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.hidden(x)))


def build(n_in: int = 4, hidden: int = 8) -> TinyNet:
    """The factory a state_dict package names as ``torch_nets:build``."""
    torch.manual_seed(0)
    return TinyNet(n_in, hidden)
