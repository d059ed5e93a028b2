"""Tiny modules for the python source's tests: importable factories (`helpers.python_models:...`)."""

from __future__ import annotations


def tiny_classifier(classes: int = 5, width: int = 8):
    """conv-bn-relu x2, global pool, linear: (B, 3, H, W) -> (B, classes) probabilities and a
    (B, width, H/4, W/4) feature map (two outputs of different kinds)."""
    import torch
    from torch import nn

    class Tiny(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(3, width, 3, stride=2, padding=1),
                nn.BatchNorm2d(width),
                nn.ReLU(),
                nn.Conv2d(width, width, 3, stride=2, padding=1),
                nn.BatchNorm2d(width),
                nn.ReLU(),
            )
            self.head = nn.Linear(width, classes)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            f = self.features(x)
            return self.head(f.mean(dim=(2, 3))).softmax(dim=1), f

    return Tiny()


NOT_A_FACTORY = 3
