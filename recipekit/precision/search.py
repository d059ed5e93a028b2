"""The search: the fewest, most sensitive blocks kept float until the task metric meets the goal.

Blocks are taken in the sensitivity table's order (most costly first, ties by name; the table is
finer where the cost is). The search finds the shortest prefix that meets the goal (plain INT8
first, then prefixes of 1, 2, 4, ... blocks, then a bisection between the last prefix that missed
and the first that met), then tries to quantize each chosen block again, least costly first,
keeping it quantized where the goal still holds (a block that only mattered together with another
is dropped), then parts of the blocks left, coarse to fine down to single nodes, the largest share
of the multiply-accumulates first (computed, not timed: the same table gives the same float nodes
on any machine): what stays float is what the goal needs, node by node, in a few trials per level.
"Meets" is the evaluator's verdict: the accuracy gate's rules and the goal's bounds (Score.failures).
A goal that needs more float nodes than `max_float` allows is unreachable: the search reports the
best it measured.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from recipekit.precision.evaluate import Score


@dataclass(frozen=True)
class Goal:
    """A goal: a candidate meets it when its score has no failure (the evaluator judges it with the
    accuracy gate's rules and the goal's bounds); at most `max_float_nodes` nodes may stay float."""

    min_agreement: float | None
    max_drop: float | None
    max_float_nodes: int

    def met(self, s: Score) -> bool:
        return not s.failures

    def describe(self) -> str:
        parts = [f"agreement >= {self.min_agreement}"] if self.min_agreement is not None else []
        parts += [f"labelled mAP50-95 drop <= {self.max_drop}"] if self.max_drop is not None else []
        return " and ".join(parts) + " under the accuracy gate's rules"


REFINE_LEVELS = (4, 16, 0)
"""Blocks per refinement level (0: every node alone)."""


def _badness(s: Score) -> tuple[float, float, int]:
    return (
        (s.drop if s.drop is not None else 0.0),
        -(s.agreement if s.agreement is not None else 0.0),
        len(s.failures),
    )


@dataclass
class Outcome:
    met: bool
    nodes: list[str]  # kept float
    score: Score
    trials: list[dict[str, Any]] = field(default_factory=list)
    best: tuple[list[str], Score] | None = None  # the best measured within max_float when not met


class Search:
    """Scores float-node sets (each once) through `score_of(nodes)`. `shares`: each node's share of the
    fp32 model's multiply-accumulates (the refinement quantizes the costliest-to-keep-float nodes first)."""

    def __init__(
        self,
        rows: list[dict[str, Any]],
        goal: Goal,
        score_of: Callable[[list[str]], Score],
        shares: dict[str, float] | None = None,
    ) -> None:
        self.rows, self.goal, self.score_of, self.shares = rows, goal, score_of, shares or {}
        self.trials: list[dict[str, Any]] = []
        self._seen: dict[tuple[str, ...], Score] = {}
        self._by = {r["block"]: list(r["nodes"]) for r in rows}

    def nodes(self, blocks: list[str]) -> list[str]:
        return [n for b in blocks for n in self._by[b]]

    def trial(self, nodes: list[str], stage: str) -> Score:
        key = tuple(sorted(nodes))
        if key not in self._seen:
            s = self._seen[key] = self.score_of(list(key))
            self.trials.append({"stage": stage, "float_nodes": len(key), **s.short(), "met": self.goal.met(s)})
        return self._seen[key]

    def _met(self, blocks: list[str], stage: str) -> bool:
        return self.goal.met(self.trial(self.nodes(blocks), stage))

    def _prefix(self) -> int | None:
        """The shortest prefix of the ranked blocks that meets the goal, within max_float; None if none."""
        names = [r["block"] for r in self.rows]
        fits = [n for n in range(len(names) + 1) if len(self.nodes(names[:n])) <= self.goal.max_float_nodes]
        limit = max(fits, default=0)
        low, k = 0, 0  # low: a length known to miss
        while not self._met(names[:k], "prefix"):
            if k >= limit:
                return None
            low, k = k, min(limit, max(1, 2 * k))
        high = k
        while high - low > 1:
            mid = (low + high) // 2
            low, high = (low, mid) if self._met(names[:mid], "prefix") else (mid, high)
        return high

    def _prune(self, chosen: list[str]) -> list[str]:
        """Quantize again each chosen block, least costly first, where the goal still holds."""
        for block in list(reversed(chosen)):
            rest = [b for b in chosen if b != block]
            if self._met(rest, "prune blocks"):
                chosen = rest
        return chosen

    def _refine(self, nodes: list[str]) -> list[str]:
        """Then parts of the blocks left, coarse to fine (a handful of scopes, more, then single nodes),
        each tried quantized, the largest latency share first: a few trials per level, not one per node."""
        from recipekit.precision.nodes import blocks

        for budget in REFINE_LEVELS:
            if len(nodes) < 2:
                break
            parts = blocks(nodes, budget)
            for part in sorted(parts, key=lambda b: (-sum(self.shares.get(n, 0.0) for n in b.nodes), b.name)):
                rest = [n for n in nodes if n not in part.nodes]
                if len(parts) > 1 and self.goal.met(self.trial(rest, "refine")):
                    nodes = rest
        return nodes

    def run(self) -> Outcome:
        k = self._prefix()
        if k is None:
            return Outcome(False, [], self.trial([], "prefix"), self.trials, self.best())
        nodes = self._refine(self.nodes(self._prune([r["block"] for r in self.rows[:k]])))
        return Outcome(True, nodes, self.trial(nodes, "refine"), self.trials)

    def best(self) -> tuple[list[str], Score]:
        fits = [(list(k), s) for k, s in self._seen.items() if len(k) <= self.goal.max_float_nodes]
        return min(fits, key=lambda ks: (*_badness(ks[1]), len(ks[0])))  # ties: the fewest float nodes
