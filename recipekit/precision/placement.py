"""Where INT8 goes: the sensitivity table of an INT8 build and, with a goal, the searched float nodes.

The precision step calls `Placement(...)` once: the fp32 model (unnamed nodes named, so the quantizer
can select them), the calibration tensors, the images candidates are scored on and the task
metric's options. `plain_meets(...)` answers a goal plain INT8 already meets (no table, no
search), `sensitivity()` measures the table (the step caches it under the keys of its inputs),
`searched(...)` runs the search for the recipe's goal and writes the model, `plain(...)` writes
plain INT8, `twin(...)` the same float nodes with the activations TensorRT takes. Latency is
measured on ONNX Runtime's CPU, fp32 and INT8 side by side, after the search.
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recipekit.precision.evaluate import Aim, Evaluator, Images

if TYPE_CHECKING:
    from collections.abc import Iterator

    import numpy as np

    from recipekit.precision.evaluate import Score
    from recipekit.recipe.schema import Quantization


class Unreachable(ValueError):
    """The goal cannot be met within the float budget (or the latency bound): the message says how close."""


class NoMetric(ValueError):
    """The model has no task metric here, or its reference detects nothing: nothing to rank nodes by."""


@contextmanager
def quiet_quantizer() -> Iterator[None]:
    """ONNX Runtime's quantizer logs a pre-processing hint on the root logger at every call."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def _named_copy(src: Path, work: Path) -> Path:
    import onnx

    from recipekit.precision.nodes import named

    model = onnx.load(str(src))
    if not named(model):
        return src
    onnx.save(model, str(work / "named.onnx"))
    return work / "named.onnx"


