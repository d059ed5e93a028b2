"""webgpu-browser: run the artifact in real headless Chromium with the pinned onnxruntime-web.

The bundle the target declares, on the `webgpu` EP and on `wasm` as a baseline, with a real golden
image and a blank one (the input that makes NMS keep nothing: field notes, case 1). Outputs are
compared with ONNX Runtime on the CPU running the fixed ONNX the artifact was built from (so a
defect of the artifact itself, an fp16 conversion say, shows), by the outputs' declared semantics
and the recipe's tolerances (recipekit.onnx.compare: this gate's options, else the recipe's parity
options, else the per-kind defaults; fp16 artifacts add FP16_MARGIN of recipekit.gates.tolerance).
Any browser or ORT error fails with its text; nodes ORT placed on the CPU are reported. Missing
Chromium or npm package: `unavailable`.
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
    real_cases: int = Field(1, ge=1, description="how many golden (real image) cases to run, besides the blank image")
    blank_value: int = Field(0, ge=0, le=255, description="pixel value of the blank image")
    timeout_s: float = Field(
        600.0,
        gt=0,
        description="time allowed for the whole browser run (SwiftShader, the software WebGPU adapter, is slow on a "
        "busy machine)",
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
TIMED_OUT = "no report from the page within"  # recipekit.targets.webgpu.web.run's time-out report


class WebGpuBrowser(Gate):
    name: ClassVar[str] = "webgpu-browser"
    version: ClassVar[str] = "7"
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
        from recipekit.targets.webgpu.web import require_tools, run_in_browser

        try:
            require_tools()
        except Unavailable as exc:
            return GateResult("unavailable", message=exc.reason, failures=[exc.reason])
        path = model_path(ctx)
        bundle = self.config.bundle or declared_bundle(ctx)
        cases = self.cases(ctx, path)
        fast = FAST_DAWN if self.config.fast else ()

        def run(toggles: tuple[str, ...]) -> Any:
            eps, timeout = tuple(self.config.eps or BUNDLES[bundle].eps), self.config.timeout_s
            return run_in_browser(path, cases, bundle, eps, timeout, ctx.state, dawn_features=toggles)

        refs = reference(ctx.onnx_path, cases)
        report = run(fast)
        result = self.decide(ctx, report, refs)
        # confirm without the fast toggles, and only that run counts; a page that ran out of time is not
        # something the toggles cause (they only make it faster): no second run of the same length
        if fast and result.status == "failed" and not report.error.startswith(TIMED_OUT):
            first = result.failures[:3]
            result = self.decide(ctx, run(()), refs)
            result.figures["fast_run_failures"] = first
            fast = ()
        result.figures["dawn_toggles"] = list(fast)
        return result

    def cases(self, ctx: GateContext, path: Any) -> list[tuple[str, dict[str, np.ndarray]]]:
        """The first `real_cases` golden inputs and a blank image at the export size, keyed by input name."""
        import onnx

        from recipekit.onnx.preprocess import blank_tensor

        model = onnx.load(str(path), load_external_data=False)
        inits = {i.name for i in model.graph.initializer}
        input_name = next(i.name for i in model.graph.input if i.name not in inits)
        golden = ctx.golden()
        out = [
            (f"{c.sample} {c.shape[0]}x{c.shape[1]}", {input_name: c.input})
            for c in golden.cases[: self.config.real_cases]
        ]
        hw = tuple(ctx.recipe.export.imgsz)
        dtype = str(golden.cases[0].input.dtype) if golden.cases else ctx.recipe.input.dtype
        blank = blank_tensor(hw, ctx.recipe.input.preprocess, self.config.blank_value, dtype)
        out.append((f"blank({self.config.blank_value}) {hw[0]}x{hw[1]}", {input_name: blank}))
        return out

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


def _hw(case: str) -> tuple[int, int] | None:
    """(H, W) from a case name ending in ' HxW'."""
    try:
        h, w = case.rsplit(" ", 1)[1].split("x")
        return int(h), int(w)
    except (IndexError, ValueError):
        return None


def reference(path: Any, cases: list[tuple[str, dict[str, np.ndarray]]]) -> dict[str, dict[str, np.ndarray]]:
    """ONNX Runtime on the CPU, the fixed ONNX, same inputs: what every browser EP must reproduce."""
    from recipekit.onnx.runtime import OrtRunner

    runner = OrtRunner(path)
    return {name: dict(zip(runner.output_names, runner.run(feeds), strict=True)) for name, feeds in cases}
