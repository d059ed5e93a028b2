"""accuracy: COCO mAP50-95 agreement of the artifact with the PyTorch reference, and a labelled set's mAP.

Agreement: on every golden case (the sample images at every declared shape, with the PyTorch
source's outputs), the reference's detections scoring >= score_threshold are the ground truth
for the artifact's detections, and the other way round; agreement is the lower of the two
mAP50-95 figures, so detections only one side makes count against it. With `labelled` (COCO JSON
or YOLO label files), the fixed fp32 ONNX (the graph parity checks against PyTorch) and the
artifact are both scored against the labels, and the drop is judged against `max_drop`.

Judged for the precisions in `judge` (default int8, where element-wise parity does not apply);
for the others the figures are recorded and the status says they were not judged.
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
    min_agreement: float = Field(0.8, ge=0, le=1, description="lowest mAP50-95 agreement with the reference")
    judge: list[Literal["fp32", "fp16", "int8"]] = Field(
        default_factory=lambda: ["int8"], description="precisions the verdict applies to (others: recorded only)"
    )
    score_threshold: float = Field(0.25, gt=0, le=1, description="reference detections at this score are the truth")
    min_score: float = Field(0.001, ge=0, le=1, description="lowest score kept as a prediction (COCO style)")
    iou: float = Field(0.7, gt=0, le=1, description="NMS IoU for raw heads")
    max_det: int = Field(300, ge=1, description="detections kept per image after NMS")
    labelled: LabelledSet | None = Field(None, description="a labelled set: mAP of reference and artifact against it")
    max_drop: float = Field(0.05, ge=0, le=1, description="largest mAP50-95 drop of the artifact on the labelled set")


class Accuracy(Gate):
    name: ClassVar[str] = "accuracy"
    version: ClassVar[str] = "1"
    Config = AccuracyConfig

    def check(self, ctx: GateContext) -> GateResult:
        from recipekit.gates.accuracy.decode import NotDetections

        precision, cfg = ctx.recipe.export.precision, self.config
        judged = precision in cfg.judge
        try:
            figures = {"precision": precision, "judged": judged, **self._agreement(ctx)}
            if cfg.labelled is not None:
                figures["labelled"] = self._labelled(ctx)
        except NotDetections as exc:
            msg = f"cannot measure detection accuracy: {exc} (declare the outputs' semantics)"
            return GateResult("failed" if judged else "skipped", {"precision": precision}, [msg] if judged else [], msg)
        return decide(figures, cfg, judged)

    def input_files(self, recipe: Any) -> list[Any]:
        from recipekit.gates.accuracy.labels import files

        if self.config.labelled is None:
            return []
        images, labels = files(recipe, self.config.labelled.images, self.config.labelled.labels)
        found = [labels] if labels.is_file() else sorted(p for p in labels.iterdir() if p.is_file())
        return sorted(p for p in images.iterdir() if p.is_file()) + found

    def _nms(self) -> dict[str, float]:
        return {"iou": self.config.iou, "max_det": self.config.max_det, "min_score": self.config.min_score}

    def _agreement(self, ctx: GateContext) -> dict[str, Any]:
        from recipekit.gates.accuracy.decode import detections

        golden, runner = ctx.golden(), ctx.runner()
        refs, gots, hws = [], [], []
        for case in golden.cases:
            hw = tuple(case.shape)
            got = runner.run_one(case.input)
            refs += detections(golden.output_names, case.outputs, ctx.output_kinds, hw, self._nms())
            gots += detections(golden.output_names, got, ctx.output_kinds, hw, self._nms())
            hws.append(hw)
        out = agreement(refs, gots, hws, self.config.score_threshold)
        return {"runner": runner.description, "images": len(golden.cases), **out}

    def _labelled(self, ctx: GateContext) -> dict[str, Any]:
        from recipekit.gates.accuracy import labels as lab
        from recipekit.gates.accuracy.coco import box_map
        from recipekit.gates.accuracy.decode import detections
        from recipekit.onnx import preprocess
        from recipekit.onnx.runtime import OrtRunner

        cfg, recipe = self.config.labelled, ctx.recipe
        data = lab.load(recipe, cfg.images, cfg.labels)  # type: ignore[union-attr]
        reference, artifact = OrtRunner(ctx.fp32_onnx or ctx.onnx_path), ctx.runner()
        hw = tuple(recipe.export.imgsz)
        names, truth, ref, got = reference.output_names, [], [], []
        for path, boxes, classes in zip(data.images, data.boxes, data.classes, strict=True):
            img, info = preprocess.resize(preprocess.read_image(path), hw, recipe.input.preprocess)
            x = preprocess.to_tensor(img, recipe.input.preprocess, recipe.input.dtype)
            truth.append(lab.in_input_pixels(boxes, classes, info))
            ref += detections(names, reference.run_one(x), ctx.output_kinds, hw, self._nms())
            got += detections(names, artifact.run_one(x), ctx.output_kinds, hw, self._nms())
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


def agreement(refs: list[Any], gots: list[Any], hws: list[tuple[int, int]], thr: float) -> dict[str, Any]:
    """Both ways: the reference's confident detections as truth for the artifact's, and vice versa."""
    from recipekit.gates.accuracy.coco import box_map
    from recipekit.gates.accuracy.decode import Dets

    def confident(ds: list[Dets]) -> list[Dets]:
        return [Dets(d.box[d.score >= thr], d.score[d.score >= thr], d.cls[d.score >= thr]) for d in ds]

    fwd, back = box_map(confident(refs), gots, hws), box_map(confident(gots), refs, hws)
    both = [m["map50_95"] for m in (fwd, back) if m["map50_95"] is not None]
    return {
        "agreement_map50_95": round(min(both), 4) if both else None,
        "agreement_map50": round(min(m["map50"] for m in (fwd, back) if m["map50"] is not None), 4) if both else None,
        "reference_as_truth": _short(fwd),
        "artifact_as_truth": _short(back),
        "reference_boxes": fwd["truth_boxes"],
        "artifact_boxes": back["truth_boxes"],
        "score_threshold": thr,
    }


def decide(figures: dict[str, Any], cfg: AccuracyConfig, judged: bool) -> GateResult:
    agree, failures = figures["agreement_map50_95"], []
    if agree is None:
        failures.append(
            f"not exercised: neither side detects anything at score >= {cfg.score_threshold} "
            f"on the {figures['images']} golden images"
        )
    elif agree < cfg.min_agreement:
        failures.append(f"agreement mAP50-95 {agree:.3f} < min_agreement {cfg.min_agreement}")
    lab = figures.get("labelled")
    if lab is not None and lab["drop"] is None:
        failures.append("labelled set: no labelled box to score against")
    elif lab is not None and lab["drop"] > cfg.max_drop:
        failures.append(
            f"labelled set: mAP50-95 drop {lab['drop']:.3f} > max_drop {cfg.max_drop} "
            f"(reference {lab['reference']['map50_95']}, artifact {lab['artifact']['map50_95']})"
        )
    summary = f"agreement mAP50-95 {agree} with the reference" + (
        f"; labelled mAP50-95 {lab['reference']['map50_95']} -> {lab['artifact']['map50_95']}" if lab else ""
    )
    if not judged:
        why = f"recorded, not judged ({figures['precision']}; judged for {', '.join(cfg.judge) or 'none'})"
        return GateResult("passed" if not failures else "skipped", figures, [], f"{summary}; {why}")
    return GateResult("failed" if failures else "passed", figures, failures, summary)
