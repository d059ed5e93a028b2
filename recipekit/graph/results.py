"""Typed step results: what each step kind hands the steps after it (stored in meta.json as JSON).

A stage reads its upstreams through these models (`ctx.up("export").result.output_kinds`), never
through nested string-keyed dicts, so a renamed field is an error where it is read, not a silent
default. `ExportResult.output_kinds` stays a plain JSON mapping until the output-semantics model
(recipekit/recipe/outputs.py) types it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Result(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class FixRecord(Result):
    """One fix of the chain: applied or not needed, node counts, its guarantee's verdict."""

    name: str
    stage: Literal["onnx", "source"]
    status: Literal["applied", "not-needed"]
    why: str = ""
    nodes_before: int | None = None
    nodes_after: int | None = None
    guarantee: dict[str, Any] | None = None


class ExportResult(Result):
    inputs: list[str]
    outputs: list[str]
    output_kinds: dict[str, dict[str, Any]] = Field(default_factory=dict)
    notes: dict[str, Any] = Field(default_factory=dict)
    init: str
    source_fixes: list[FixRecord] = Field(default_factory=list)


class GoldenResult(Result):
    cases: int
    output_names: list[str]


class TensorInfo(Result):
    name: str
    shape: list[int | str | None]
    dtype: str


class IOInfo(Result):
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]


class FixResult(Result):
    fixes: list[FixRecord]
    io: IOInfo
    nodes: int


class PrecisionResult(Result):
    """The precision step: what the conversion did (Q/DQ counts, fp16 weights) and its calibration images."""

    precision: Literal["fp16", "int8"]
    summary: dict[str, Any] = Field(default_factory=dict)
    calibration_images: list[str] = Field(default_factory=list)
    sensitivity: dict[str, Any] | None = None  # INT8: each block's cost to the task metric (precision.placement)
    search: dict[str, Any] | None = None  # INT8 with a goal: the float nodes chosen, the agreement, the latency


class CompileResult(Result):
    """`artifact`: the main file's name in the entry; `manifest`: the target's facts for manifest.json."""

    artifact: str
    manifest: dict[str, Any] = Field(default_factory=dict)


class GateOutcome(Result):
    status: Literal["passed", "failed", "unavailable", "skipped", "not applicable"]
    passed: bool = False
    message: str = ""
    failures: list[str] = Field(default_factory=list)
    figures: dict[str, Any] = Field(default_factory=dict)


RESULTS: dict[str, type[Result]] = {
    "export": ExportResult,
    "golden": GoldenResult,
    "fix": FixResult,
    "precision": PrecisionResult,
    "compile": CompileResult,
    "gate": GateOutcome,
}
"""Step kind -> its result model. A new step kind adds its line here."""


def result_type(role_or_kind: str) -> type[Result] | None:
    """The result model of an upstream role (`export`, `fix`, `lint.trt-lint`, `gate.parity`, ...)."""
    kind = role_or_kind.split(".", 1)[0]
    return RESULTS.get("gate" if kind in ("lint", "gate") else kind)


@dataclass
class Outcome:
    """What a run did (any executor): each task's result (status, seconds, error) in finishing order."""

    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    exit_code: int = 0

    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.results.values() if r["status"].startswith(("failed", "blocked"))]
