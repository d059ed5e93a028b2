"""The contract of a source plugin.

A source exports the model to ONNX (`export`) and computes the reference outputs the gates compare
against (`reference`). Both happen inside build steps, so both may import torch; nothing else may.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from recipekit.core.plugin import Plugin, Strict

if TYPE_CHECKING:
    import numpy as np

    from recipekit.recipe.schema import Recipe


class SourceConfig(Strict):
    """Fields every source section has. Each source's Config subclasses this with `kind: Literal[...]`."""

    kind: str


@dataclass
class ExportInfo:
    """What an export tells later steps: tensor names, what each output means, notes for the manifest.

    `output_kinds[name]` is {"kind": "tensor"} (compared element-wise) or a detections description,
    e.g. {"kind": "detections", "box": [0, 4], "score": 4, "class": 5, "keypoints": [6, 17, 3]} for
    rows (x1, y1, x2, y2, score, class, kpts...) after NMS, padded with zero rows; gates compare
    those by matching detections, not by row position.
    """

    inputs: list[str]
    outputs: list[str]
    output_kinds: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)


Forward = Callable[["np.ndarray"], list["np.ndarray"]]
"""A reference model: one preprocessed NCHW float32 batch in, outputs in ONNX output order out."""


class Source(Plugin):
    """A model source. Subclasses set `name`, `Config` and implement the methods below."""

    Config = SourceConfig
    init: Literal["weights", "synthetic", "architecture"] = "weights"

    def weight_files(self, base: Path) -> list[Path]:
        """Files whose contents shape the export (hashed into the export key). `base` = recipe's folder."""
        return []

    def check_recipe(self, recipe: Recipe) -> None:
        """Refuse, before any step runs, a recipe this source cannot build (RecipeError: exit 2).

        Runs on every build, no-op ones included: it must stay cheap and import nothing heavy.
        The default checks that the weight files exist.
        """
        from pathlib import Path

        self.weight_files(Path(recipe.base_dir))

    def export(self, recipe: Recipe, out: Path, patches: list[AbstractContextManager]) -> ExportInfo:
        """Write `out / 'model.onnx'`. `patches` are source fixes, entered around model building."""
        raise NotImplementedError

    def reference(
        self, recipe: Recipe, export_dir: Path, patches: list[AbstractContextManager]
    ) -> AbstractContextManager[Forward]:
        """A context manager yielding a Forward of the PyTorch source: what the ONNX graph must compute.

        `export_dir` is the export step's folder (a source may leave what it needs there). The reference
        must be the model as its users run it, so a deploy-mode defect shows up as a parity failure.
        """
        raise NotImplementedError
