"""Reference models for the digits data set. Imported only when a model is built."""

from __future__ import annotations

import torch
from torch import nn


class DigitsMLP(nn.Module):
    """64 → hidden → (hidden → hidden) × depth → 10, ReLU. Linear-heavy: what int8 helps most."""

    def __init__(self, hidden: int = 256, depth: int = 1):
        super().__init__()
        layers = [nn.Linear(64, hidden), nn.ReLU()]  # built in this order: the seed's draws follow it
        for _ in range(depth):
            layers += [nn.Linear(hidden, hidden), nn.ReLU()]
        self.net = nn.Sequential(*layers, nn.Linear(hidden, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1))


class DigitsCNN(nn.Module):
    """Two 3×3 conv layers on the 8×8 image, then two Linear layers."""

    def __init__(self, channels: int = 32):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, channels, 3, padding=1), nn.ReLU(),
            nn.Conv2d(channels, 2 * channels, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(2 * channels * 16, 128), nn.ReLU(), nn.Linear(128, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x.reshape(-1, 1, 8, 8)))
