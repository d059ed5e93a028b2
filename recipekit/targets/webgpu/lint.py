"""webgpu-lint: before any browser starts, name the ops ORT-web's WebGPU EP will leave to the CPU
and the tensors that can be empty when they reach a JSEP kernel (field notes, case 1)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from recipekit.gates.base import Gate, GateConfig, GateContext, GateResult
from recipekit.targets.webgpu.bundles import BUNDLES, DEFAULT, BundleName, describe


class WebGpuLintConfig(GateConfig):
    fail_on_zero_sized: bool = Field(
        True,
        description="fail when a possibly empty tensor (after NonMaxSuppression / NonZero) reaches a JSEP kernel "
        "that fails on it; only for bundle 'jsep' (the C++ WebGPU EP accepts zero-sized tensors)",
    )
    confirm_with_blank: bool = Field(
        True,
        description="fail only on findings whose tensor is really zero-sized when ONNX Runtime (CPU) runs a blank "
        "image (static analysis cannot see that a fix keeps a sentinel row); false: fail on every static "
        "finding",
    )
    blank_value: int = Field(0, ge=0, le=255, description="pixel value of the blank image used to confirm findings")
    fail_on_fallback: bool = Field(
        False,
        description="fail when any node has no WebGPU kernel (it runs on the CPU, with copies to and from the GPU)",
    )
    fail_on_miscomputed: bool = Field(
        True,
        description="fail on nodes the bundle's WebGPU kernels are measured to compute wrongly (JSEP: grouped Convs "
        "with output channels per group not a multiple of 4, Split/Concat binding more than 8 tensors)",
    )
    bundle: BundleName | None = Field(None, description=f"{describe()}; default: the bundle the webgpu target declares")


class WebGpuLint(Gate):
    """Reads the artifact's ONNX and the JSEP kernel table shipped with the pinned onnxruntime-web.

    The table lists JSEP kernels by op and opset (not by data type), so a node listed here may still
    fall back; the browser gate reports the real placement.
    """

    name: ClassVar[str] = "webgpu-lint"
    version: ClassVar[str] = "7"  # 7: the native EP's empty-batch Conv, pool and norm kernels
    Config = WebGpuLintConfig
    targets: ClassVar[tuple[str, ...] | None] = ("webgpu",)
    uses_golden: ClassVar[bool] = False

    @classmethod
    def environment_key(cls) -> dict[str, str | None]:
        """Part of the gate's key: the kernel tables it predicts placement from (a new measurement re-lints)."""
        import hashlib

        from recipekit.targets.webgpu.graph import TABLE
        from recipekit.targets.webgpu.kernels import MEASURED

        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None for p in (TABLE, MEASURED)}

    def check(self, ctx: GateContext) -> GateResult:
        import onnx

        from recipekit.targets.webgpu.graph import kernel_table, node_label
        from recipekit.targets.webgpu.kernels import MEASURED, predict

        bundle = self.config.bundle or declared_bundle(ctx)
        path = model_path(ctx)
        family = BUNDLES[bundle].kernels
        if not family:
            why = f"bundle {bundle!r} runs every node on the CPU (wasm EP): no WebGPU kernel to check"
            return GateResult("passed", figures={"bundle": bundle}, message=why)
        model = onnx.load(str(path), load_external_data=False)
        cpu, unknown, note = predict(path, model, family, kernel_table())
        on_gpu = {node_label(n) for n in model.graph.node} - set(cpu)
        risks, empty = self.risks(ctx, path, model, on_gpu)
        wrong = miscomputed(model, on_gpu, bundle)
        figures = {
            "miscomputed": wrong,
            "bundle": bundle,
            "kernel_table": f"{family}: {MEASURED.name}" + (f", {kernel_table().source}" if family == "jsep" else ""),
            "nodes": len(model.graph.node),
            "cpu_fallbacks": cpu,
            "not_predicted": unknown,
            **({"placement_note": note} if note else {}),
            "zero_sized_risks": risks,
            "possibly_empty_tensors": empty,
        }
        failing = [r for r in risks if r.get("confirmed", True) and family in r["fails_on"]]
        failures = [zero_size_failure(r, family) for r in failing] if self.config.fail_on_zero_sized else []
        if wrong and self.config.fail_on_miscomputed:
            failures += [f"{w['node']}: {w['why']}: onnxruntime-web computes it wrongly ({w['fix']})" for w in wrong]
        if cpu and self.config.fail_on_fallback:
            failures.append(f"{len(cpu)} node(s) have no WebGPU kernel and fall back to the CPU: {', '.join(cpu)}")
        message = (
            f"{len(cpu)} CPU fallback(s) on the {bundle} bundle's WebGPU EP"
            + (f" ({len(unknown)} node(s) not predicted)" if unknown else "")
            + f"; {len(risks)} possible zero-sized tensor risk(s) on some bundle, {len(failing)} confirmed failing "
            f"on this one; {len(wrong)} node(s) "
            "of a kind WebGPU computes wrongly"
            + (f"; {BUNDLES[bundle].deprecated}" if BUNDLES[bundle].deprecated else "")
        )
        return GateResult("failed" if failures else "passed", figures=figures, failures=failures, message=message)

    def _blank_sizes(self, ctx: GateContext, path: Path, model: Any) -> tuple[dict[str, int] | None, str]:
        """Element count of every tensor when ORT CPU runs a blank image, or why it could not."""
        from recipekit.onnx.preprocess import blank_tensor
        from recipekit.targets.webgpu.graph import sizes_on

        inits = {i.name for i in model.graph.initializer}
        first = next(i for i in model.graph.input if i.name not in inits)
        dims = [d.dim_value for d in first.type.tensor_type.shape.dim]
        layout = ctx.recipe.input.preprocess.layout
        hw = (
            tuple(dims[2:4] if layout == "nchw" else dims[1:3])
            if len(dims) == 4 and all(dims)
            else tuple(ctx.recipe.export.imgsz)
        )
        try:
            blank = blank_tensor(hw, ctx.recipe.input.preprocess, self.config.blank_value)
            return sizes_on(path, {first.name: blank}), ""
        except Exception as exc:  # noqa: BLE001 - any ORT refusal keeps the static findings
            return None, str(exc).splitlines()[0][:300]

    def risks(self, ctx: GateContext, path: Path, model: Any, on_gpu: set[str]) -> tuple[list[dict[str, Any]], int]:
        """Zero-size findings by every bundle family's rules, each with the families it fails (`fails_on`),
        confirmed or not by a real blank-image run; and how many tensors can be empty."""
        from recipekit.targets.webgpu.graph import ZERO_RULES, observed_risks, zero_size_risks

        sizes, error = self._blank_sizes(ctx, path, model) if self.config.confirm_with_blank else (None, "")
        merged: dict[tuple[str, str], dict[str, Any]] = {}
        empty: set[str] = set()
        for family, rules in ZERO_RULES.items():
            found, maybe = zero_size_risks(model, on_gpu, rules)
            empty |= maybe
            if self.config.confirm_with_blank:
                found = _confirmed(found, sizes, error) + (observed_risks(model, on_gpu, sizes, rules) if sizes else [])
            for r in found:
                kept = merged.setdefault((r["node"], r["input"]), {**r, "fails_on": []})
                kept["fails_on"].append(family)
                kept["confirmed"] = kept.get("confirmed", True) and r.get("confirmed", True)
        risks = list(merged.values())
        for r in risks:
            r.pop("outputs", None)
            if not self.config.confirm_with_blank:
                r.pop("confirmed", None)
        return risks, len(empty)


