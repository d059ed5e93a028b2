"""Scoring a candidate INT8 model against the fp32 model it was made from, on ONNX Runtime's CPU.

The fp32 model's outputs on the calibration images (and on the labelled images, when the goal is a
drop against labels) are computed once; each candidate runs under the accuracy gate's session
options (recipekit.onnx.runtime.OrtRunner: all graph optimizations, so QDQ pairs fuse into the same
integer kernels the artifact will run) and is scored by recipekit.precision.metric.score.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np


@dataclass
class Images:
    """Preprocessed batch-1 tensors at one input size; labelled boxes per image (input pixels) or None."""

    tensors: list[np.ndarray]
    truth: list[Any] | None
    hw: tuple[int, int]


@dataclass(frozen=True)
class Score:
    agreement: float | None  # mAP50-95, the lower of the two directions
    drop: float | None  # labelled mAP50-95 of fp32 minus the candidate's
    figures: dict[str, Any] = field(default_factory=dict)

    def short(self) -> dict[str, Any]:
        f = self.figures
        out = {"agreement": self.agreement, "reference_boxes": f.get("reference_boxes")}
        out.update(artifact_boxes=f.get("artifact_boxes"), score_shift=f.get("score_shift"))
        return {**out, "drop": self.drop} if self.drop is not None else out


class Evaluator:
    """Scores model files against the fp32 reference; `runs` counts the candidates scored."""

    def __init__(
        self, fp32: Path, calib: Images, kinds: dict[str, Any], options: dict[str, Any], labelled: Images | None
    ) -> None:
        self.fp32, self.kinds, self.options = fp32, kinds, options
        self.calib, self.labelled = calib, labelled
        self.runs = 0

    @cached_property
    def _fp32(self) -> Any:
        """The fp32 runner, its output names and its outputs: run once, when a candidate is first scored."""
        from recipekit.onnx.runtime import OrtRunner

        runner = OrtRunner(self.fp32)
        lab = [runner.run_one(x) for x in self.labelled.tensors] if self.labelled else None
        return runner.output_names, [runner.run_one(x) for x in self.calib.tensors], lab

    @property
    def names(self) -> list[str]:
        return self._fp32[0]

    @property
    def reference(self) -> list[Any]:
        return self._fp32[1]

    @property
    def labelled_reference(self) -> list[Any] | None:
        return self._fp32[2]

    def _score(self, images: Images, reference: list, candidate: list) -> dict[str, Any]:
        from recipekit.precision.metric import score

        hws = [images.hw] * len(images.tensors)
        return score(self.names, self.kinds, hws, self.options, reference, candidate, images.truth)

    def __call__(self, model: Path) -> Score:
        from recipekit.onnx.runtime import OrtRunner

        runner = OrtRunner(model)
        self.runs += 1
        figures = self._score(self.calib, self.reference, [runner.run_one(x) for x in self.calib.tensors])
        drop = None
        if self.labelled is not None:
            got = [runner.run_one(x) for x in self.labelled.tensors]
            lab = self._score(self.labelled, self.labelled_reference, got)["labelled"]
            figures["labelled"], drop = lab, lab["drop"]
        return Score(figures["agreement_map50_95"], drop, figures)

    def reference_score(self) -> Score:
        """The fp32 model against itself: the counts the figures rest on (agreement 1.0 by construction)."""
        figures = self._score(self.calib, self.reference, self.reference)
        if self.labelled is not None:
            figures["labelled"] = self._score(self.labelled, self.labelled_reference, self.labelled_reference)[
                "labelled"
            ]
        return Score(figures["agreement_map50_95"], 0.0 if self.labelled else None, figures)
