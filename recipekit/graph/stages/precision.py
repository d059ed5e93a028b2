"""The precision step: the fixed ONNX -> fp16 or INT8 QDQ ONNX, shared by every target.

Its key: the fix chain's key, the input and export sections (precision, quantization options and
goal, the size and preprocessing calibration tensors are made with), every calibration image by
content (INT8), the accuracy gate's measure and the labelled set's files when the step ranks nodes
by it, the activations of a twin the TensorRT targets compile, and the versions of the tools that
shape the result. An INT8 step with a goal (or `sensitivity.when: always`) measures each block's
sensitivity (recipekit.precision.placement), unless plain INT8 already meets the goal; that table
is cached on its own, under the keys of its inputs (not the goal), so a changed goal searches again
without measuring again.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recipekit.core import tools
from recipekit.core.errors import StepFailed
from recipekit.graph.stages.common import KeyParts

if TYPE_CHECKING:
    from recipekit.graph.context import Output, StepContext
    from recipekit.graph.plan import Step
    from recipekit.graph.results import PrecisionResult
    from recipekit.precision.placement import Placement
    from recipekit.recipe.schema import Recipe

TOOLS = ("onnx", "onnxruntime", "onnx-ir", "numpy", "opencv-python", "faster-coco-eval")
VERSION = "7"


def _labelled(step: Step) -> dict[str, str] | None:
    return step.config.get("metric", {}).get("labelled")


def key_parts(step: Step, recipe: Recipe) -> KeyParts:
    from recipekit.precision.calibration import calibration_images

    images = calibration_images(recipe) if recipe.export.precision == "int8" else []
    files = {f"calibration/{i:04d}-{p.name}": p for i, p in enumerate(images)}
    if _labelled(step):
        from recipekit.precision.metric import labelled_files

        base = Path(recipe.base_dir or ".").resolve()
        found = labelled_files(recipe, _labelled(step))  # type: ignore[arg-type]
        files.update({f"labelled/{os.path.relpath(p.resolve(), base)}": p for p in found})
    return KeyParts(VERSION, tools.versions(TOOLS), files)


def _sensitivity(ctx: StepContext, place: Placement) -> dict[str, Any]:
    """The sensitivity table, from the cache under the keys of its inputs, else measured and kept."""
    from recipekit.cache.digests import digest_of
    from recipekit.precision.sensitivity import VERSION as TABLE_VERSION

    q = ctx.recipe.export.quantization
    material = {
        "kind": "precision-sensitivity",
        "version": f"{VERSION}.{TABLE_VERSION}",
        "model": ctx.up("fix").files,
        "files": {n: f.digest for n, f in sorted(ctx.files.items())},
        "input": ctx.recipe.input.model_dump(mode="json", include={"preprocess", "dtype", "shapes"}),
        "imgsz": list(ctx.recipe.export.imgsz),
        "quantization": q.model_dump(mode="json", exclude={"goal": True, "sensitivity": {"when": True}}),
        "metric": ctx.config["metric"],
        "output_kinds": ctx.up("export").result.output_kinds,  # type: ignore[union-attr]
        "tools": tools.versions(TOOLS),
    }
    key, force = digest_of(material), bool(ctx.settings.get("force"))
    with ctx.store.lock(key):
        entry = None if force else ctx.store.get(key)
        if entry is None:
            table = place.sensitivity()
            with ctx.store.writer(key) as work:
                (work / "sensitivity.json").write_text(json.dumps(table, sort_keys=True))
            meta = {"task": f"{ctx.task} (sensitivity)", "kind": "sensitivity", "inputs": material}
            entry = ctx.store.commit(key, work, meta, replace=force)
        return {**json.loads(entry.file("sensitivity.json").read_text()), "key": key}


def _int8(ctx: StepContext, src: Path, work: Path, images: list[Path], names: list[str]) -> PrecisionResult:
    import tempfile

    from recipekit.graph.precision_plan import measures_sensitivity
    from recipekit.graph.results import PrecisionResult
    from recipekit.precision.calibration import calibration_tensors
    from recipekit.precision.int8 import Quantizer
    from recipekit.precision.placement import quiet_quantizer

    recipe, q, dst, twin = ctx.recipe, ctx.recipe.export.quantization, work / "model.onnx", ctx.config.get("twin")
    tensors = calibration_tensors(recipe, images)
    ctx.store.tmp.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="placement-", dir=ctx.store.tmp) as tmp:
        if measures_sensitivity(q):
            return _placed(ctx, src, work, images, Path(tmp), tensors, names)
        quant = Quantizer(src, tensors, q, Path(tmp))
        with quiet_quantizer():
            summary = quant.write(dst)
            if twin:  # the same QDQ with the activations a target takes (TensorRT: symmetric)
                summary["twin"] = {**quant.twin(twin).write(work / f"model-{twin}.onnx"), "file": f"model-{twin}.onnx"}
    return PrecisionResult(precision="int8", summary=summary, calibration_images=names)


def _placed(
    ctx: StepContext, src: Path, work: Path, images: list[Path], tmp: Path, tensors: list, names: list[str]
) -> PrecisionResult:
    """INT8 with the sensitivity table (and, with a goal, the searched float nodes)."""
    from recipekit.graph.results import PrecisionResult
    from recipekit.precision.calibration import evaluation_tensors
    from recipekit.precision.evaluate import Images
    from recipekit.precision.metric import labelled_set
    from recipekit.precision.placement import Placement

    recipe, q, dst, twin = ctx.recipe, ctx.recipe.export.quantization, work / "model.onnx", ctx.config.get("twin")
    metric, layout = ctx.config["metric"], recipe.input.preprocess.layout
    lab = metric.get("labelled")
    labelled = Images(*labelled_set(recipe, lab["images"], lab["labels"]), layout) if lab else None
    kinds = ctx.up("export").result.output_kinds  # type: ignore[union-attr]
    scored = Images(evaluation_tensors(recipe, images), None, layout)
    place = Placement(src, tmp, tensors, scored, q, kinds, metric, labelled)
    early = place.plain_meets(q.goal, dst) if q.goal and q.sensitivity.when == "goal" else None  # type: ignore[union-attr]
    if early:
        summary, search, table = early
    else:
        table = _sensitivity(ctx, place)
        summary, search = place.searched(table, q.goal, dst) if q.goal else (place.plain(dst), None)
    if twin:
        floated = (search or {}).get("float_nodes", [])
        summary["twin"] = place.twin(twin, floated, work / f"model-{twin}.onnx", table)
    return PrecisionResult(
        precision="int8", summary=summary, calibration_images=names, sensitivity=table, search=search
    )


def _convert(ctx: StepContext, src: Path, work: Path, images: list[Path], names: list[str]) -> PrecisionResult:
    from recipekit.graph.results import PrecisionResult

    if ctx.recipe.export.precision == "int8":
        return _int8(ctx, src, work, images, names)
    from recipekit.precision.fp16 import convert

    return PrecisionResult(precision="fp16", summary=convert(src, work / "model.onnx"), calibration_images=names)


def detail(result: PrecisionResult | None) -> str:
    """One line for the step: what the sensitivity pass and the search found."""
    sens, search = (result.sensitivity, result.search) if result is not None else (None, None)
    if not sens:
        return ""
    if search and not sens.get("measured"):  # plain INT8 met the goal
        lat = search["latency"]
        return (
            f"plain INT8 meets the goal: agreement {search['agreement']}, {lat['ratio']:.2f}x fp32 latency "
            f"on {sens['rests_on']}"
        )
    if not sens.get("measured"):
        return f"sensitivity not measured: {sens.get('why')}"
    plain = sens["plain"]
    line = f"sensitivity of {len(sens['blocks'])} blocks; plain INT8 agreement {plain['agreement']}"
    if search:
        lat = search["latency"]
        line = (
            f"{len(search['float_nodes'])} of {sens['quantizable_nodes']} nodes float: agreement "
            f"{search['agreement']} (plain {plain['agreement']}), {lat['ratio']:.2f}x fp32 latency"
        )
    return f"{line} on {sens['rests_on']}"


def run(ctx: StepContext) -> Output:
    from dataclasses import replace

    from recipekit.precision.placement import NoMetric, Unreachable

    precision = ctx.recipe.export.precision
    names = sorted(n for n in ctx.files if n.startswith("calibration/"))

    def build(work: Path) -> PrecisionResult:
        src, images = ctx.up("fix").file("model.onnx"), [ctx.files[n].path for n in names]
        try:
            return _convert(ctx, src, work, images, names)
        except (Unreachable, NoMetric) as exc:
            raise StepFailed(ctx.task, f"export.quantization.goal: {exc}") from None
        except ValueError as exc:
            raise StepFailed(ctx.task, f"{precision} conversion failed: {exc}") from None

    out = ctx.cached(build)
    line = detail(out.result)  # type: ignore[arg-type]
    return replace(out, reason="; ".join(r for r in (out.reason, line) if r)) if line else out
