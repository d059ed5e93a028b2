"""Sensitivity: what each block of quantizable nodes costs the task metric when it alone is quantized.

Every block is quantized on its own (the rest of the graph float, the calibration ranges shared) and
scored against the fp32 model on the calibration images with the accuracy gate's task metric
(recipekit.precision.metric): its cost is the agreement it loses (1 - the worst task's headline:
mAP50-95 agreement, map IoU, top-1, exact match or cosine), with a labelled set the mAP50-95 it drops
against the labels, and its drift (how far it moves the outputs, continuously: it ranks blocks whose
agreement ties). Beside it stand its share of the fp32 model's kernel time (ONNX Runtime's profiler,
as measured) and of its multiply-accumulates (computed: the search's deterministic order). The
table is sorted most costly first, ties by name; that order is the search's
(recipekit.precision.search).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from recipekit.precision.evaluate import Evaluator, Score
    from recipekit.precision.int8 import Quantizer
    from recipekit.precision.nodes import Block

VERSION = "3"


def _cost(score: Score) -> float:
    return round(1.0 - score.agreement, 4) if score.agreement is not None else 1.0


def _ops(nodes: tuple[str, ...], op_of: dict[str, str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for n in nodes:
        out[op_of[n]] = out.get(op_of[n], 0) + 1
    return dict(sorted(out.items()))


def row(block: Block, score: Score, shares: tuple[dict, dict], op_of: dict[str, str]) -> dict[str, Any]:
    latency, compute = (sum(s.get(n, 0.0) for n in block.nodes) for s in shares)
    out = {
        "block": block.name,
        "nodes": list(block.nodes),
        "ops": _ops(block.nodes, op_of),
        "agreement": score.agreement,
        "cost": _cost(score),
        "drift": score.figures.get("drift"),
        "latency_share": round(latency, 4),
        "compute_share": round(compute, 4),
    }
    return {**out, "drop": score.drop} if score.drop is not None else out


def rank_key(r: dict[str, Any]) -> tuple[float, float, float, str]:
    """Most costly first: by labelled drop when there is one, then agreement lost, then drift (the
    agreement ties for blocks that move no box across the threshold), then by name."""
    return (-(r.get("drop") or 0.0), -r["cost"], -(r.get("drift") or 0.0), r["block"])


def measure(
    quantizer: Quantizer,
    evaluate: Evaluator,
    blocks: list[Block],
    shares: tuple[dict, dict],
    work: Path,
    splits: int = 0,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One row per block, most costly first, then `splits` times the costliest block of several nodes
    measured again in parts (its row replaced by theirs): finer where the cost is. `shares`: each
    node's latency share and compute share. Returns the rows and the blocks split (with their rows)."""
    import onnx

    from recipekit.precision.nodes import split as parts_of

    model = onnx.load(str(quantizer.model_path), load_external_data=False)
    op_of = {n.name: n.op_type for n in model.graph.node}

    def one(block: Block, parent: str | None = None) -> dict[str, Any]:
        path = work / "sensitivity.onnx"
        quantizer.write(path, only=list(block.nodes))
        out = row(block, evaluate(path), shares, op_of)
        path.unlink()
        return {**out, "parent": parent} if parent else out

    rows, split = [one(b) for b in blocks], []
    while len(split) < splits:
        costly = [r for r in sorted(rows, key=rank_key) if len(r["nodes"]) > 1]
        if not costly or (costly[0]["cost"] <= 0 and not costly[0].get("drop")):
            break
        parent = costly[0]
        parts = parts_of(parent["nodes"], SPLIT_PARTS)
        rows.remove(parent)
        rows += [one(b, parent["block"]) for b in parts]
        split.append({k: parent[k] for k in ("block", "cost", "agreement") if k in parent} | {"parts": len(parts)})
    return sorted(rows, key=rank_key), split


SPLIT_PARTS = 4
"""Parts a costly block is measured again in."""
