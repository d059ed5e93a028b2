"""Synthetic weights for offline demos and tests: seeded init, then BatchNorm statistics recalibrated.

Plain random weights give useless activations: BatchNorm layers carry running statistics of 0/1,
so after a few blocks features vanish or explode and a detector finds nothing on any image. Running
a few real images through the network in train mode (for BatchNorm only) replaces those statistics
with the real ones, so activations keep a healthy scale and detections depend on the image. Kept
generic over nn.Module: every source with `init: synthetic` (torchvision, ultralytics) uses it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import torch
    from torch import nn

SAMPLE_IMAGES = ("ultralytics:bus.jpg", "ultralytics:zidane.jpg")
"""Images installed packages ship: the calibration set when a recipe names no samples."""


def seeded(seed: int) -> Any:
    """A context manager making torch's global RNG deterministic inside, restoring it after."""
    import torch

    class _Seeded:
        def __enter__(self) -> None:
            self._state = torch.random.get_rng_state()
            torch.manual_seed(seed)

        def __exit__(self, *exc: object) -> None:
            torch.random.set_rng_state(self._state)

    return _Seeded()


def _bn_layers(model: nn.Module) -> list[nn.Module]:
    from torch import nn

    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def recalibrate_bn(
    model: nn.Module, batches: Iterable[Any], forward: Callable[[nn.Module, Any], Any] | None = None
) -> int:
    """Replace every BatchNorm's running statistics by their cumulative average over `batches`.

    Resets running stats, sets momentum=None (an exact average, independent of batch order) and
    runs the batches with only the BatchNorm layers in train mode, so dropout and detection heads
    behave as in inference. Weights are not touched (no_grad). Ends with the model in eval mode.
    `forward(model, batch)` defaults to `model(batch)`. Returns the number of recalibrated layers.
    """
    import torch

    layers = _bn_layers(model)
    saved = [m.momentum for m in layers]
    model.eval()
    for m in layers:
        m.reset_running_stats()
        m.momentum = None
        m.train()
    try:
        with torch.no_grad():
            for batch in batches:
                forward(model, batch) if forward else model(batch)
    finally:
        for m, momentum in zip(layers, saved, strict=True):
            m.momentum = momentum
        model.eval()
    return len(layers)


def sample_images(specs: Iterable[str], base_dir: Path) -> list[np.ndarray]:
    """The calibration images (BGR uint8) named by `specs` (recipe samples), or the shipped pair."""
    from recipekit.onnx.preprocess import read_image, resolve_sample

    return [read_image(resolve_sample(s, base_dir)) for s in (list(specs) or SAMPLE_IMAGES)]


def rgb01(img_bgr: np.ndarray) -> torch.Tensor:
    """A BGR uint8 image as the 3xHxW float 0..1 RGB tensor torchvision-style models take."""
    import numpy as np
    import torch

    return torch.from_numpy(np.ascontiguousarray(img_bgr[..., ::-1].transpose(2, 0, 1))).float() / 255.0
