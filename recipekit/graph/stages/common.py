"""What several stages share: key parts, the source plugin, source-fix patches, sample files, golden."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recipekit.core.errors import StepFailed

if TYPE_CHECKING:
    from recipekit.graph.context import StepContext
    from recipekit.graph.results import FixRecord
    from recipekit.onnx.golden import Golden
    from recipekit.recipe.schema import Recipe

ONNX_TOOLS = ("onnx", "onnxruntime", "onnxslim", "onnx-ir", "numpy")


@dataclass(frozen=True)
class KeyParts:
    """What a step's key hashes besides its config and upstream keys."""

    version: Any
    tools: dict[str, Any]
    files: dict[str, Path] = field(default_factory=dict)  # declared input files: name -> path
    environment: dict[str, Any] = field(default_factory=dict)


def source_plugin(recipe: Recipe) -> Any:
    from recipekit.sources import SOURCES

    return SOURCES.get(recipe.source.kind)(recipe.source)  # type: ignore[attr-defined]


def fix_versions(items: list[dict[str, Any]]) -> dict[str, str]:
    from recipekit.fixes import FIXES

    return {i["name"]: FIXES.get(i["name"]).version for i in items}


def _name(prefix: str, path: Path, base: Path) -> str:
    try:
        return f"{prefix}/{path.relative_to(base).as_posix()}"
    except ValueError:
        return f"{prefix}/{path.as_posix()}"


def weight_files(recipe: Recipe) -> dict[str, Path]:
    base = Path(recipe.base_dir).resolve()
    return {_name("weights", p, base): Path(p) for p in source_plugin(recipe).weight_files(base)}


def sample_files(recipe: Recipe) -> dict[str, Path]:
    """The recipe's sample images (what `input.samples` names, resolved): files keys hash by content."""
    from recipekit.onnx.preprocess import resolve_sample

    base = Path(recipe.base_dir or ".")
    return {f"samples/{spec}": resolve_sample(spec, base) for spec in recipe.input.samples}


def source_patches(ctx: StepContext) -> tuple[list[Any], list[FixRecord]]:
    """Context managers of the applicable source fixes, and what each fix's precondition said."""
    from recipekit.fixes import FIXES
    from recipekit.fixes.base import FixContext
    from recipekit.graph.results import FixRecord

    fctx, patches, records = FixContext(ctx.recipe), [], []
    for item in ctx.config["source_fixes"]:
        cls = FIXES.get(item["name"])
        fix = cls(cls.Config.model_validate(item["config"]))
        check = fix.check(fctx)
        if check.status == "cannot-apply":
            raise StepFailed(ctx.task, f"fix {item['name']} cannot apply: {check.why}")
        if check.status == "applies":
            patches.append(fix.patch(fctx))
        status = "applied" if check.status == "applies" else "not-needed"
        records.append(FixRecord(name=item["name"], stage="source", status=status, why=check.why))
    return patches, records


def golden_loader(ctx: StepContext) -> Callable[[], Golden]:
    from recipekit.onnx.golden import Golden

    def load() -> Golden:
        if "golden" not in ctx.upstream:
            raise RuntimeError(f"{ctx.task} reads golden cases but does not declare it (plugin uses_golden)")
        return Golden.load(ctx.up("golden").path)  # type: ignore[arg-type]

    return load
