"""webgpu-browser: run the artifact in real headless Chromium with the pinned onnxruntime-web.

The bundle the target declares, on its WebGPU EP and on `wasm` as a baseline, in one Chromium page
(one session per EP for every case): a real golden image at the smallest declared shape, and a blank
one where the graph has an op that can make a tensor empty (the input that makes NMS keep nothing:
field notes, case 1; without such an op a blank image exercises no other kernel). Outputs are
compared with ONNX Runtime on the CPU running the fixed ONNX the artifact was built from (so a
defect of the artifact itself, an fp16 conversion say, shows), by the outputs' declared semantics
and the recipe's tolerances (recipekit.onnx.compare: this gate's options, else the recipe's parity
options, else the per-kind defaults; fp16 artifacts add FP16_MARGIN of recipekit.gates.tolerance).
Any browser or ORT error fails with its text; nodes ORT placed on the CPU are reported. A failure
on the WebGPU EP is localized (recipekit.onnx.localize, in the same page): the first node whose
output disagrees is named and cut out as a single-node repro under the build's report folder.
Missing Chromium or npm package, or a JSPI bundle in a browser without JSPI: `unavailable`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field

from recipekit.gates.base import Gate, GateContext, GateResult
from recipekit.gates.tolerance import ToleranceConfig, layers, recipe_tolerances
from recipekit.targets.webgpu.bundles import BUNDLES, BundleName, describe

if TYPE_CHECKING:
    import numpy as np


class WebGpuBrowserConfig(ToleranceConfig):
    """Tolerances (as parity's keys) against ORT CPU on the same file: unset ones are the recipe's parity
    tolerances, then the per-kind defaults; fp16 artifacts add FP16_MARGIN (recipekit.gates.tolerance)."""

    eps: list[str] | None = Field(
        None,
        description="onnxruntime-web execution providers to run, each compared with ORT CPU; default: the bundle's "
        "(webgpu and the wasm baseline; wasm alone for the 'wasm' bundle)",
    )
    bundle: BundleName | None = Field(None, description=f"{describe()}; default: the bundle the webgpu target declares")
    real_cases: int = Field(
        1, ge=1, description="how many golden (real image) cases to run, smallest declared shape first"
    )
    blank: bool | None = Field(
        None,
        description="run a blank image too; default: where the graph has an op that can make a tensor empty "
        "(NonMaxSuppression, NonZero, ...)",
    )
    blank_value: int = Field(0, ge=0, le=255, description="pixel value of the blank image")
    localize: bool = Field(
        True,
        description="when the WebGPU EP disagrees with ORT CPU or fails, find the first node that does and write "
        "a single-node repro under the build's report folder",
    )
    localize_runs: int = Field(16, ge=1, description="most browser runs one localization may take")
    timeout_s: float = Field(
        600.0,
        gt=0,
        description="time allowed for the whole browser run, at least (SwiftShader, the software WebGPU adapter, is "
        "slow on a busy machine)",
    )
    slowdown: float = Field(
        1000.0,
        gt=0,
        description="...or this many times what ONNX Runtime on the CPU took for the same cases, if longer: a "
        "heavier model, or a busier machine (both slow the reference too), gets more time (SwiftShader runs "
        "convolutions ~80x slower than the wasm EP here; VGG16 took over 600x ORT CPU's time on a busy machine)",
    )
    fail_on_fallback: bool = Field(False, description="fail when ORT places any node of the webgpu session on the CPU")
    fast: bool = Field(
        True,
        description="run with the Dawn toggles in FAST_DAWN (no shader bounds clamping, no zero-filling of workgroup "
        "memory: SwiftShader runs ~1.5x faster); a run that fails is repeated without them and only that run counts",
    )


# Dawn toggles that only remove safety nets a correct kernel never touches: robustness clamps
# out-of-bounds accesses, workgroup init zero-fills shared memory before a kernel's own writes.
# A kernel that passes without them passes with them; one that fails may rely on them, so the gate
# confirms every failure in a run without these toggles (what browsers ship). Validation stays on:
# an invalid call fails in every browser, so skipping it could pass a broken artifact.
FAST_DAWN = ("disable_robustness", "disable_workgroup_init")
CPU_OVERHEAD_S = 0.05  # ORT CPU's first-run overhead (allocations): it does not scale with the model's work
LOCALIZE = "webgpu-browser"  # the gate's folder in the build's report folder (the repro, its inputs)
TIMED_OUT = "no report from the page within"  # recipekit.targets.webgpu.web.run's time-out report


class WebGpuBrowser(Gate):
    name: ClassVar[str] = "webgpu-browser"
    version: ClassVar[str] = "8"
    Config = WebGpuBrowserConfig
    default_tolerances: ClassVar[dict[str, Any]] = {}
    reads_gates: ClassVar[tuple[str, ...]] = ("parity",)  # the recipe's parity tolerances are this gate's too
    targets: ClassVar[tuple[str, ...] | None] = ("webgpu",)

    @classmethod
    def environment_key(cls) -> dict[str, str | None]:
        """Part of the gate's key: another Chromium (its WebGPU, SwiftShader) must run the gate again."""
        from recipekit.targets.webgpu.web.chromium import chromium_version

        return {"chromium": chromium_version()}

    def check(self, ctx: GateContext) -> GateResult:
        from recipekit.core.errors import Unavailable
        from recipekit.targets.webgpu.lint import declared_bundle, model_path
        from recipekit.targets.webgpu.web import require_tools

        try:
            require_tools()
        except Unavailable as exc:
            return GateResult("unavailable", message=exc.reason, failures=[exc.reason])
        path = model_path(ctx)
        bundle = self.config.bundle or declared_bundle(ctx)
        if ctx.report_dir:  # a repro left by an earlier run of this gate is stale now
            import shutil

            shutil.rmtree(ctx.report_dir / LOCALIZE, ignore_errors=True)
        cases, skipped = self.cases(ctx, path)
        refs, cpu_s = reference(ctx.onnx_path, cases)
        budget = max(self.config.timeout_s, self.config.slowdown * max(0.0, cpu_s - CPU_OVERHEAD_S))
        fast = FAST_DAWN if self.config.fast else ()
        result, report = self.run(ctx, path, bundle, cases, refs, fast, budget, confirm=not fast)
        # confirm without the fast toggles, and only that run counts; a page that ran out of time is not
        # something the toggles cause (they only make it faster): no second run of the same length
        if fast and result.status == "failed" and not report.error.startswith(TIMED_OUT):
            first = result.failures[:3]
            result, _ = self.run(ctx, path, bundle, cases, refs, (), budget, confirm=True)
            result.figures["fast_run_failures"] = first
            fast = ()
        result.figures["dawn_toggles"] = list(fast)
        result.figures["cases_not_run"] = skipped
        result.figures["time_budget_s"] = round(budget, 1)
        return result

    def run(
        self, ctx: GateContext, path: Any, bundle: str, cases: list, refs: dict, toggles: tuple[str, ...],
        budget: float, confirm: bool,
    ) -> tuple[GateResult, Any]:  # fmt: skip
        """One Chromium page: the cases on every EP, and (`confirm`: the run that counts) a localization of
        the first failure on the WebGPU EP, in the same page."""
        from recipekit.targets.webgpu.web.run import BrowserSession

        eps = tuple(self.config.eps or BUNDLES[bundle].eps)
        with BrowserSession(ctx.state, toggles) as session:
            report = session.run(path, cases, bundle, eps, budget)
            result = self.decide(ctx, report, refs)
            if BUNDLES[bundle].needs_jspi and report.adapter and not report.adapter.get("jspi", True):
                why = f"bundle {bundle!r} needs JSPI (WebAssembly.Suspending), which this Chromium lacks"
                return GateResult("unavailable", message=why, failures=[why]), report
            if confirm and result.status == "failed" and self.config.localize:
                self.localize(ctx, session, path, bundle, cases, report, result, budget)
        return result, report

    def cases(self, ctx: GateContext, path: Any) -> tuple[list[tuple[str, dict[str, np.ndarray]]], list[str]]:
        """The first `real_cases` golden inputs at the smallest declared shape, and a blank image where the
        graph can make a tensor empty, keyed by input name; and the cases left out, with why."""
        import onnx

        from recipekit.onnx.preprocess import blank_tensor
        from recipekit.onnx.util import EMPTY_SOURCES

        model = onnx.load(str(path), load_external_data=False)
        inits = {i.name for i in model.graph.initializer}
        input_name = next(i.name for i in model.graph.input if i.name not in inits)
        golden = ctx.golden()
        ordered = sorted(golden.cases, key=lambda c: c.shape[0] * c.shape[1])  # stable: samples keep their order
        out = [
            (f"{c.sample} {c.shape[0]}x{c.shape[1]}", {input_name: c.input}) for c in ordered[: self.config.real_cases]
        ]
        skipped = [
            f"{c.sample} {c.shape[0]}x{c.shape[1]}: one real image per run" for c in ordered[self.config.real_cases :]
        ]
        empties = sorted({n.op_type for n in model.graph.node if n.op_type in EMPTY_SOURCES})
        blank = self.config.blank if self.config.blank is not None else bool(empties)
        hw = tuple(ordered[0].shape) if ordered else tuple(ctx.recipe.export.imgsz)
        name = f"blank({self.config.blank_value}) {hw[0]}x{hw[1]}"
        if not blank:
            skipped.append(f"{name}: no op in the graph can make a tensor empty")
            return out, skipped
        dtype = str(golden.cases[0].input.dtype) if golden.cases else ctx.recipe.input.dtype
        out.append((name, {input_name: blank_tensor(hw, ctx.recipe.input.preprocess, self.config.blank_value, dtype)}))
        return out, skipped

    def localize(
        self,
        ctx: GateContext,
        session: Any,
        path: Any,
        bundle: str,
        cases: list,
        report: Any,
        result: Any,
        budget: float,
    ) -> None:
        """Localize the first failing (WebGPU EP, case) in `session`; the finding joins the result."""
        import tempfile
        from pathlib import Path

        from recipekit.onnx.localize import Tolerance
        from recipekit.targets.webgpu.localize import localize_in_browser, summary

        gpu = next((r for r in report.runs if r.ep != "wasm"), None)
        bad = _first_failure(gpu, result.figures.get("comparisons", []), cases[0][0]) if gpu else None
        if bad is None:
            return
        case, suspects, error = bad
        fp16 = bool(ctx.target_manifest.get("fp16"))
        tol = Tolerance(rtol=1e-2, scale=1e-2) if fp16 else Tolerance()
        with tempfile.TemporaryDirectory(prefix="recipekit-localize-") as tmp:
            folder = ctx.report_dir / LOCALIZE if ctx.report_dir else Path(tmp)  # no report folder: not kept
            loc = localize_in_browser(
                session, path, dict(cases)[case], bundle, folder, ctx.onnx_path, suspects, error, tol, gpu.ep,
                self.config.localize_runs, budget,
            )  # fmt: skip
        if not ctx.report_dir:
            loc.repro = None
        result.figures["localization"] = {"case": case, **loc.to_json(), "probes": loc.probes[-12:]}
        # the finding goes with the failure it explains (the first of that EP and case)
        at = next((i for i, f in enumerate(result.failures) if f.startswith(f"{gpu.ep} EP") and case in f), None)
        if at is None:
            result.failures.append(summary(loc))
        else:
            result.failures[at] += f" -- {summary(loc)}"

    def decide(self, ctx: GateContext, report: Any, refs: dict[str, dict[str, np.ndarray]]) -> GateResult:
        """Errors first (with their text), then per (EP, case, output) comparisons, then fallbacks."""
        failures, rows = [], []
        if report.error:
            failures.append(f"browser run ({report.bundle} bundle): {report.error}")
        for run in report.runs:
            if run.error.startswith("WebGPU unavailable"):
                return GateResult(
                    "unavailable", message=f"Chromium gives no WebGPU adapter: {run.error}", failures=[run.error]
                )
            if run.error:
                failures.append(f"{run.ep} EP ({report.bundle} bundle): session failed: {run.error}")
            for case in run.cases:
                if case.error:
                    failures.append(f"{run.ep} EP ({report.bundle} bundle) on {case.name}: {case.error}")
                    continue
                for row in self.compare(ctx, refs[case.name], case.outputs, _hw(case.name)):
                    rows.append({"ep": run.ep, "case": case.name, **row})
                    if not row["passed"]:
                        failures.append(f"{run.ep} EP on {case.name}: {row['output']}: {row['reason']}")
        fallback = {
            r.ep: [n for ep, nodes in r.placement.items() if ep == "CPUExecutionProvider" for n in nodes]
            for r in report.runs
            if r.ep != "wasm"
        }
        if self.config.fail_on_fallback:
            failures += [
                f"{ep} EP: {len(n)} node(s) fell back to the CPU: {', '.join(n)}" for ep, n in fallback.items() if n
            ]
        figures = {
            "bundle": report.bundle,
            "onnxruntime_web": report.ort_version,
            "adapter": report.adapter,
            "seconds": round(report.seconds, 2),
            "cpu_fallback_nodes": fallback,
            "no_kernel_nodes": {r.ep: r.no_kernel for r in report.runs if r.ep != "wasm"},
            "tolerances": self.tolerances(ctx),
            "comparisons": rows,
            "timings_ms": {r.ep: {"create": r.create_ms, **{c.name: c.run_ms for c in r.cases}} for r in report.runs},
        }
        status = "failed" if failures or not rows else "passed"
        n_fb = sum(len(v) for v in fallback.values())
        msg = (
            f"onnxruntime-web {report.ort_version} ({report.bundle}) in Chromium: "
            f"{len(rows) - sum(not r['passed'] for r in rows)}"
            f"/{len(rows)} comparisons within tolerance, {len(failures)} failure(s), {n_fb} node(s) on the CPU"
        )
        return GateResult(
            status, figures=figures, failures=failures or ([] if rows else ["no output was compared"]), message=msg
        )

    def compare(
        self, ctx: GateContext, ref: dict[str, np.ndarray], got: dict[str, np.ndarray], hw: Any = None
    ) -> list[dict[str, Any]]:
        """Every output by its kind (recipekit.onnx.compare): tensors element-wise, detections matched."""
        from recipekit.onnx.compare import compare_outputs

        missing = [n for n in ref if n not in got]
        if missing:
            return [{"output": n, "passed": False, "reason": "missing from the browser's outputs"} for n in missing]
        names = list(ref)
        refs, gots = [ref[n] for n in names], [got[n] for n in names]
        return compare_outputs(names, refs, gots, ctx.output_kinds, self.tolerances(ctx), hw)

    def tolerances(self, ctx: GateContext) -> list[dict[str, Any]]:
        """The recipe's webgpu-browser options, then its parity options, then defaults; + the fp16 margin."""
        fp16 = bool(ctx.target_manifest.get("fp16"))
        return layers(self.config, self.default_tolerances, self.inherited(ctx.recipe, ctx.target), fp16=fp16)

    @classmethod
    def inherited(cls, recipe: Any, target: str) -> dict[str, Any]:
        return recipe_tolerances(recipe, target, "parity")


def _first_failure(run: Any, rows: list[dict[str, Any]], first: str) -> tuple[str, list[str], str] | None:
    """(case, outputs that disagree, error) of the first failure of one EP's run, or None; a session that
    failed to load fails on the `first` case."""
    if run.error:
        return first, [], run.error
    for case in run.cases:
        if case.error:
            return case.name, [], case.error
        bad = [r["output"] for r in rows if r.get("ep") == run.ep and r.get("case") == case.name and not r["passed"]]
        if bad:
            return case.name, bad, ""
    return None


def _hw(case: str) -> tuple[int, int] | None:
    """(H, W) from a case name ending in ' HxW'."""
    try:
        h, w = case.rsplit(" ", 1)[1].split("x")
        return int(h), int(w)
    except (IndexError, ValueError):
        return None


def reference(
    path: Any, cases: list[tuple[str, dict[str, np.ndarray]]]
) -> tuple[dict[str, dict[str, np.ndarray]], float]:
    """ONNX Runtime on the CPU, the fixed ONNX, same inputs: what every browser EP must reproduce; and the
    seconds its runs took (the browser's time budget scales with them)."""
    import time

    from recipekit.onnx.runtime import OrtRunner

    runner = OrtRunner(path)
    start = time.monotonic()
    refs = {name: dict(zip(runner.output_names, runner.run(feeds), strict=True)) for name, feeds in cases}
    return refs, time.monotonic() - start
