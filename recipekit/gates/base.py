"""The contract of a gate.

A gate reads a built artifact (through `ctx.runner()`), the golden cases (reference inputs and the
PyTorch source's outputs, computed once by the golden step) and its own Config, and returns a
GateResult with its verdict and the figures behind it. Computing, deciding and reporting are kept
apart. A gate that cannot run here returns status `unavailable` with the reason: never `passed`; one
that does not apply returns `not applicable`; one that is turned off or could not exercise its case
returns `skipped` with the reason, and the target is then published `unverified`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from recipekit.core.plugin import Plugin, Strict

if TYPE_CHECKING:
    from recipekit.onnx.golden import Golden
    from recipekit.onnx.runtime import Runner
    from recipekit.recipe.schema import Recipe

GateStatus = Literal["passed", "failed", "unavailable", "skipped", "not applicable"]
"""passed: its case was exercised and held; not applicable: nothing of the kind it checks exists here
(no output carries a count; an element-wise gate on an INT8 artifact, which the accuracy gate judges);
skipped: it was turned off or could not exercise its case (the target is then published `unverified`);
unavailable: it cannot run on this machine (nothing is published)."""


class GateConfig(Strict):
    """Options every gate has. Each gate's Config subclasses this."""

    skip: str | None = Field(None, description="skip this gate; the reason is recorded in the manifest")


@dataclass
class GateResult:
    """A verdict with its figures. `failures` name the output, the figure and the threshold."""

    status: GateStatus
    figures: dict[str, Any] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    message: str = ""

    def __bool__(self) -> bool:
        return self.status == "passed"

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "passed": self.status == "passed",
            "message": self.message,
            "failures": self.failures,
            "figures": self.figures,
        }


@dataclass
class GateContext:
    """Everything a gate may read. `runner` and `golden` load lazily (they import numpy / ORT)."""

    recipe: Recipe
    target: str
    artifact_dir: Path
    artifact: str
    onnx_path: Path
    runner: Callable[[], Runner]
    golden: Callable[[], Golden]
    target_manifest: dict[str, Any] = field(default_factory=dict)
    output_kinds: dict[str, Any] = field(default_factory=dict)
    state: Path | None = None  # a folder in the cache for the gate's own state (e.g. the browser's GPU caches)
    fp32_onnx: Path | None = None
    """The fixed fp32 ONNX before the precision step (onnx_path is what the target compiled)."""
    report_dir: Path | None = None
    """The build's report folder for this target (`<out>/<recipe>/report/<target>/`): files a failure leaves
    for the user to read, e.g. a localization's single-node repro. None outside a build."""


class Gate(Plugin):
    """A validation gate. `targets`: the targets it applies to (None: all)."""

    Config = GateConfig
    targets: ClassVar[tuple[str, ...] | None] = None
    uses_golden: ClassVar[bool] = True
    before_compile: ClassVar[bool] = False
    recipe_reads: ClassVar[tuple[str, ...]] = ()
    reads_gates: ClassVar[tuple[str, ...]] = ()
    """Other gates' settings it reads (e.g. the parity tolerances it inherits): part of its step key."""
    """Recipe sections `check` reads besides input, export and its own target and settings: they join the key."""
    """True for lints of the fixed ONNX (e.g. trt-lint): they run before the target is built, on
    ctx.onnx_path, and a failure stops the build of that target."""

    @classmethod
    def not_applicable(cls, recipe: Recipe, target: str) -> str | None:
        """Why this gate does not apply to `target` of the whole `recipe`, decided at plan (the step then
        reports `not applicable` without running); None: it applies."""
        return None

    def check(self, ctx: GateContext) -> GateResult:
        raise NotImplementedError

    def input_files(self, recipe: Recipe) -> list[Path]:
        """Files the gate reads besides the artifact and the golden cases: their digests join its key."""
        return []
