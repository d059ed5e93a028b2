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


def segmentation(builder: str = "lraspp_mobilenet_v3_large", classes: int = 21):
    """A torchvision semantic segmentation model (its own seeded initialisation) returning the
    (B, classes, H, W) logits of its `out` head: per-pixel classes, a dense map."""
    import torch
    from torch import nn
    from torchvision.models import get_model

    model = get_model(builder, weights=None, weights_backbone=None, num_classes=classes)

    class Out(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.model(x)["out"]

    return Out().eval()


def crnn(classes: int = 37, width: int = 32, hidden: int = 48):
    """A small CRNN (Shi, Bai, Yao 2015): a VGG-style conv stack that collapses the height, a
    bidirectional LSTM over the width, a linear layer to per-step class log-probabilities, as
    (T, B, classes), the layout CTC losses take (class 0 is the blank)."""
    import torch
    from torch import nn

    def block(cin: int, cout: int, pool: tuple[int, int]) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(), nn.MaxPool2d(pool, pool)]

    class CRNN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            w = width
            self.cnn = nn.Sequential(
                *block(3, w, (2, 2)),
                *block(w, 2 * w, (2, 2)),
                *block(2 * w, 4 * w, (2, 1)),
                *block(4 * w, 4 * w, (2, 1)),
            )
            self.rnn = nn.LSTM(4 * w, hidden, bidirectional=True)
            self.fc = nn.Linear(2 * hidden, classes)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            f = self.cnn(x).mean(dim=2)  # (B, C, W/4): the height pooled away
            seq, _ = self.rnn(f.permute(2, 0, 1))  # (T, B, 2 * hidden)
            return self.fc(seq).log_softmax(dim=2)

    return CRNN().eval()


def yolov8_split_head(model: str = "yolov8n.yaml", classes: int = 4, class_bias: float = -3.0, spread: float = 0.003):
    """An Ultralytics YOLOv8 detector (seeded, untrained) whose head is left split per level, as
    PicoDet, NanoDet and YOLOv8 deployments ship it: one (B, 4 x 16 + classes, H, W) output per
    stride (8, 16, 32), box distributions over 16 bins then class logits. Untrained, its activations
    fade to nothing through the layers: BatchNorm statistics are recalibrated on seeded noise, and
    the class layer gets weights of std `spread` around `class_bias`, so scores vary over the cells."""
    import torch
    from torch import nn
    from ultralytics.nn.tasks import DetectionModel

    net = DetectionModel(model, nc=classes, verbose=False).eval()
    head = net.model[-1]
    for seq in head.cv3:
        torch.nn.init.constant_(seq[-1].bias, class_bias)
        torch.nn.init.normal_(seq[-1].weight, std=spread)
    for bn in (m for m in net.modules() if isinstance(m, nn.BatchNorm2d)):
        bn.reset_running_stats()
        bn.momentum = None  # a cumulative average over the calibration batches
    net.train()
    with torch.no_grad():
        for k in range(4):
            net(torch.rand(2, 3, 128, 128, generator=torch.Generator().manual_seed(k)))
    net.eval()

    class Split(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
            ys: list = []
            for m in self.net.model:
                if m.f != -1:
                    x = ys[m.f] if isinstance(m.f, int) else [x if j == -1 else ys[j] for j in m.f]
                if m is head:
                    return tuple(torch.cat((head.cv2[i](x[i]), head.cv3[i](x[i])), 1) for i in range(head.nl))
                x = m(x)
                ys.append(x if m.i in self.net.save else None)
            raise RuntimeError("no Detect head")

    return Split().eval()


def embedder(builder: str = "mobilenet_v3_small"):
    """A torchvision backbone (its own seeded initialisation) as an image embedder, as re-identification
    and retrieval models are built: global-pooled features, L2-normalised, (B, D)."""
    import torch
    from torch import nn
    from torchvision.models import get_model

    backbone = get_model(builder, weights=None)

    class Embed(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = backbone.features

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return nn.functional.normalize(self.features(x).mean(dim=(2, 3)), dim=1)

    return Embed().eval()
