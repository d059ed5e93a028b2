"""trt-lint: what TensorRT's ONNX parser would refuse, found before any engine or Jetson bundle is made.

Runs on the fixed ONNX (no GPU, no TensorRT): the `static-dims` checks (every Conv input has a known
channel count; dims dynamic only where the recipe says), ops outside the parser's support table
(onnx-tensorrt docs/operators.md, stored in ops.json with its source), the opset range, and
the target's optimization profiles against the ONNX input's static axes. The `trt` and `trt-jetson`
targets run it again inside their build, so a lint failure also stops a build that skipped the step.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field

from recipekit.core.errors import GateFailed
from recipekit.gates.base import Gate, GateConfig, GateContext, GateResult

if TYPE_CHECKING:
    import onnx

    from recipekit.recipe.schema import Recipe


class TrtLintConfig(GateConfig):
    allow_ops: list[str] = Field(
        default_factory=list,
        description="op types to accept although the parser table marks them unsupported (e.g. implemented by a "
        "TensorRT plugin you ship)",
    )


class TrtLint(Gate):
    """Static checks against TensorRT's ONNX parser; the verdict names each node it refuses."""

    name: ClassVar[str] = "trt-lint"
    version: ClassVar[str] = "1"
    Config = TrtLintConfig
    targets: ClassVar[tuple[str, ...] | None] = ("trt", "trt-jetson")
    uses_golden: ClassVar[bool] = False
    before_compile: ClassVar[bool] = True

    def check(self, ctx: GateContext) -> GateResult:
        from recipekit.gates.dims import load

        return lint(load(ctx.onnx_path), ctx.recipe, ctx.target, self.config)


@lru_cache(maxsize=1)
def op_table() -> dict[str, Any]:
    return json.loads((Path(__file__).with_name("ops.json")).read_text())


def op_findings(model: onnx.ModelProto, allow: list[str]) -> tuple[list[str], dict[str, str]]:
    """Nodes whose op the parser does not support, and (as figures) the restrictions of ops used."""
    table, bad, notes = op_table()["operators"], {}, {}
    for node in model.graph.node:
        op, domain = node.op_type, node.domain or "ai.onnx"
        entry = table.get(op) if domain == "ai.onnx" else None
        if op in allow:
            continue
        if domain != "ai.onnx":
            bad.setdefault(f"{domain}::{op}", []).append(node.name)
        elif entry is None or not entry["supported"]:
            bad.setdefault(op, []).append(node.name)
        elif entry.get("restrictions"):
            notes[op] = entry["restrictions"]
    findings = [
        f"op {op} is not supported by TensorRT's ONNX parser ({op_table()['tensorrt']} table): "
        f"{len(names)} node(s), e.g. {', '.join(repr(n) for n in names[:3])}"
        for op, names in bad.items()
    ]
    return findings, notes


def opset_findings(model: onnx.ModelProto) -> list[str]:
    table = op_table()
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if opset is not None and not table["opset_min"] <= opset <= table["opset_max"]:
        return [
            f"opset {opset} is outside the range the TensorRT {table['tensorrt']} parser table covers "
            f"({table['opset_min']}..{table['opset_max']})"
        ]
    return []


def target_profiles(model: onnx.ModelProto, recipe: Recipe, target: str) -> list[Any]:
    from recipekit.targets.trt.profiles import shape_profiles

    entry = recipe.targets.get(target)
    configured = getattr(entry.config, "profiles", []) if entry else []
    return shape_profiles(model, recipe, configured)


def lint(model: onnx.ModelProto, recipe: Recipe, target: str, config: TrtLintConfig) -> GateResult:
    from recipekit.gates.dims import Expect
    from recipekit.gates.static_dims import dims_findings
    from recipekit.targets.trt.profiles import profile_findings

    dims, figures = dims_findings(model, Expect.of(recipe))
    ops, notes = op_findings(model, config.allow_ops)
    profiles = target_profiles(model, recipe, target)
    failures = dims + ops + opset_findings(model) + profile_findings(model, profiles)
    figures.update(
        {"op_table": op_table()["source"], "op_restrictions": notes, "profiles": [p.to_json() for p in profiles]}
    )
    msg = (
        f"{len(failures)} problem(s) TensorRT's parser would refuse"
        if failures
        else f"parser-ready: {figures['convs_checked']} Conv inputs known, all ops supported, {len(profiles)} "
        "profile(s) fit"
    )
    return GateResult("failed" if failures else "passed", figures=figures, failures=failures, message=msg)


def require_lint(onnx_path: Path, recipe: Recipe, target: str) -> GateResult:
    """Run the lint with the recipe's settings for `target`; raise GateFailed when it fails."""
    from recipekit.gates.dims import load

    entry = recipe.targets.get(target)
    config: Any = (entry.gates.get("trt-lint") if entry else None) or recipe.gates.get("trt-lint") or TrtLintConfig()
    if config.skip:
        return GateResult("skipped", message=config.skip)
    result = lint(load(onnx_path), recipe, target, config)
    if not result:
        raise GateFailed(f"trt-lint refused the model for {target}: " + "; ".join(result.failures))
    return result
