"""accuracy: the artifact against its reference in task terms, for every output kind with a task metric.

On every golden case (the sample images at every declared shape, with the reference's outputs), each
task the declared outputs make (recipekit.gates.accuracy.metrics: a detector, a dense map, a
sequence, class scores, an embedding) is scored: detections as mAP50-95 agreement both ways (each
side's detections at >= score_threshold once as the truth for the other's), dense maps as IoU of the
binarized maps and mean absolute error, class scores as top-1/top-5 agreement, sequences as
greedy-CTC exact-match rate and character error rate, embeddings as cosine similarity. The figures
say, per image and per direction, how many items they rest on; below `min_items` a task is `not
exercised`, and a direction that cannot be computed (an artifact with no confident detection) is a
failure, never dropped; a detector whose artifact finds far fewer (or more) confident detections
than its reference fails (`min_count_ratio`). With `labelled` (COCO JSON or YOLO label files), the
fixed fp32 ONNX and the artifact are both scored against the labels, and the drop is judged
against `max_drop`.

Judged for the precisions in `judge` (default int8, where element-wise parity does not apply): a
failure, `not exercised` included, fails the build. On other precisions the figures are recorded and
the gate is `not applicable` (fp16 and fp32 are judged element-wise by parity). An int8 build whose
recipe leaves int8 out of `judge` (or skips the gate) is `skipped`: the target is published as
`unverified`, never as passed.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from recipekit.core.plugin import Strict
from recipekit.gates.base import Gate, GateConfig, GateContext, GateResult


class LabelledSet(Strict):
    images: str = Field(description="folder of images, relative to the recipe")
    labels: str = Field(description="a COCO JSON file, or a folder of YOLO .txt label files (one per image)")


class AccuracyConfig(GateConfig):
    judge: list[Literal["fp32", "fp16", "int8"]] = Field(
        default_factory=lambda: ["int8"], description="precisions the verdict applies to (others: recorded only)"
    )
    min_agreement: float = Field(0.8, ge=0, le=1, description="detections: lowest mAP50-95 agreement, both ways")
    min_count_ratio: float = Field(
        0.5, ge=0, le=1, description="detections: confident artifact / reference detections (or the inverse), lowest"
    )
    min_iou: float = Field(0.8, ge=0, le=1, description="dense maps: lowest IoU of the binarized maps")
    max_mae: float = Field(0.05, ge=0, description="dense maps: largest mean absolute error of the probabilities")
    min_top1: float = Field(0.8, ge=0, le=1, description="class scores: lowest share of images with the same top-1")
    min_top5: float = Field(0.8, ge=0, le=1, description="class scores: lowest share of the top-5 both sides have")
    min_exact_match: float = Field(0.8, ge=0, le=1, description="sequences: lowest share decoded identically")
    max_cer: float = Field(0.1, ge=0, description="sequences: largest character error rate")
    min_cosine: float = Field(0.98, ge=-1, le=1, description="embeddings: lowest mean cosine similarity")
    min_items: int | dict[str, int] | None = Field(
        None,
        description="fewest items a task's figures may rest on (per task name, '' the default); default: 10 "
        "reference detections, 100 foreground pixels, 10 reference characters, 1 image or vector",
    )
    score_threshold: float = Field(0.25, gt=0, le=1, description="detections at this score are the truth")
    min_score: float = Field(0.001, ge=0, le=1, description="lowest score kept as a prediction (COCO style)")
    iou: float = Field(0.7, gt=0, le=1, description="NMS IoU for raw and level heads")
    max_det: int = Field(300, ge=1, description="detections kept per image after NMS")
    labelled: LabelledSet | None = Field(None, description="a labelled set: mAP of reference and artifact against it")
    max_drop: float = Field(0.05, ge=0, le=1, description="largest mAP50-95 drop of the artifact on the labelled set")

    def thresholds(self) -> Any:
        from recipekit.gates.accuracy.metrics import Thresholds

        items = self.min_items if isinstance(self.min_items, dict) else {}
        if isinstance(self.min_items, int):
            items = {"": self.min_items}
        names = ("min_agreement", "min_count_ratio", "min_iou", "max_mae", "min_top1", "min_top5")
        names += ("min_exact_match", "max_cer", "min_cosine")
        return Thresholds(**{n: getattr(self, n) for n in names}, min_items=items)


class Accuracy(Gate):
    name: ClassVar[str] = "accuracy"
    version: ClassVar[str] = "2"
    Config = AccuracyConfig

    def check(self, ctx: GateContext) -> GateResult:
        from recipekit.gates.accuracy.metrics import tasks

        precision, cfg = ctx.recipe.export.precision, self.config
        judged = precision in cfg.judge
        golden = ctx.golden()
        found = tasks(golden.output_names, ctx.output_kinds)
        if not found:
            msg = "cannot measure accuracy in task terms: no output is declared with a task metric (declare its kind)"
            if not judged:
                return _unjudged(precision, cfg, {"precision": precision}, [msg])
            return GateResult("failed", {"precision": precision}, [msg], msg)
        figures, failures = self._tasks(ctx, golden, found)
        figures = {"precision": precision, "judged": judged, **figures}
        if cfg.labelled is not None:
            figures["labelled"] = self._labelled(ctx)
            failures += labelled_failures(figures["labelled"], cfg)
        if not judged:
            return _unjudged(precision, cfg, figures, failures)
        return GateResult("failed" if failures else "passed", figures, failures, _summary(figures, failures))

    def input_files(self, recipe: Any) -> list[Any]:
        from recipekit.gates.accuracy.labels import files

        if self.config.labelled is None:
            return []
        images, labels = files(recipe, self.config.labelled.images, self.config.labelled.labels)
        found = [labels] if labels.is_file() else sorted(p for p in labels.iterdir() if p.is_file())
        return sorted(p for p in images.iterdir() if p.is_file()) + found

    def _options(self, ctx: GateContext, hws: list) -> Any:
        from recipekit.gates.accuracy.metrics import Options

        c = self.config
        return Options(hws, c.score_threshold, c.min_score, c.iou, c.max_det, dict(ctx.output_kinds))

    def _tasks(self, ctx: GateContext, golden: Any, found: list) -> tuple[dict[str, Any], list[str]]:
        """Every task's figures over the golden cases, and its failures."""
        from recipekit.gates.accuracy.metrics import judge, metric
        from recipekit.onnx.compare import FormatError

        runner, names = ctx.runner(), golden.output_names
        refs, gots, hws = [], [], []
        for case in golden.cases:
            refs.append(dict(zip(names, case.outputs, strict=True)))
            gots.append(dict(zip(names, runner.run_one(case.input), strict=True)))
            hws.append(tuple(case.shape))
        options, th = self._options(ctx, hws), self.config.thresholds()
        images = [f"{c.sample}@{c.shape[0]}x{c.shape[1]}" for c in golden.cases]
        out: dict[str, Any] = {"runner": runner.description, "images": images}
        per_task, failures = {}, []
        for task in found:
            try:
                figs = metric(task, refs, gots, options)
            except (FormatError, ValueError, KeyError, IndexError) as exc:
                figs = {"task": task.name, "kind": task.kind, "problems": [f"cannot score: {exc}"], "per_image": []}
                figs["reference_items"] = 0
                failures.append(f"{task.name}: cannot score: {exc}")
            else:
                failures += judge(task, figs, th)
            for p in figs["per_image"]:  # golden cases hold one image each: name them
                p["image"] = images[p["image"]] if p["image"] < len(images) else p["image"]
            per_task[task.name] = figs
        out["tasks"] = per_task
        out.update(_headline(per_task))
        return out, failures

    def _labelled(self, ctx: GateContext) -> dict[str, Any]:
        from recipekit.gates.accuracy import labels as lab
        from recipekit.gates.accuracy.coco import box_map
        from recipekit.gates.accuracy.decode import task_detections
        from recipekit.gates.accuracy.metrics import DETECTORS, tasks
        from recipekit.onnx import preprocess
        from recipekit.onnx.runtime import OrtRunner

        cfg, recipe = self.config.labelled, ctx.recipe
        data = lab.load(recipe, cfg.images, cfg.labels)  # type: ignore[union-attr]
        reference, artifact = OrtRunner(ctx.fp32_onnx or ctx.onnx_path), ctx.runner()
        hw = tuple(recipe.export.imgsz)
        names, truth, ref, got = reference.output_names, [], [], []
        task = next((t for t in tasks(names, ctx.output_kinds) if t.kind in DETECTORS), None)
        if task is None:
            return {"images": 0, "truth_boxes": 0, "drop": None, "why": "no detector among the outputs"}
        kinds = {n: ctx.output_kinds[n] for n in task.outputs}
        nms = {"iou": self.config.iou, "max_det": self.config.max_det, "min_score": self.config.min_score}
        for path, boxes, classes in zip(data.images, data.boxes, data.classes, strict=True):
            img, info = preprocess.resize(preprocess.read_image(path), hw, recipe.input.preprocess)
            x = preprocess.to_tensor(img, recipe.input.preprocess, recipe.input.dtype)
            truth.append(lab.in_input_pixels(boxes, classes, info))
            for runner, side in ((reference, ref), (artifact, got)):
                outs = dict(zip(names, runner.run_one(x), strict=True))
                side += task_detections(task.kind, {n: outs[n] for n in task.outputs}, kinds, hw, nms)
        hws = [hw] * len(truth)
        r, a = box_map(truth, ref, hws), box_map(truth, got, hws)
        drop = None if r["map50_95"] is None else round(r["map50_95"] - a["map50_95"], 4)
        return {
            "images": len(truth),
            "truth_boxes": r["truth_boxes"],
            "reference": _short(r),
            "artifact": _short(a),
            "drop": drop,
            "reference_is": "the fixed fp32 ONNX on ONNX Runtime (parity-checked against PyTorch)",
        }


