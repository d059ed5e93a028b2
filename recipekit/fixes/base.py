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
    bundles: ClassVar[tuple[str, ...] | None] = None
    """The onnxruntime-web bundles whose defect this fix works around (measured, README "WebGPU"); None: not
    a workaround of one runtime's defect, so always checked. A recipe whose webgpu target ships none of them
    records the fix `not-needed` and leaves the graph as it is (`not_needed`)."""

    def check(self, model: onnx.ModelProto, ctx: FixContext) -> Check:
        raise NotImplementedError

    def apply(self, model: onnx.ModelProto, ctx: FixContext) -> onnx.ModelProto:
        raise NotImplementedError

    def guarantee(self, model: onnx.ModelProto, ctx: FixContext) -> Guarantee:
        raise NotImplementedError


def shipped_bundles(recipe: Recipe) -> list[str]:
    """The onnxruntime-web bundles the recipe's webgpu target ships (none without a webgpu target).

    Read from the target's validated config, whose default is the target's default bundle."""
    entry = recipe.targets.get("webgpu")
    bundle = getattr(entry.config, "bundle", None) if entry is not None else None
    return [str(bundle)] if bundle else []


def chain_bundles(recipe: Recipe, names: list[str]) -> dict[str, list[str]]:
    """{"bundles": the bundles the recipe ships} when a fix among `names` works around a bundle's defect
    (the fix step's config: hashed into its key, read by `not_needed`), else {}."""
    from recipekit.fixes import FIXES

    if all(getattr(FIXES.get(n), "bundles", None) is None for n in names):
        return {}
    return {"bundles": shipped_bundles(recipe)}


def not_needed(fix: type[OnnxFix] | type[SourceFix], shipped: list[str]) -> str:
    """Why a bundle workaround is not needed when the recipe ships the bundles `shipped` ("" when it is
    needed, or the fix is no workaround)."""
    wanted = getattr(fix, "bundles", None)
    if wanted is None:
        return ""
    if any(b in wanted for b in shipped):
        return ""
    which = "/".join(wanted)
    if not shipped:
        return f"works around a defect of onnxruntime-web's {which} bundle, and the recipe has no webgpu target"
    return (
        f"works around a defect of onnxruntime-web's {which} bundle; the webgpu target ships the "
        f"{shipped[0]!r} bundle, which has no such defect (measured)"
    )


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