class Placement:
    """One INT8 build's quantizer (calibrated once) and evaluator (the fp32 outputs computed once, when
    first needed: a cached table and no goal run nothing but the plain quantization)."""

    def __init__(
        self,
        src: Path,
        work: Path,
        calib: list[np.ndarray],
        scored: Images,
        q: Quantization,
        kinds: dict[str, Any],
        metric: dict[str, Any],
        labelled: Images | None = None,
    ) -> None:
        from recipekit.precision.int8 import Quantizer

        self.work, self.q, self.scored = work, q, scored
        self.model = _named_copy(src, work)
        self.quantizer = Quantizer(self.model, calib, q, work)
        self.evaluate = Evaluator(self.model, scored, kinds, metric["measure"], Aim(metric["judge"]), labelled)
        goal = q.goal
        self.aim = Aim(metric["judge"], goal.min_agreement, goal.max_drop) if goal else self.evaluate.aim

    def write(self, out: Path, keep_float: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
        with quiet_quantizer():
            return self.quantizer.write(out, keep_float)

    def score_of(self, keep_float: list[str]) -> Score:
        path = self.work / "candidate.onnx"
        self.write(path, keep_float)
        return self.evaluate(path, self.aim)

    def sensitivity(self) -> dict[str, Any]:
        """The table: one row per block, most costly first, with what it rests on."""
        from recipekit.precision import latency, nodes
        from recipekit.precision import sensitivity as sens
        from recipekit.precision.metric import NoTaskMetric, rests_on

        t0 = time.perf_counter()
        try:
            ref = self.evaluate.reference_score()
        except NoTaskMetric as exc:
            return {"measured": False, "why": str(exc)}
        base = {"images": len(self.scored.tensors), "rests_on": rests_on(ref.figures), "reference": ref.short()}
        if ref.failures:  # fp32 against itself fails: no candidate can be judged on these images
            why = "; ".join(ref.failures)
            return {"measured": False, "why": f"the fp32 model against itself on the calibration images: {why}", **base}
        names, cfg = nodes.quantizable(self.model, self.q), self.q.sensitivity
        blocks = nodes.blocks(names, cfg.blocks if cfg else 0)
        shares = latency.node_shares(self.model, self.scored.tensors[0])
        compute = nodes.compute_shares(self.model, self.scored.tensors[0])
        plain = self.work / "plain.onnx"
        self.write(plain)
        with quiet_quantizer():
            rows, split = sens.measure(
                self.quantizer, self.evaluate, blocks, (shares, compute), self.work, cfg.splits if cfg else 0
            )
        return {
            "measured": True,
            "metric": _metric_text(ref),
            **base,
            "quantizable_nodes": len(names),
            "plain": self.evaluate(plain).short(),
            "blocks": rows,
            "split": split,
            "compute_shares": {n: round(compute.get(n, 0.0), 6) for n in names},
            "evaluations": len(blocks) + sum(s["parts"] for s in split) + 1,
            "seconds": round(time.perf_counter() - t0, 1),
        }

    def plain(self, out: Path) -> dict[str, Any]:
        return self.write(out)

    def plain_meets(self, goal: Any, out: Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]] | None:
        """When plain INT8 already meets the goal, no node needs to stay float: no table, no search. Returns
        (the quantizer's summary, the search record, the table's stand-in), or None."""
        from recipekit.precision.metric import rests_on
        from recipekit.precision.search import Goal

        score = self.score_of([])
        if score.failures:
            return None
        trial = {"stage": "plain", "float_nodes": 0, **score.short(), "met": True}
        table = {
            "measured": False,
            "why": "plain INT8 meets the goal: no node needs to stay float (sensitivity.when: always measures it)",
            "images": len(self.scored.tensors),
            "rests_on": rests_on(score.figures),
            "plain": score.short(),
        }
        aim = Goal(goal.min_agreement, goal.max_drop, 0)
        return (*self._chosen(goal, aim, [], score, [trial], out), table)

    def searched(self, table: dict[str, Any], goal: Any, out: Path) -> tuple[dict[str, Any], dict[str, Any]]:
        """Search, write the chosen model to `out`, time it: (the quantizer's summary, the search record)."""
        from recipekit.precision.search import Goal, Search

        if not table.get("measured"):
            raise NoMetric(f"cannot search: {table.get('why')}")
        budget = int(goal.max_float * table["quantizable_nodes"])
        aim = Goal(goal.min_agreement, goal.max_drop, budget)
        outcome = Search(table["blocks"], aim, self.score_of, table.get("compute_shares")).run()
        if not outcome.met:
            raise Unreachable(_unreached(aim, outcome, budget, table))
        return self._chosen(goal, aim, outcome.nodes, outcome.score, outcome.trials, out)

    def _chosen(
        self, goal: Any, aim: Any, nodes: list[str], score: Score, trials: list, out: Path
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Write the chosen model, time it beside fp32 and plain INT8: (the summary, the search record)."""
        summary = self.write(out, nodes)
        record = {"goal": goal.model_dump(mode="json"), "met": True, "trials": trials, "float_nodes": nodes}
        record.update(**score.short(), latency=self.latency(out))
        ratio = record["latency"]["ratio"]
        if goal.max_latency_ratio is not None and ratio > goal.max_latency_ratio:
            raise Unreachable(
                f"{aim.describe()} needs {len(nodes)} float nodes, and the model runs at {ratio:.2f}x fp32 "
                f"latency > max_latency_ratio {goal.max_latency_ratio} (ONNX Runtime CPU, "
                f"{record['latency']['threads']} threads)"
            )
        return summary, record

    def twin(self, activations: str, keep_float: list[str], out: Path, table: dict[str, Any]) -> dict[str, Any]:
        """The same float nodes quantized with other activations (TensorRT's symmetric QDQ beside uint8 for
        ONNX Runtime), scored as the search scores; with a goal it must hold there too."""
        with quiet_quantizer():
            summary = self.quantizer.twin(activations).write(out, keep_float)
        record = {**summary, "file": out.name, "float_nodes": len(keep_float)}
        if self.q.goal is None and not table.get("measured"):
            return record
        score = self.evaluate(out, self.aim)
        if self.q.goal is not None and score.failures:
            raise Unreachable(
                f"the {activations} QDQ the TensorRT targets compile, with the same {len(keep_float)} float nodes, "
                f"misses the goal: {'; '.join(score.failures)} (set export.quantization.activations: {activations} "
                "to search on it, or build the trt targets from a recipe of their own)"
            )
        return {**record, **score.short()}

    def latency(self, model: Path, runs: int = 10) -> dict[str, Any]:
        from recipekit.precision import latency

        plain = self.work / "plain-for-latency.onnx"
        self.write(plain)
        ms = latency.medians({"fp32": self.model, "plain": plain, "searched": model}, self.scored.tensors[0], runs)
        return {
            "fp32_ms": ms["fp32"],
            "plain_int8_ms": ms["plain"],
            "int8_ms": ms["searched"],
            "ratio": round(ms["searched"] / ms["fp32"], 3),
            "plain_ratio": round(ms["plain"] / ms["fp32"], 3),
            "threads": latency.threads(),
            "runs": runs,
            "runtime": "onnxruntime CPU, all graph optimizations, median",
        }


def _metric_text(ref: Score) -> str:
    """What the table's cost is, per task kind."""
    names = {
        "map50_95": "mAP50-95 agreement with the fp32 model, both directions",
        "iou": "binarized map IoU with the fp32 model",
        "top1": "top-1 agreement with the fp32 model",
        "exact_match": "greedy-CTC exact-match rate against the fp32 model",
        "cosine": "cosine similarity with the fp32 model",
    }
    text = "; ".join(f"{n}: {names[f['metric']]}" for n, f in ref.figures["tasks"].items())
    return text + ("; mAP50-95 drop against the labelled set" if ref.drop is not None else "")


def _unreached(aim: Any, outcome: Any, budget: int, table: dict[str, Any]) -> str:
    nodes, best = outcome.best or ([], outcome.score)
    got = f"best agreement {best.agreement}" + (f", labelled drop {best.drop}" if best.drop is not None else "")
    why = f" (failing: {'; '.join(best.failures)})" if best.failures else ""
    most = max((t["float_nodes"] for t in outcome.trials), default=0)
    return (
        f"goal not reached: {aim.describe()}; {got} with {len(nodes)} node(s) float{why} "
        f"({len(outcome.trials)} float-node sets tried, up to {most} nodes float; at most {budget} of "
        f"{table['quantizable_nodes']} may stay float: max_float); plain INT8 {table['plain'].get('agreement')}; "
        f"measured on {table['rests_on']}"
    )
