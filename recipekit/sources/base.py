"""The contract of a source plugin.

A source exports the model to ONNX (`export`) and computes the reference outputs the gates compare
against (`reference`). Both happen inside build steps, so both may import torch; nothing else may.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from recipekit.core.plugin import Plugin, Strict

if TYPE_CHECKING:
    import numpy as np

    from recipekit.recipe.schema import Recipe


class SourceConfig(Strict):
    """Fields every source section has. Each source's Config subclasses this with `kind: Literal[...]`."""

    kind: str


class WeightsConfig(SourceConfig):
    """A source that reads checkpoint files: they are loaded without running code (sources/checkpoint.py)."""

    trust_code: bool = Field(
        False,
        description="load the weights file with pickle's full power (torch weights_only=False): ONLY for your own "
        "checkpoint with custom modules; it may run code. Recorded in the manifest",
    )


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
    checkpoint_family: ClassVar[str | None] = None
    """How `weight_files` are read (a family of sources/checkpoint.py); None: they are not checkpoints."""

    def size_multiple(self) -> int:
        """Input sizes (H and W) must be multiples of this: the model's stride (1: any size)."""
        return 1

    reference_name: ClassVar[str] = "PyTorch"  # what `reference` runs, as reports name it
    reads_samples: ClassVar[bool] = True
    """Whether export may read the sample images (e.g. to recalibrate synthetic weights): their bytes join its key."""

    def weight_files(self, base: Path) -> list[Path]:
        """Files whose contents shape the export (hashed into the export key). `base` = recipe's folder."""
        return []

    def checkpoint_files(self, base: Path) -> list[Path]:
        """The weight files that are checkpoints, scanned at plan against `checkpoint_family`."""
        return self.weight_files(base)

    def check_recipe(self, recipe: Recipe) -> None:
        """Refuse, before any step runs, a recipe this source cannot build (RecipeError: exit 2).

        Runs on every build, no-op ones included: it must stay cheap and import nothing heavy.
        The default checks that the weight files exist and are checkpoints asking for nothing outside
        the source's family (read, never run), and that the sizes are multiples of the stride.
        """
        from pathlib import Path

        from recipekit.sources import checks

        if self.checkpoint_family:
            files = self.checkpoint_files(Path(recipe.base_dir))
            checks.checkpoints(files, self.checkpoint_family, bool(getattr(self.config, "trust_code", False)))
        checks.sizes(recipe, self.size_multiple())
        checks.preprocess(recipe)
        checks.samples(recipe)

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