def _confirmed(risks: list[dict[str, Any]], sizes: dict[str, int] | None, error: str) -> list[dict[str, Any]]:
    """Each static finding marked confirmed when its tensor is really empty on the blank image (and, for an
    op that fails only with a non-empty output, the output is not empty); the static verdict stands when
    ORT could not run the blank image (`error`). Only confirmed findings and the unconfirmed static ones."""
    out = []
    for r in risks:
        if sizes is None:
            out.append({**r, "confirmed": True, "confirm_error": error})
            continue
        fragile = r["why"].startswith("kernel fails")
        outputs = r.get("outputs", [])
        ok = sizes.get(r["input"]) == 0 and (fragile or any(sizes.get(o, 1) > 0 for o in outputs))
        out.append({**r, "confirmed": ok})
    return out


NATIVE = "bundle: webgpu (the native WebGPU EP takes it)"
ROWS = "the zero-safe-rows fix gives it a sentinel row (row-wise; none exists for a global reduction)"
FIXES = {
    "jsep": {
        "Gemm": "the zero-safe-gemm fix gives it a sentinel row, or " + NATIVE,
        "GatherND": "the zero-safe-gathernd fix gives it a sentinel index row, or " + NATIVE,
        "Reshape": "the zero-safe-reshape fix makes a static -1 explicit",
        "Pad": "for Ultralytics exports with embedded NMS the fixed-shape-nms fix; otherwise " + NATIVE,
    },
    "native": {"Softmax": ROWS, "ReduceMax": ROWS, "ReduceMin": ROWS},
}
WHO = {"jsep": "JSEP WebGPU kernels fail on this", "native": "the native WebGPU EP fails on this"}


