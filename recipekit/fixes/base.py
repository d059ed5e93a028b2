"""The contract of a fix.

A fix declares its `stage`: "onnx" fixes rewrite the exported graph (check -> apply -> guarantee);
"source" fixes patch the source library while the model is built and exported (check -> patch,
entered by the export step; guarantee, checked by the fix step on the exported graph). A fix
never changes its input: `apply` returns a new model. The fix step records, per fix, whether it
applied or was not needed, node counts before and after, and the guarantee's verdict.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

from recipekit.core.plugin import Plugin

if TYPE_CHECKING:
    import onnx

    from recipekit.recipe.schema import Recipe

Status = Literal["applies", "not-needed", "cannot-apply"]


@dataclass(frozen=True)
class Check:
    """A precondition's verdict: does the fix apply to this model, and why (not)."""

    status: Status
    why: str = ""


@dataclass(frozen=True)
class Guarantee:
    """What a fix promises about its result, checked on the result."""

    ok: bool
    detail: str


@dataclass(frozen=True)
class FixContext:
    """What a fix may read: the resolved recipe (declared shapes, batch profile, opset)."""

    recipe: Recipe


class OnnxFix(Plugin):
    """A rewrite of the exported ONNX graph."""

    stage: ClassVar[Literal["onnx", "source"]] = "onnx"
    summary: ClassVar[str] = ""

    def check(self, model: onnx.ModelProto, ctx: FixContext) -> Check:
        raise NotImplementedError

    def apply(self, model: onnx.ModelProto, ctx: FixContext) -> onnx.ModelProto:
        raise NotImplementedError

    def guarantee(self, model: onnx.ModelProto, ctx: FixContext) -> Guarantee:
        raise NotImplementedError


class SourceFix(Plugin):
    """A patch of the source library, active while the source model is built and exported."""

    stage: ClassVar[Literal["onnx", "source"]] = "source"
    summary: ClassVar[str] = ""

    def check(self, ctx: FixContext) -> Check:
        """Does the installed library have the defect (version, code shape)?"""
        raise NotImplementedError

    def patch(self, ctx: FixContext) -> AbstractContextManager[None]:
        """A context manager that applies the patch and undoes it on exit (export and golden steps)."""
        raise NotImplementedError

    def guarantee(self, model: onnx.ModelProto, ctx: FixContext) -> Guarantee:
        """Checked by the fix step on the graph exported with the patch active."""
        raise NotImplementedError
