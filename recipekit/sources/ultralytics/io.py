"""What an Ultralytics ONNX export's outputs mean (raw head tensors or post-NMS detection rows)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from recipekit.sources.base import ExportInfo


def semantics(task: str, outputs: list[str], post_nms: bool, head: Any, nc: int, score: float | None) -> dict[str, Any]:
    """What each output holds (recipekit.recipe.outputs). Raw heads are (B, 4 + nc + extra, anchors): a
    cxcywh box in input pixels, nc class probabilities, then 3 * K keypoint channels (x, y px and a
    visibility probability), nm mask coefficients or an angle (obb). Post-NMS rows (NMS embedded, or
    the end2end one-to-one head) are x1 y1 x2 y2 (obb: cx cy w h), score, class, then the same extras.
    Segmentation adds (B, nm, h, w) prototype masks."""
    from recipekit.recipe import outputs as o

    at = 6 if post_nms else 4 + nc
    extra = {
        "pose": lambda: [o.keypoints(at, *(int(v) for v in getattr(head, "kpt_shape", (17, 3))))],
        "segment": lambda: [o.mask_coefficients(at, int(getattr(head, "nm", 32)))],
        "obb": lambda: [o.angle(at)],
    }.get(task, list)()
    fmt = "cxcywh" if task == "obb" or not post_nms else "xyxy"
    if post_nms:
        cols = [o.box(0, fmt), o.score(4), o.class_id(5), *extra]
        decl: dict[str, Any] = {outputs[0]: o.Detections(columns=cols, score_threshold=score)}
    else:
        decl = {outputs[0]: o.RawHead(groups=[o.box(0, fmt), o.class_scores(4, nc), *extra])}
    if task == "segment" and len(outputs) > 1:
        decl[outputs[1]] = o.PrototypeMasks(coefficients=outputs[0])
    return o.declare(decl, outputs)


def drop_export_date(onnx_path: Path) -> None:
    """Ultralytics stamps the export time into the ONNX metadata: drop it, so the bytes (and every
    key downstream of them) are the same for the same model."""
    import onnx

    from recipekit.onnx.util import drop_volatile_metadata

    onnx.save(drop_volatile_metadata(onnx.load(str(onnx_path))), str(onnx_path))


def export_info(onnx_path: Path, exporter: Any, config: Any) -> ExportInfo:
    import onnx

    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    inits = {i.name for i in graph.initializer}
    inputs = [i.name for i in graph.input if i.name not in inits]
    outputs = [o.name for o in graph.output]
    model = exporter.model
    task = getattr(model, "task", "detect")
    post_nms = bool(exporter.args.nms) or bool(getattr(model, "end2end", False))
    nc = int(getattr(model.model[-1], "nc", 0)) or len(dict(getattr(model, "names", {}) or {}))
    score = float(exporter.args.conf) if exporter.args.nms and exporter.args.conf is not None else None
    kinds = semantics(task, outputs, post_nms, model.model[-1], nc, score)
    notes = {
        "task": task,
        "post_nms": post_nms,
        "init": config.init,
        "model": config.model,
        "names": {int(k): v for k, v in dict(getattr(model, "names", {}) or {}).items()},
    }
    return ExportInfo(inputs, outputs, kinds, notes)
