"""The work of each step kind. Each returns a JSON-able result dict; heavy imports happen inside."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from recipekit.core import tools
from recipekit.core.errors import RecipeKitError, StepFailed, Unavailable
from recipekit.fixes import FIXES
from recipekit.fixes.base import FixContext
from recipekit.graph.run import Run
from recipekit.sources import SOURCES
from recipekit.targets import TARGETS

ONNX_TOOLS = ("onnx", "onnxruntime", "onnxslim", "onnx-ir", "numpy")


def _source(run: Run) -> Any:
    return SOURCES.get(run.recipe.source.kind)(run.recipe.source)  # type: ignore[attr-defined]


def _patches(run: Run) -> tuple[list[Any], list[dict[str, Any]]]:
    """Context managers of the applicable source fixes, and what each fix's precondition said."""
    ctx, patches, records = FixContext(run.recipe), [], []
    for item in run.step["config"]["source_fixes"]:
        fix = FIXES.get(item["name"])(FIXES.get(item["name"]).Config.model_validate(item["config"]))
        check = fix.check(ctx)
        if check.status == "cannot-apply":
            raise StepFailed(run.step["task"], f"fix {item['name']} cannot apply: {check.why}")
        if check.status == "applies":
            patches.append(fix.patch(ctx))
        records.append(
            {
                "name": item["name"],
                "stage": "source",
                "status": "applied" if check.status == "applies" else "not-needed",
                "why": check.why,
            }
        )
    return patches, records


def _fix_versions(items: list[dict[str, Any]]) -> dict[str, str]:
    return {i["name"]: FIXES.get(i["name"]).version for i in items}


def export(run: Run) -> dict[str, Any]:
    source = _source(run)
    weights = {p.name: run.memo.digest(p) for p in source.weight_files(run.base_dir)}

    def build(work: Path) -> dict[str, Any]:
        patches, records = _patches(run)
        info = source.export(run.recipe, work, patches)
        return {
            "inputs": info.inputs,
            "outputs": info.outputs,
            "output_kinds": info.output_kinds,
            "notes": info.notes,
            "init": source.init,
            "source_fixes": records,
        }

    inputs = {"weights": weights, "fixes": _fix_versions(run.step["config"]["source_fixes"])}
    return run.cached(source.version, inputs, tools.versions(), build)


def _sample_inputs(run: Run, shape: tuple[int, int]) -> list[tuple[str, Any]]:
    from recipekit.onnx import preprocess

    inp = run.recipe.input
    if not inp.samples:
        return [
            (f"random-seed{i}", preprocess.random_tensor(shape, inp.preprocess, seed=i, dtype=inp.dtype))
            for i in range(2)
        ]
    return [
        (s, preprocess.image_tensor(preprocess.resolve_sample(s, run.base_dir), shape, inp.preprocess, inp.dtype))
        for s in inp.samples
    ]


def golden(run: Run) -> dict[str, Any]:
    from recipekit.onnx.preprocess import resolve_sample

    source = _source(run)
    samples = {s: run.memo.digest(resolve_sample(s, run.base_dir)) for s in run.recipe.input.samples}

    def build(work: Path) -> dict[str, Any]:
        import numpy as np

        from recipekit.onnx.golden import Case, Golden

        exported = run.up["export"]["result"]
        patches, _ = _patches(run)
        cases = []
        with source.reference(run.recipe, run.upstream_dir("export"), patches) as forward:
            for shape in run.recipe.shapes():
                for name, x in _sample_inputs(run, shape):
                    cases.append(Case(shape, name, x, [np.asarray(o) for o in forward(x)]))
        meta = {"output_kinds": exported["output_kinds"], "init": exported["init"]}
        Golden(exported["outputs"], cases, meta).save(work)
        return {"cases": len(cases), "output_names": exported["outputs"]}

    inputs = {
        "export": run.up["export"]["digest"],
        "samples": samples,
        "fixes": _fix_versions(run.step["config"]["source_fixes"]),
    }
    return run.cached(source.version, inputs, tools.versions(), build)


def fix(run: Run) -> dict[str, Any]:
    from recipekit.graph.fixchain import apply_chain

    def build(work: Path) -> dict[str, Any]:
        return apply_chain(run, work)

    items = run.step["config"]["fixes"] + run.step["config"]["source_fixes"]
    inputs = {"export": run.up["export"]["digest"], "fixes": _fix_versions(items)}
    return run.cached("1", inputs, tools.versions(ONNX_TOOLS), build)


def _golden_loader(run: Run) -> Any:
    from recipekit.onnx.golden import Golden

    def load() -> Any:
        if "golden" not in run.up:
            raise RuntimeError(f"{run.step['task']} reads golden cases but does not declare it (plugin uses_golden)")
        return Golden.load(run.upstream_dir("golden"))

    return load


def compile(run: Run) -> dict[str, Any]:  # noqa: A001 - the stage's name
    from recipekit.targets.base import TargetContext

    cls = TARGETS.get(run.step["plugin"])
    target = cls(cls.Config.model_validate(run.step["config"]["target"]))
    env_key = getattr(cls, "environment_key", dict)()
    state = run.store.root / "state" / run.step["plugin"]
    state.mkdir(parents=True, exist_ok=True)
    kinds = run.up["export"]["result"]["output_kinds"]

    def build(work: Path) -> dict[str, Any]:
        ctx = TargetContext(run.recipe, state, _golden_loader(run), kinds)
        res = target.build(run.upstream_dir("fix") / "model.onnx", work, ctx)
        return {"artifact": res.artifact, "manifest": res.manifest}

    inputs = {"fix": run.up["fix"]["digest"], "golden": run.up.get("golden", {}).get("digest"), "environment": env_key}
    try:
        return run.cached(cls.version, inputs, tools.versions(ONNX_TOOLS), build)
    except Unavailable as exc:
        if run.env.get("require"):
            raise StepFailed(run.step["task"], f"required target unavailable: {exc.reason}") from None
        return {"status": "unavailable", "reason": exc.reason}


def gate(run: Run) -> dict[str, Any]:
    from recipekit.graph.gating import run_gate

    return run_gate(run)


def publish(run: Run) -> dict[str, Any]:
    from recipekit.report.publish import publish as do_publish

    return do_publish(run)


def share_cores(threads: int | None) -> None:
    """With -j N, each worker process gets its share of the cores (torch, OpenMP, ONNX Runtime):
    N processes each using every core would only fight over them."""
    import os
    import sys

    if not threads:
        return
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "RECIPEKIT_THREADS"):
        os.environ[var] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


STAGES = {"export": export, "golden": golden, "fix": fix, "compile": compile, "gate": gate, "publish": publish}


def execute(step: dict[str, Any], env: dict[str, Any], up: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Run one step; errors become a result with status 'failed' and a message (no traceback)."""
    import time
    import traceback

    t0 = time.perf_counter()
    share_cores(env.get("threads"))
    try:
        run = Run(step, env, up)
        run.materialize()
        result = STAGES[step["kind"]](run)
    except RecipeKitError as exc:
        result = {"status": "failed", "error": str(exc), "log": getattr(exc, "step_log", "")}
    except Exception as exc:  # noqa: BLE001 - a step's failure is reported, not raised
        tb = traceback.format_exc(limit=8)
        result = {"status": "failed", "error": f"{type(exc).__name__}: {exc}", "log": getattr(exc, "step_log", "") + tb}
    result["seconds_wall"] = round(time.perf_counter() - t0, 3)
    json.dumps(result)  # results travel through doit's value store: they must be JSON
    return result
