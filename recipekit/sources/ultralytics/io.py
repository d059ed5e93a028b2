"""What an Ultralytics export's outputs mean: raw heads, post-NMS or NMS-free rows, RT-DETR queries, class scores."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from recipekit.sources.base import ExportInfo


def undated_exporter(overrides: dict[str, Any]) -> Any:
    """Ultralytics' Exporter, except that it leaves the export time out of the ONNX metadata it
    writes: the same model gives the same bytes (and every key downstream of them)."""
    from ultralytics.engine.exporter import Exporter

    class UndatedExporter(Exporter):
        def export_onnx(self, *args: Any, **kwargs: Any) -> Any:
            self.metadata.pop("date", None)
            return super().export_onnx(*args, **kwargs)

    return UndatedExporter(overrides=overrides)


def drop_export_date(onnx_path: Path) -> None:
    """Drop an export time Ultralytics stamped anyway (an Exporter that adds it elsewhere): load and save."""
    import onnx

    from recipekit.onnx.util import VOLATILE_METADATA, drop_volatile_metadata
    from recipekit.onnx.wire import read_header

    if any(k in VOLATILE_METADATA for k in read_header(onnx_path).metadata):
        onnx.save(drop_volatile_metadata(onnx.load(str(onnx_path))), str(onnx_path))


def declarations(model: Any, args: Any, outputs: list[str], widths: list[int | None]) -> dict[str, Any]:
    """What each output of the export means (recipekit.recipe.outputs), from the head and the export args.

    Raw heads (B, 4 + nc + extra, anchors): cxcywh pixel boxes, class probabilities, then mask
    coefficients, keypoints or the OBB angle. Post-NMS (nms=True) and NMS-free (end2end) rows: box,
    score, class, extra; OBB boxes stay cxcywh with the angle. RT-DETR: (B, queries, 6) normalized
    cxcywh with score and class (older exports: per-class scores). Classifiers: (B, nc) probabilities.
    """
    from recipekit.recipe import outputs as o

    head = model.model[-1]
    task, nc = getattr(model, "task", "detect"), len(getattr(model, "names", {}) or {}) or int(head.nc)
    if task == "classify":
        return o.declare({outputs[0]: o.ClassScores(unit="probability")}, outputs)
    extra = _extra_fields(task, head)
    if type(head).__name__ == "RTDETRDecoder":
        scores = [o.score(4), o.class_id(5)] if widths[0] == 6 else [o.class_scores(4, nc)]
        kinds = {outputs[0]: o.Detections(columns=[o.box(0, "cxcywh", unit="normalized"), *scores])}
        return o.declare(kinds, outputs)
    post = bool(args.nms) or bool(getattr(model, "end2end", False))
    if post:
        fmt = "cxcywh" if task == "obb" else "xyxy"
        cols = [o.box(0, fmt), o.score(4), o.class_id(5), *(f(6) for f in extra)]
        thr = float(args.conf) if args.nms and args.conf is not None else None
        kinds: dict[str, Any] = {outputs[0]: o.Detections(columns=cols, score_threshold=thr)}
    else:
        groups = [o.box(0, "cxcywh"), o.class_scores(4, nc), *(f(4 + nc) for f in extra)]
        kinds = {outputs[0]: o.RawHead(groups=groups)}
    if task == "segment" and len(outputs) > 1:
        kinds[outputs[1]] = o.PrototypeMasks(coefficients=outputs[0])
    return o.declare(kinds, outputs)


def _extra_fields(task: str, head: Any) -> list[Any]:
    """Per-task fields after the class scores, as functions of their start channel/column."""
    from recipekit.recipe import outputs as o

    if task == "segment":
        return [lambda s: o.mask_coefficients(s, int(head.nm))]
    if task == "pose":
        k, d = (int(v) for v in head.kpt_shape)
        return [lambda s: o.keypoints(s, k, d)]
    if task == "obb":
        return [o.angle]
    return []


def export_info(onnx_path: Path, exporter: Any, config: Any) -> ExportInfo:
    """What the export made: its inputs and outputs (from the saved ONNX file), their meaning, notes."""
    from recipekit.onnx.wire import read_header

    header = read_header(onnx_path)
    inputs = [i.name for i in header.inputs]
    outputs = [o.name for o in header.outputs]
    widths = [(o.dims[-1] if o.dims and isinstance(o.dims[-1], int) else None) for o in header.outputs]
    model = exporter.model
    head = model.model[-1]
    post_nms = bool(exporter.args.nms) or bool(getattr(model, "end2end", False))
    notes = {
        "task": getattr(model, "task", "detect"),
        "head": type(head).__name__,
        "post_nms": post_nms,
        "init": config.init,
        "model": config.model,
        "names": {int(k): v for k, v in dict(getattr(model, "names", {}) or {}).items()},
    }
    return ExportInfo(inputs, outputs, declarations(model, exporter.args, outputs, widths), notes)
