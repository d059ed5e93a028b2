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


def reads_a_file(path: str, classes: int = 3):
    """A factory that opens a file of its own choosing (its path an argument), e.g. a label list."""
    from torch import nn

    with open(path, encoding="utf-8") as fh:
        fh.read()
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, classes))


def loads_own_weights(path: str):
    """A factory that loads its own trained weights with torch.load (as pretrained=True factories do)."""
    import torch
    from torch import nn

    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
    model.load_state_dict(torch.load(path, weights_only=False))  # what the factory asks: recipekit reads it safely
    return model
