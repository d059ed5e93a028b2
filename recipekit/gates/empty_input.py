"""empty-input: an input on which the model detects nothing, through the artifact (field notes 1 and 5).

Zero detections is where post-processing graphs break: torchvision's traced Faster R-CNN raises
`cannot reshape tensor of shape {0,..} to {-1,4}`-style errors, and Ultralytics' nms=True graph
pads an empty tensor, which ORT's WebGPU (JSEP) kernels reject. A blank image does not always make
a model detect nothing, so the gate searches the golden step's probes (recipekit.onnx.golden.PROBES:
constant black, letterbox grey, white, dark and light grey, and low noise around grey and above
black) for the first whose *reference* output has zero detections, and runs that one. When none
has, the gate reports `not exercised`: a failure, unless the recipe sets `require: false` (then
`skipped`); it never says passed without a zero-detection reference.

On the chosen input the gate runs ONNX Runtime with every intermediate tensor as an output, so the
zero-sized ones can be listed with the ops that make and read them, even without a browser. It
checks: no error, outputs as declared (rank and fixed dims), the artifact agrees with the reference
(recipekit.onnx.compare with the recipe's parity tolerances: no detection where the reference has
none), and zero-sized intermediates (listed; failing when `zero_sized: fail`, as WebGPU targets want).

A detection counts when it scores >= `score`; default: the NMS score threshold the output declares,
else the recipe's parity min_score for detections, else 0.25 for raw and level heads (Ultralytics'
predict threshold).

The gate applies where a count can be zero: outputs declared as detections, raw heads or level heads,
or a graph with data-dependent sizes (NonMaxSuppression, NonZero, ...) whose outputs are not declared:
there the black image runs, and the case is exercised when it makes a zero-sized tensor. A model with
neither (a classifier, a dense map, a sequence, an embedding: fixed-size outputs) has no empty case:
the gate reports `not applicable`. The artifact's agreement on the empty input uses the
recipe's parity tolerances (+ the fp16 margin on an fp16 artifact); an INT8 artifact, which
element-wise tolerances do not fit, must detect nothing there too (a count, in task terms).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from recipekit.gates.base import Gate, GateConfig, GateContext, GateResult

RAW_HEAD_SCORE = 0.25


class EmptyInputConfig(GateConfig):
    """Which shapes, what counts as a detection, whether zero-sized intermediates fail, whether the case is required."""

    zero_sized: Literal["report", "fail"] = Field(
        "report", description="zero-sized intermediate tensors: list them (report) or fail (WebGPU JSEP rejects them)"
    )
    shapes: Literal["export", "all"] = Field(
        "export",
        description="the export size only, or also every other declared shape (run with the black image: errors and "
        "zero-sized tensors; the probes are at the export size)",
    )
    score: float | None = Field(
        None,
        ge=0,
        le=1,
        description="a detection (or raw-head candidate) counts when it scores >= this; default: the declared NMS "
        "threshold, else parity's min_score, else 0.25 (raw heads)",
    )
    require: bool = Field(
        True, description="no probe with zero detections in the reference: fail (true) or report skipped (false)"
    )


def graph_facts(path: Path) -> dict[str, Any]:
    """Declared outputs (name -> dims, int or symbol), per tensor the op making it and the ops reading it, and
    the op types whose output size depends on the data (where a tensor can come out empty)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    dims = {
        o.name: [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in o.type.tensor_type.shape.dim]
        for o in model.graph.output
    }
    from recipekit.onnx.util import EMPTY_SOURCES

    producer, consumers = {}, {}
    dependent = sorted({n.op_type for n in model.graph.node if n.op_type in EMPTY_SOURCES})
    for node in model.graph.node:
        label = f"{node.op_type} {node.name}".strip()
        for name in node.output:
            producer[name] = label
        for name in node.input:
            consumers.setdefault(name, []).append(label)
    return {"outputs": dims, "producer": producer, "consumers": consumers, "data_dependent": dependent}


def output_problems(declared: dict[str, list], values: dict[str, Any]) -> list[str]:
    """Each declared output must come back with the declared rank and every fixed dim."""
    out = []
    for name, dims in declared.items():
        got = list(values[name].shape)
        fixed_ok = all(not isinstance(d, int) or d == 0 or d == g for d, g in zip(dims, got, strict=False))
        if len(got) != len(dims) or not fixed_ok:
            out.append(f"output {name}: shape {got} != declared {dims}")
    return out


