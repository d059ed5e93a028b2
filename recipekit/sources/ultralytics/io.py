"""What an Ultralytics ONNX export's outputs mean (raw head tensors or post-NMS detection rows)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from recipekit.sources.base import ExportInfo


def _detection_kind(task: str, kpt_shape: Any, nm: int) -> dict[str, Any]:
    kind: dict[str, Any] = {"kind": "detections", "box": [0, 4], "score": 4, "class": 5, "layout": "xyxy"}
    if task == "pose" and kpt_shape:
        kind["keypoints"] = [6, int(kpt_shape[0]), int(kpt_shape[1])]
    if task == "segment":
        kind["extra"] = [6, nm]
    return kind


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
    kinds: dict[str, dict[str, Any]] = {name: {"kind": "tensor"} for name in outputs}
    if post_nms:
        head = model.model[-1]
        kinds[outputs[0]] = _detection_kind(task, getattr(head, "kpt_shape", None), getattr(head, "nm", 32))
    notes = {
        "task": task,
        "post_nms": post_nms,
        "init": config.init,
        "model": config.model,
        "names": {int(k): v for k, v in dict(getattr(model, "names", {}) or {}).items()},
    }
    return ExportInfo(inputs, outputs, kinds, notes)