def zero_size_failure(r: dict[str, Any], family: str) -> str:
    """One finding: the node, the tensor and where it comes from, why the bundle fails, and the fix (or none)."""
    op = r["node"].split(" ")[0]
    none = f"no recipekit fix for {op}" + (f": {NATIVE}" if family == "jsep" else "")
    return (
        f"{r['node']} gets tensor {r['input']!r}"
        + (f" (downstream of {r['from']})" if r["from"] else "")
        + f", which {'is zero-sized on a blank image' if 'confirmed' in r else 'can be zero-sized'}: {r['why']} "
        f"({WHO[family]}); fix: {FIXES[family].get(op, none)}"
    )


# onnxruntime-web's JSEP Split computes wrong results into 8 or more outputs (it binds 1 + 8 storage
# buffers, past the default limit of 8 per shader), silently: measured with 1.31.1 (Split into 7 is right;
# a Concat of 9, 12 or 16 inputs is right). The native WebGPU EP computes every one right.
JSEP_MAX_BUFFERS = 8


def miscomputed(model: Any, on_gpu: set[str], bundle: str = "jsep") -> list[dict[str, Any]]:
    """GPU nodes of a kind the pinned onnxruntime-web computes wrongly (recipekit.onnx.convs, buffer limits)."""
    from recipekit.onnx.convs import unaligned_grouped_conv
    from recipekit.targets.webgpu.graph import node_label

    weights = {i.name: i for i in model.graph.initializer}
    out = []
    for node in model.graph.node:
        if node_label(node) not in on_gpu:
            continue
        if bundle == "jsep" and unaligned_grouped_conv(node, weights):  # the native EP: right (1.31.1, measured)
            w = weights[node.input[1]]
            group = next(a.i for a in node.attribute if a.name == "group")
            why = f"grouped Conv, {w.dims[0] // group} output channels in each of {group} groups (not a multiple of 4)"
            out.append(
                {
                    "node": node_label(node),
                    "why": why,
                    "fix": "the split-grouped-conv fix runs each group as its own Conv; or bundle: webgpu",
                }
            )
        bound = 1 + len(node.output)
        if bundle == "jsep" and node.op_type == "Split" and bound > JSEP_MAX_BUFFERS:
            why = (
                f"{node.op_type} binds {bound} tensors, more than the {JSEP_MAX_BUFFERS} storage buffers JSEP asks for"
            )
            fix = "no recipekit fix; bundle: webgpu (the native WebGPU EP) computes it right"
            out.append({"node": node_label(node), "why": why, "fix": fix})
    return out


def declared_bundle(ctx: GateContext) -> str:
    """The bundle the webgpu target built for (its manifest), else the recipe's, else the default."""
    facts = ctx.target_manifest.get("onnxruntime_web") or {}
    if facts.get("bundle"):
        return str(facts["bundle"])
    entry = ctx.recipe.targets.get(ctx.target)
    return str(getattr(entry.config, "bundle", None) or DEFAULT) if entry else DEFAULT


def model_path(ctx: GateContext) -> Path:
    """The ONNX file the target ships (the artifact), else the fixed ONNX it was built from."""
    art = ctx.artifact_dir / ctx.artifact
    return art if art.suffix == ".onnx" and art.is_file() else ctx.onnx_path
