"""Scoring a candidate INT8 model against the fp32 model it was made from, on ONNX Runtime's CPU.

The fp32 model's outputs on the calibration images (and on the labelled images, when the goal is a
drop against labels) are computed once; each candidate runs under the accuracy gate's session
options (recipekit.onnx.runtime.OrtRunner: all graph optimizations, so QDQ pairs fuse into the same
integer kernels the artifact will run), is scored by recipekit.precision.metric.score and judged
with the gate's rules (and the goal's bounds, when there is a goal).
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
    """Preprocessed batch-1 tensors; labelled boxes per image (input pixels) or None; the tensor layout."""

    tensors: list[np.ndarray]
    truth: list[Any] | None = None
    layout: str = "nchw"

    def hws(self) -> list[tuple[int, int]]:
        """Each tensor's (H, W): images of a dynamic-size model differ."""
        axes = slice(2, 4) if self.layout == "nchw" else slice(1, 3)
        return [tuple(int(v) for v in x.shape[axes]) for x in self.tensors]  # type: ignore[misc]


@dataclass(frozen=True)
class Score:
    agreement: float | None  # the worst task's headline (detections: the lower direction)
    drop: float | None  # labelled mAP50-95 of fp32 minus the candidate's
    figures: dict[str, Any] = field(default_factory=dict)
    failures: tuple[str, ...] = ()  # the gate's rules (and the goal's bounds): none is a pass

    def short(self) -> dict[str, Any]:
        """The agreement, what it rests on per task, the drop, and why it fails (when it does)."""
        from recipekit.precision.metric import summary

        out: dict[str, Any] = {"agreement": self.agreement, "drift": self.figures.get("drift")}
        if self.figures.get("tasks"):
            out["tasks"] = summary(self.figures)
        if self.drop is not None:
            out["drop"] = self.drop
        return {**out, "failures": list(self.failures)} if self.failures else out


@dataclass(frozen=True)
class Aim:
    """What a candidate is judged against: the gate's thresholds, a goal's headline bound and drop bound."""

    judge: dict[str, Any]
    min_agreement: float | None = None
    max_drop: float | None = None

    def failures(self, figures: dict[str, Any], drop: float | None) -> list[str]:
        from recipekit.precision.metric import failures

        out = failures(figures, self.judge, self.min_agreement)
        if self.max_drop is not None:
            lab = figures.get("labelled") or {}
            if drop is None:
                out.append(f"labelled set: mAP50-95 drop cannot be computed ({lab.get('why', 'no labelled box')})")
            elif drop > self.max_drop:
                out.append(
                    f"labelled set: mAP50-95 drop {drop:.4f} > max_drop {self.max_drop} "
                    f"(fp32 {lab.get('reference')}, int8 {lab.get('artifact')} on {lab.get('truth_boxes')} boxes)"
                )
        return out


class Evaluator:
    """Scores model files against the fp32 reference; `runs` counts the candidates scored."""

    def __init__(
        self,
        fp32: Path,
        calib: Images,
        kinds: dict[str, Any],
        measure: dict[str, Any],
        aim: Aim,
        labelled: Images | None,
    ) -> None:
        self.fp32, self.kinds, self.measure, self.aim = fp32, kinds, measure, aim
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

    def _score(self, images: Images, reference: list, candidate: list) -> dict[str, Any]:
        from recipekit.precision.metric import score

        return score(self.names, self.kinds, images.hws(), self.measure, reference, candidate, images.truth)

    def _judged(self, figures: dict[str, Any], drop: float | None, aim: Aim | None = None) -> Score:
        return Score(figures["agreement"], drop, figures, tuple((aim or self.aim).failures(figures, drop)))

    def __call__(self, model: Path, aim: Aim | None = None) -> Score:
        """The candidate's score, judged by `aim` (default: the evaluator's, the gate's rules)."""
        from recipekit.onnx.runtime import OrtRunner

        runner = OrtRunner(model)
        self.runs += 1
        figures = self._score(self.calib, self._fp32[1], [runner.run_one(x) for x in self.calib.tensors])
        drop = None
        if self.labelled is not None:
            got = [runner.run_one(x) for x in self.labelled.tensors]
            lab = self._score(self.labelled, self._fp32[2], got)["labelled"]
            figures["labelled"], drop = lab, lab["drop"]
        return self._judged(figures, drop, aim)

    def reference_score(self) -> Score:
        """The fp32 model against itself: what the figures rest on (agreement 1.0 by construction); its
        failures are what no candidate can escape (too few items: `not exercised`)."""
        figures = self._score(self.calib, self._fp32[1], self._fp32[1])
        drop = None
        if self.labelled is not None:
            lab = self._score(self.labelled, self._fp32[2], self._fp32[2])["labelled"]
            figures["labelled"], drop = lab, lab["drop"]
        return self._judged(figures, drop)