def zero_sized(values: dict[str, Any], facts: dict[str, Any]) -> list[dict[str, Any]]:
    """Every zero-sized tensor, with the op that made it and the ops that read it."""
    return [
        {
            "tensor": name,
            "shape": list(v.shape),
            "producer": facts["producer"].get(name, "?"),
            "consumers": facts["consumers"].get(name, []),
            "graph_output": name in facts["outputs"],
        }
        for name, v in values.items()
        if getattr(v, "size", 1) == 0
    ]


class EmptyInput(Gate):
    """The first probe with zero reference detections: no error, declared shapes, agreement, zero-sized listed."""

    name: ClassVar[str] = "empty-input"
    version: ClassVar[str] = "5"
    Config = EmptyInputConfig
    uses_golden: ClassVar[bool] = True
    reads_gates: ClassVar[tuple[str, ...]] = ("parity",)  # what counts as a detection, how outputs agree

    def check(self, ctx: GateContext) -> GateResult:
        from recipekit.onnx.compare import COUNTED
        from recipekit.onnx.runtime import ort_with_all_outputs

        kinds = {n: k.get("kind", "tensor") for n, k in (ctx.output_kinds or {}).items()}
        facts = graph_facts(ctx.onnx_path)
        counted = bool(set(kinds.values()) & set(COUNTED))
        if not counted and not facts["data_dependent"]:
            shown = ", ".join(f"{n}: {k}" for n, k in kinds.items()) or "none declared"
            why = f"no output carries a count that could be zero ({shown}) and no op has a data-dependent size"
            return GateResult("not applicable", figures={"output_kinds": kinds}, message=why)
        try:
            runner = ort_with_all_outputs(ctx.onnx_path)
        except Exception as exc:  # ORT's own error types: a model it cannot load fails the gate
            return GateResult("failed", failures=[f"ONNX Runtime cannot load {ctx.onnx_path.name}: {_first_line(exc)}"])
        shapes = ctx.recipe.shapes() if self.config.shapes == "all" else ctx.recipe.shapes()[:1]
        golden = ctx.golden()
        figures: dict[str, Any] = {"onnx": ctx.onnx_path.name, "runner": runner.description}
        failures: list[str] = []
        missing: list[str] = []
        for shape in shapes:
            key = f"{shape[0]}x{shape[1]}"
            figures[key], found, exercised = self._one(ctx, golden, runner, facts, tuple(shape))
            if not counted:  # nothing to count: the empty path ran when a tensor came out zero-sized
                exercised = bool(figures[key].get("zero_sized_intermediates") or figures[key].get("zero_sized_outputs"))
            failures += [f"blank {key}: {f}" for f in found]
            if tuple(shape) != tuple(shapes[0]):  # probes exist at the export size only
                figures[key]["note"] = "not probed (the golden step probes the export size): the black image ran"
            elif not exercised:
                missing.append(key)
        n_zero = sum(len(figures[f"{s[0]}x{s[1]}"].get("zero_sized_intermediates", [])) for s in shapes)
        figures["zero_sized_intermediates"] = n_zero
        if self.config.zero_sized == "fail" and n_zero:
            failures.append(f"zero_sized_intermediates {n_zero} > 0 (zero_sized: fail)")
        return self._verdict(figures, failures, missing, n_zero)

    def _verdict(self, figures: dict, failures: list[str], missing: list[str], n_zero: int) -> GateResult:
        figures["exercised"] = not missing
        if missing:
            why = (
                f"not exercised at {', '.join(missing)}: no blank-ish probe has zero detections in the reference "
                "(see the probes' reference counts), or (outputs not declared) no tensor came out zero-sized"
            )
            if self.config.require:
                return GateResult("failed", figures=figures, failures=[*failures, why], message=why)
            status = "failed" if failures else "skipped"
            return GateResult(status, figures=figures, failures=failures, message=why + " (require: false)")
        msg = (
            f"zero-detection input ran; {n_zero} zero-sized intermediate tensor(s)"
            if not failures
            else "zero-detection input failed"
        )
        return GateResult("failed" if failures else "passed", figures=figures, failures=failures, message=msg)

    def _one(self, ctx: GateContext, golden: Any, runner: Any, facts: dict, shape: tuple[int, int]) -> tuple:
        """Figures, failures and whether a zero-detection reference was found, for one shape."""
        counts, chosen = self._search(ctx, golden, shape)
        fig: dict[str, Any] = {"probes": counts, "input": chosen.sample if chosen else None}
        case = chosen or self._fallback(ctx, golden, shape)
        name = ctx.recipe.input.name or runner.input_names[0]
        try:
            outs = runner.run({name: case.input})
        except Exception as exc:  # the runtime error *is* the finding (e.g. the Reshape of field note 5)
            return {**fig, "error": _first_line(exc)}, [f"the artifact raised: {_first_line(exc)}"], chosen is not None
        values = dict(zip(runner.output_names, outs, strict=True))
        zeros = zero_sized(values, facts)
        fig.update(
            outputs={n: list(values[n].shape) for n in facts["outputs"]},
            zero_sized_intermediates=[z for z in zeros if not z["graph_output"]],
            zero_sized_outputs=[z["tensor"] for z in zeros if z["graph_output"]],
        )
        found = output_problems(facts["outputs"], values)
        if chosen is not None and not found:
            found += self._agree(ctx, golden, chosen, values, fig)
        return fig, found, chosen is not None

    def _search(self, ctx: GateContext, golden: Any, shape: tuple[int, int]) -> tuple[dict[str, Any], Any]:
        """Reference detection count per probe at `shape`, and the first probe with none."""
        from recipekit.onnx.compare import detection_counts

        counts: dict[str, Any] = {}
        chosen = None
        for case in [p for p in getattr(golden, "probes", []) if tuple(p.shape) == shape]:
            n = detection_counts(golden.output_names, case.outputs, ctx.output_kinds, self._score_of(ctx), shape)
            counts[case.sample] = n
            if n == 0 and chosen is None:
                chosen = case
        return counts, chosen

    def _fallback(self, ctx: GateContext, golden: Any, shape: tuple[int, int]) -> Any:
        """Without a zero-detection reference the black image still runs: its errors are still failures."""
        from recipekit.onnx.golden import Case
        from recipekit.onnx.preprocess import blank_tensor

        pre, dtype = ctx.recipe.input.preprocess, ctx.recipe.input.dtype
        return Case(shape, "blank(0)", blank_tensor(shape, pre, 0, dtype), [])

    def _score_of(self, ctx: GateContext) -> Any:
        from recipekit.gates.tolerance import recipe_tolerances
        from recipekit.onnx.compare import resolve

        parity = [recipe_tolerances(ctx.recipe, ctx.target, "parity")]

        def score(name: str, kind: dict[str, Any]) -> float:
            if self.config.score is not None:
                return self.config.score
            if kind.get("score_threshold") is not None:
                return float(kind["score_threshold"])
            if kind.get("kind") in ("raw_head", "level_head"):
                return RAW_HEAD_SCORE
            return resolve(parity, "min_score", name, None, kind)

        return score

    def _agree(self, ctx: GateContext, golden: Any, case: Any, values: dict[str, Any], fig: dict) -> list[str]:
        """The artifact on the zero-detection input against the reference: parity's tolerances (+ the fp16
        margin), or for INT8 in task terms: no detection where the reference has none."""
        from recipekit.gates.tolerance import layers, recipe_tolerances
        from recipekit.onnx.compare import compare_outputs, detection_counts

        names, precision = golden.output_names, ctx.recipe.export.precision
        outs = [values[n] for n in names]
        if precision == "int8":
            n = detection_counts(names, outs, ctx.output_kinds, self._score_of(ctx), case.shape)
            fig["agreement"] = {"artifact_detections": n, "judged": "int8: in task terms (a count)"}
            return [f"on {case.sample} the artifact detects {n} where the reference detects none"] if n else []
        tol = layers(None, {}, recipe_tolerances(ctx.recipe, ctx.target, "parity"), fp16=precision == "fp16")
        rows = compare_outputs(names, case.outputs, outs, ctx.output_kinds, tol, case.shape)
        fig["agreement"] = {r["output"]: r["passed"] for r in rows}
        return [f"{r['output']} on {case.sample}: {r.get('reason', 'failed')}" for r in rows if not r["passed"]]


def _first_line(exc: BaseException) -> str:
    """One line of a runtime's message; long ones keep their head (which node) and tail (why)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 400 else f"{text[:200]} ... {text[-200:]}"