def _short(m: dict[str, Any]) -> dict[str, Any]:
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in m.items() if k != "truth_boxes"}


def _headline(per_task: dict[str, Any]) -> dict[str, Any]:
    """The first detector's figures under the names reports and benchmarks read."""
    det = next((f for f in per_task.values() if f.get("metric") == "map50_95"), None)
    if det is None:
        return {}
    d = det["directions"]
    return {
        "agreement_map50_95": det["value"],
        "agreement_map50": det["map50"],
        "reference_boxes": d["reference_as_truth"]["truth_items"],
        "artifact_boxes": d["artifact_as_truth"]["truth_items"],
        "score_threshold": det["score_threshold"],
    }


def labelled_failures(lab: dict[str, Any], cfg: AccuracyConfig) -> list[str]:
    if lab["drop"] is None:
        return [f"labelled set: no labelled box to score against{' (' + lab['why'] + ')' if lab.get('why') else ''}"]
    if lab["drop"] > cfg.max_drop:
        return [
            f"labelled set: mAP50-95 drop {lab['drop']:.3f} > max_drop {cfg.max_drop} "
            f"(reference {lab['reference']['map50_95']}, artifact {lab['artifact']['map50_95']})"
        ]
    return []


def _summary(figures: dict[str, Any], failures: list[str]) -> str:
    parts = []
    for name, f in figures.get("tasks", {}).items():
        value = f.get("value")
        shown = "n/a" if value is None else f"{value:.3f}"
        parts.append(f"{name} {f.get('metric', '?')} {shown} ({f.get('reference_items', 0)} items)")
    lab = figures.get("labelled")
    if lab and lab.get("reference"):
        parts.append(f"labelled mAP50-95 {lab['reference']['map50_95']} -> {lab['artifact']['map50_95']}")
    text = "; ".join(parts) or "no task"
    return f"not exercised: {text}" if any(": not exercised: " in f for f in failures) else text


def _unjudged(precision: str, cfg: AccuracyConfig, figures: dict[str, Any], failures: list[str]) -> GateResult:
    """Not judged at this precision: int8 is then `skipped` (the target is unverified), others not applicable."""
    judged_for = ", ".join(cfg.judge) or "none"
    figures = {**figures, "would_fail": failures}
    if precision == "int8":
        why = f"int8 accuracy not judged: the recipe's judge is [{judged_for}]; the target is unverified"
        return GateResult("skipped", figures, [], why)
    why = f"recorded, not judged ({precision}: parity judges it element-wise; judged for {judged_for})"
    return GateResult("not applicable", figures, [], f"{_summary(figures, [])}; {why}")
