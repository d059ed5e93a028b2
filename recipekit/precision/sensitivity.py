"""Sensitivity: what each block of quantizable nodes costs the task metric when it alone is quantized.

Every block is quantized on its own (the rest of the graph float, the calibration ranges shared) and
scored against the fp32 model on the calibration images: its cost is the agreement it loses (1 -
mAP50-95 agreement), with a labelled set the mAP50-95 it drops against the labels, and how far it
moves the confident detections' scores (mean |change|, which ranks blocks whose agreement ties).
Beside it stands its share of the fp32 model's kernel time. The table is sorted most costly first; that order
is the search's (recipekit.precision.search).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from recipekit.precision.evaluate import Evaluator, Score
    from recipekit.precision.int8 import Quantizer
    from recipekit.precision.nodes import Block

VERSION = "2"


def _cost(score: Score) -> float:
    return round(1.0 - score.agreement, 4) if score.agreement is not None else 1.0


def _ops(nodes: tuple[str, ...], op_of: dict[str, str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for n in nodes:
        out[op_of[n]] = out.get(op_of[n], 0) + 1
    return dict(sorted(out.items()))


def row(block: Block, score: Score, share: float, op_of: dict[str, str]) -> dict[str, Any]:
    out = {
        "block": block.name,
        "nodes": list(block.nodes),
        "ops": _ops(block.nodes, op_of),
        "agreement": score.agreement,
        "cost": _cost(score),
        "score_shift": score.figures.get("score_shift"),
        "latency_share": round(share, 4),
    }
    return {**out, "drop": score.drop} if score.drop is not None else out


def rank_key(r: dict[str, Any]) -> tuple[float, float, float]:
    """Most costly first: by labelled drop when there is one, then agreement lost, then how far the
    confident scores moved (the agreement ties for blocks that move no box across the threshold)."""
    return (-(r.get("drop") or 0.0), -r["cost"], -(r.get("score_shift") or 0.0))


def measure(
    quantizer: Quantizer, evaluate: Evaluator, blocks: list[Block], shares: dict[str, float], work: Path
) -> list[dict[str, Any]]:
    """One row per block, most costly first."""
    import onnx

    model = onnx.load(str(quantizer.model_path), load_external_data=False)
    op_of = {n.name: n.op_type for n in model.graph.node}
    rows = []
    for i, block in enumerate(blocks):
        path = work / f"sensitivity-{i}.onnx"
        quantizer.write(path, only=list(block.nodes))
        rows.append(row(block, evaluate(path), sum(shares.get(n, 0.0) for n in block.nodes), op_of))
        path.unlink()
    return sorted(rows, key=rank_key)


def table(rows: list[dict[str, Any]], limit: int = 12) -> str:
    """The most costly rows as a Markdown table (the build's figures and the reports show it)."""
    lab = any("drop" in r for r in rows)
    head = "| block | nodes | cost (1 - agreement) |" + (" mAP drop |" if lab else "") + " latency share |"
    lines = [head, "| --- | ---: | ---: |" + (" ---: |" if lab else "") + " ---: |"]
    for r in rows[:limit]:
        drop = f" {r['drop']:.4f} |" if lab else ""
        lines.append(f"| {r['block']} | {len(r['nodes'])} | {r['cost']:.4f} |{drop} {r['latency_share']:.1%} |")
    if len(rows) > limit:
        lines.append(f"| ({len(rows) - limit} more blocks) | | |" + (" |" if lab else "") + " |")
    return "\n".join(lines)
