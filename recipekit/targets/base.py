"""The contract of a target.

`build` reads the fixed ONNX and writes the artifact's files into `out` (a fresh folder the cache
renames into place). Where the runtime cannot run here (no GPU), it raises `Unavailable(reason)`:
the target's status is then `unavailable`, never passed. `runner` gives the gates a way to run the
built artifact; the default runs the artifact's ONNX file in ONNX Runtime on the CPU.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from recipekit.core.plugin import Plugin

if TYPE_CHECKING:
    from recipekit.onnx.golden import Golden
    from recipekit.onnx.runtime import Runner
    from recipekit.recipe.schema import Recipe


@dataclass(frozen=True)
class TargetContext:
    """What a target may read: the recipe, a folder in recipekit's cache for its own state (e.g. a
    TensorRT timing cache), and the golden cases (reference inputs and source outputs)."""

    recipe: Recipe
    state_dir: Path
    golden: Callable[[], Golden]
    output_kinds: dict[str, Any] = field(default_factory=dict)


@dataclass
class BuildResult:
    """`artifact`: the main file's name in `out`; `manifest`: target facts for manifest.json."""

    artifact: str
    manifest: dict[str, Any] = field(default_factory=dict)


class Target(Plugin):
    """A deployment target. `default_gates` run unless the recipe configures or skips them."""

    default_gates: ClassVar[tuple[str, ...]] = ("parity",)
    uses_golden: ClassVar[bool] = False
    """True when `build` reads ctx.golden() (e.g. a bundle that ships reference outputs)."""
    reads_samples: ClassVar[bool] = False
    """True when `build` reads the sample images (copies one, calibrates on them): their bytes join the key."""
    reads_gates: ClassVar[tuple[str, ...]] = ()
    """Gates whose recipe settings `build` reads (e.g. parity tolerances a bundle ships): they join the key."""
    recipe_reads: ClassVar[tuple[str, ...]] = ()
    """Further recipe sections `build` reads besides input and export (e.g. "name")."""
    int8_activations: ClassVar[str | None] = None
    """The INT8 QDQ activations this target compiles (None: the recipe's). When the recipe's differ, the
    precision step also writes that QDQ with the same float nodes, and this target compiles it."""

    @classmethod
    def refuses(cls, recipe: Recipe) -> str | None:
        """Why this target cannot take `recipe` at all (None: it can). Used by `recipekit matrix`."""
        return cls.refuses_precision(recipe)

    @classmethod
    def refuses_precision(cls, recipe: Recipe) -> str | None:
        """Why this target cannot run the recipe's export.precision (refused at plan; None: it can)."""
        return None

    def build(self, onnx_path: Path, out: Path, ctx: TargetContext) -> BuildResult:
        raise NotImplementedError

    def runner(self, artifact_dir: Path, result: BuildResult, ctx: TargetContext) -> Runner:
        """Run the built artifact for the gates (default: its ONNX file in ONNX Runtime, CPU)."""
        from recipekit.onnx.runtime import OrtRunner

        return OrtRunner(artifact_dir / result.artifact)
