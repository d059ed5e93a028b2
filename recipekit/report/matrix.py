"""Matrix cells from a run's step results, and the JSON / Markdown / terminal forms of them.

matrix.json (schema "recipekit.matrix/1"), one entry per (recipe, target) cell:
  recipe, target: names; status: passed | failed | unavailable | unverified | error | n/a
  (unavailable: the target cannot be built here; unverified: built, but a gate could not run here (not
  published), or published with a gate skipped: turned off by the recipe, its case not exercised, an
  int8 build's accuracy not judged; the reason lists them);
  reason: why it is not passed ("" when passed); seconds: wall time of the cell's steps (shared
  export/fix steps included); cached: no step of the cell ran (all from the cache, or not run);
  artifact: {path, sha256} of the published artifact, or null;
  gates: gate name -> {status, passed, message, failures, figures} as the gate recorded them;
  reference: what parity compares against ("PyTorch", or the source ONNX for an ONNX source).
Top level: schema, targets, recipes, overrides, cells, and counts per status.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SCHEMA = "recipekit.matrix/1"


@dataclass
class Cell:
    recipe: str
    target: str
    status: str
    reason: str = ""
    seconds: float = 0.0
    cached: bool = False
    artifact: dict[str, str] | None = None
    gates: dict[str, Any] = field(default_factory=dict)
    reference: str = ""  # what parity compares against: PyTorch, or the source ONNX for an ONNX source


def _gate_name(task: str) -> str:
    return task.rsplit(".", 1)[-1]


def _gate_why(task: str, result: dict[str, Any]) -> str:
    """'gate parity: <its failures>': the gate's own words, its name once."""
    gate = result.get("gate") or {}
    why = "; ".join(gate.get("failures") or []) or gate.get("message") or result.get("error", "")
    prefix = f"gate {_gate_name(task)} failed: "
    return f"gate {_gate_name(task)}: {why[len(prefix) :] if why.startswith(prefix) else why}"


def _verdict(tasks: list[str], results: dict[str, dict[str, Any]], publish: str) -> tuple[str, str]:
    pub = results.get(publish)
    if pub and pub["status"] in {"ran", "cached"}:
        return ("unverified", pub["reason"]) if pub.get("reason") else ("passed", "")
    failed = [t for t in tasks if results.get(t, {}).get("status", "").startswith("failed")]
    gates = [t for t in failed if ":gate:" in t or ":lint:" in t]
    if gates:
        return "failed", "; ".join(_gate_why(t, results[t]) for t in gates)
    if failed:
        return "error", "; ".join(f"{t}: {results[t].get('error', '')}" for t in failed)
    if pub and pub["status"] in {"unavailable", "unverified"}:
        return pub["status"], pub.get("reason", "")
    return "error", "not run (an earlier step failed)"


def failing_gates(c: Cell) -> list[tuple[str, dict[str, Any]]]:
    """The gates that failed this cell, in the order they ran: (name, the gate's record)."""
    return [(name, g) for name, g in c.gates.items() if isinstance(g, dict) and g.get("status") == "failed"]


def source_reference(tasks: list[str]) -> str:
    """The reference the cell's source computes (from its export step `<recipe>:export:<source kind>`)."""
    from recipekit.sources import SOURCES

    kinds = [t.rsplit(":", 1)[-1] for t in tasks if ":export:" in t]
    return getattr(SOURCES.get(kinds[0]), "reference_name", "PyTorch") if kinds and kinds[0] in SOURCES else ""


def cell(recipe: str, target: str, tasks: list[str], results: dict[str, dict[str, Any]], out_dir: Path) -> Cell:
    publish = f"{recipe}:publish:{target}"
    status, reason = _verdict(tasks, results, publish)
    ran = [results[t] for t in tasks if t in results]
    gates = {_gate_name(t): results[t]["gate"] for t in tasks if t in results and "gate" in results[t]}
    artifact = None
    if status == "passed" or (status == "unverified" and results[publish]["status"] in {"ran", "cached"}):
        m = json.loads((out_dir / recipe / target / "manifest.json").read_text())
        artifact = {"path": str(out_dir / recipe / target / m["artifact"]["path"]), "sha256": m["artifact"]["sha256"]}
    return Cell(
        recipe,
        target,
        status,
        reason,
        round(sum(r.get("seconds_wall", 0.0) for r in ran), 3),
        bool(ran) and not any(r["status"] in {"ran", "failed"} for r in ran),
        artifact,
        gates,
        source_reference(tasks),
    )


def to_json(cells: list[Cell], meta: dict[str, Any]) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for c in cells:
        counts[c.status] = counts.get(c.status, 0) + 1
    return {"schema": SCHEMA, **meta, "counts": counts, "cells": [asdict(c) for c in cells]}


def _short(c: Cell, width: int = 70) -> str:
    text = c.reason.replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


def to_markdown(cells: list[Cell]) -> str:
    lines = ["| recipe | target | status | time | cache | why |", "| --- | --- | --- | ---: | --- | --- |"]
    for c in cells:
        why = _short(c, 120).replace("|", "\\|")
        cache = "cached" if c.cached else "built"
        lines.append(f"| {c.recipe} | {c.target} | {c.status} | {c.seconds:.1f} s | {cache} | {why} |")
    return "\n".join(lines) + "\n"


def terminal(cells: list[Cell]) -> str:
    rows = [("recipe", "target", "status", "time", "cache", "why")]
    rows += [
        (c.recipe, c.target, c.status, f"{c.seconds:.1f}s", "cached" if c.cached else "built", _short(c)) for c in cells
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(r[:5], widths, strict=False)) + "  " + r[5] for r in rows)


def cell_record(c: Cell) -> dict[str, Any]:
    """A cell as one `--json` line (gates' figures left to matrix.json)."""
    return {
        "event": "cell",
        "recipe": c.recipe,
        "target": c.target,
        "status": c.status,
        "reason": c.reason,
        "seconds": c.seconds,
        "cached": c.cached,
        "artifact": c.artifact,
    }
