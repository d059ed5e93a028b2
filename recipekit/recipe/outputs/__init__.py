"""Output semantics: what the elements of each model output are, declared once per source.

Every comparison (parity, shape-sweep, batch-consistency, webgpu-browser, the Jetson check and
`device-check`) and the accuracy gate's task metrics read these declarations, so each part of an
output is judged in its own units: pixels for coordinates, absolute error for probabilities, IoU for
masks and binarized maps, cosine similarity for embeddings. Sources declare them in their export
info; an `onnx` or `python` source's recipe declares them under `source.output_kinds`. They are
written into the manifest (`output_kinds`) and into `webgpu.json` (`outputs[].kind`). A declaration
whose rank or shape does not fit its output is refused (`check_shapes`): at plan for an ONNX file,
at export for a model whose outputs exist only once exported.

This package validates and serialises (pydantic), one module per family of kinds. The comparison
(recipekit.onnx.compare) reads the plain JSON dicts `declare()` returns, with numpy only, because the
Jetson bundle ships it next to check.py.

Kinds (the `kind` key):

- `tensor`: compared element-wise with atol/rtol (the default for an undeclared output).
- `class_scores`: per-class scores of an image classifier, (B, C) or (C,); `unit` probability
  (score_abs) or logit (atol/rtol). Task metric: top-1 and top-5 agreement.
- `raw_head`: one tensor holding every candidate (anchor) of a detection head before NMS, e.g.
  Ultralytics' (B, 4 + nc, A). `channel_axis` and `anchor_axis` say which axis is which; `groups`
  lists the channel groups (fields below) with their channel spans. Task metric: mAP50-95 of the
  NMS'd detections, both ways.
- `level_head`: one level of a head split per stride over several outputs (PicoDet, NanoDet, YOLOX,
  YOLOv8 split heads): `head` (outputs sharing it are one detector), `stride`, `layout` nchw or nlc,
  `decoder` dfl (box_distribution + class_scores) or yolox (box_offsets + objectness +
  class_scores), `groups`. Decoded to candidates, then compared and scored as a raw head.
- `detections`: detections after NMS (or a top-k head). Either `columns`: rows (B, N, C) or (N, C)
  whose last axis packs fields, or `field`: the whole output is one field of every detection, e.g.
  torchvision's boxes (N, 4), scores (N,), labels (N,), masks (N, 1, H, W). Outputs sharing a `group`
  (default: the output's name) form one detection list; detections are matched (same class, IoU >=
  iou_match) rather than compared row by row. Rows whose box and score are all zero are padding.
  `score_threshold`: the NMS score threshold (min_score defaults to score_threshold + score_abs);
  `max_detections`: the model's cap (at the cap, compared on the detections clear of the cut).
- `prototype_masks`: (B, nm, h, w) mask prototypes whose instances are `sigmoid(coefficients @
  prototypes) > 0.5`; `coefficients` names the output holding the mask coefficients. Compared as
  mask IoU after decoding, per candidate (raw head) or per matched detection.
- `dense_map`: a value per pixel, (B, C, H, W), (B, H, W, C) or (B, H, W): `classes` binary (a text
  detector's probability map; foreground at >= `threshold`) or per_pixel (segmentation logits, the
  argmax); `unit` probability or logit. Task metric: IoU of the binarized maps and mean absolute error.
- `sequence`: per-time-step class scores of a CTC recognizer, (B, T, C) (`time_axis: 1`) or (T, B, C)
  (`time_axis: 0`), `blank` class. Task metric: greedy-CTC exact-match rate and character error rate.
- `embedding`: one vector per image, (B, D). Compared and scored by cosine similarity.

Fields (channel groups of a head, columns or whole-output fields of detections), each with a
`role`, a span [start, stop) of channels/columns (not used by whole-output fields) and a `unit`:

- `box`: 4 values, `format` xyxy, cxcywh or xywh; unit px (input pixels: the model input after
  resize/letterbox) or normalized (0..1 of the input's W and H; converted to pixels to compare).
  Compared with box_px. A rotated box (xywhr) is a cxcywh box plus an `angle` field.
- `score`: a detection's confidence, probability (score_abs) or logit (atol/rtol).
- `class`: a class id (matched exactly).
- `class_scores`: nc per-class scores (probability or logit); score = max, class = argmax.
- `keypoints`: count x dims values (x, y in px or normalized, then a visibility when dims is 3, in
  `visibility` units); compared as the largest keypoint distance (keypoints_px) and visibility.
- `keypoint_scores`: count per-keypoint scores (Keypoint R-CNN's logits).
- `mask_coefficients`: nm coefficients for prototype_masks (atol/rtol).
- `angle`: rotation of a box in radians (angle_rad, modulo pi).
- `mask`: whole-output per-detection instance masks (N, 1, H, W) or (N, H, W) of probabilities
  (Mask R-CNN): mask IoU at 0.5 (mask_iou).
- `box_distribution` (level heads, dfl): 4 x bins values, the box sides' distances as distributions.
- `box_offsets` (level heads, yolox): tx, ty, tw, th. `objectness` (yolox): one score.
- `values`: anything else (atol/rtol).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, RootModel, TypeAdapter, field_validator

from recipekit.recipe.outputs.fields import (
    UNITS,
    WIDTH,
    OutputField,
    angle,
    box,
    box_distribution,
    box_offsets,
    class_id,
    class_scores,
    keypoints,
    mask_coefficients,
    objectness,
    score,
    whole,
)
from recipekit.recipe.outputs.kinds import ClassScores, Detections, PrototypeMasks, RawHead, TensorOutput
from recipekit.recipe.outputs.legacy import legacy_detections
from recipekit.recipe.outputs.level_head import DECODER_ROLES, LevelHead
from recipekit.recipe.outputs.maps import DenseMap, Embedding, Sequence

__all__ = [
    "UNITS",
    "WIDTH",
    "ClassScores",
    "DenseMap",
    "Detections",
    "Embedding",
    "LevelHead",
    "OutputField",
    "OutputKind",
    "Outputs",
    "PrototypeMasks",
    "RawHead",
    "Sequence",
    "TensorOutput",
    "angle",
    "box",
    "box_distribution",
    "box_offsets",
    "canonical",
    "check_declared",
    "check_shapes",
    "class_id",
    "class_scores",
    "declare",
    "keypoints",
    "legacy_detections",
    "mask_coefficients",
    "objectness",
    "parse",
    "score",
    "whole",
]

OutputKind = Annotated[
    TensorOutput | ClassScores | RawHead | Detections | PrototypeMasks | LevelHead | DenseMap | Sequence | Embedding,
    Field(discriminator="kind"),
]
_ADAPTER: TypeAdapter[Any] = TypeAdapter(OutputKind)


class Outputs(RootModel[dict[str, OutputKind]]):
    """Output name -> its semantics, with the checks that span outputs."""

    @field_validator("root")
    @classmethod
    def _cross(cls, value: dict[str, Any]) -> dict[str, Any]:
        groups: dict[str, set[str]] = {}
        for name, kind in value.items():
            if isinstance(kind, PrototypeMasks):
                target = value.get(kind.coefficients)
                roles = {f.role for f in _fields(target)}
                if "mask_coefficients" not in roles:
                    why = "is no output with a mask_coefficients field"
                    raise ValueError(f"{name}: coefficients {kind.coefficients!r} {why}")
            if isinstance(kind, Detections):
                groups.setdefault(kind.group or name, set()).update(f.role for f in kind.fields())
        for group, roles in groups.items():
            if "box" not in roles or not roles & {"score", "class_scores"}:
                why = f"needs a box and a score (or class_scores), got {sorted(roles)}"
                raise ValueError(f"detection group {group!r} {why}")
        _heads(value)
        return value

    def to_json(self) -> dict[str, dict[str, Any]]:
        return {name: canonical(kind) for name, kind in self.root.items()}


def _heads(value: dict[str, Any]) -> None:
    """Per level head: one decoder, and every stride holding every channel role its decoder reads."""
    heads: dict[str, list[LevelHead]] = {}
    for kind in value.values():
        if isinstance(kind, LevelHead):
            heads.setdefault(kind.head, []).append(kind)
    for head, levels in heads.items():
        decoders = {k.decoder for k in levels}
        if len(decoders) > 1:
            raise ValueError(f"level head {head!r} mixes decoders {sorted(decoders)}")
        need = DECODER_ROLES[levels[0].decoder]
        for stride in sorted({k.stride for k in levels}):
            roles = {g.role for k in levels if k.stride == stride for g in k.groups}
            if roles != need:
                why = f"needs {', '.join(sorted(need))} over its outputs, has {', '.join(sorted(roles))}"
                raise ValueError(f"level head {head!r} stride {stride} {why}")


def _fields(kind: Any) -> list[OutputField]:
    if isinstance(kind, RawHead | LevelHead):
        return kind.groups
    if isinstance(kind, Detections):
        return kind.fields()
    return []


def canonical(kind: Any) -> dict[str, Any]:
    """One output's semantics as the plain JSON dict recipekit.onnx.compare reads."""
    out = kind.model_dump(mode="json", exclude_none=True, exclude={"groups", "columns", "field"})
    out["batch_axis"] = kind.batch_axis
    if isinstance(kind, RawHead | LevelHead):
        out["groups"] = [g.canonical() for g in kind.groups]
    if isinstance(kind, DenseMap):
        out["channel_axis"] = kind.channel_axis
    if isinstance(kind, Detections):
        if kind.columns is not None:
            out["columns"] = [c.canonical() for c in kind.columns]
        else:
            out["field"] = kind.field.canonical()  # type: ignore[union-attr]
    return out


def declare(outputs: dict[str, Any], names: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """Validated JSON semantics for every output: models or dicts in, plain dicts out. Outputs in
    `names` that are not declared are plain tensors; a declared name that is no output is an error."""
    raw = {k: v.model_dump(mode="json") if hasattr(v, "model_dump") else v for k, v in outputs.items()}
    if names is not None:
        unknown = sorted(set(raw) - set(names))
        if unknown:
            raise ValueError(f"semantics declared for {unknown}, which are no outputs (outputs: {', '.join(names)})")
        raw = {n: raw.get(n, {"kind": "tensor"}) for n in names}
    return Outputs.model_validate(raw).to_json()


def parse(kind: dict[str, Any]) -> Any:
    """One output's semantics from a dict (the model classes above)."""
    return _ADAPTER.validate_python(kind)


def check_shapes(kinds: dict[str, dict[str, Any]], dims: dict[str, list[Any]]) -> list[tuple[str, str]]:
    """(output, why) for every declaration (canonical JSON) that does not fit its output's rank or shape;
    `dims`: output name -> dims (ints; None or a name where dynamic). The rules are each kind's own
    (recipekit.onnx.compare, `shape_problem` of the kind's module)."""
    from recipekit.onnx.compare import shape_problems

    return shape_problems(kinds, dims)


def check_declared(recipe: Any, key: str, declared: dict[str, Any], dims: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The declared semantics of a model's outputs (`dims`: output name -> dims), validated against the
    outputs' names, ranks and shapes; a misfit is a RecipeError naming `key`.<output> (exit 2)."""
    from recipekit.core.errors import RecipeError

    origin = recipe.origin or recipe.name
    try:
        kinds = declare(declared, list(dims))
    except ValueError as exc:
        raise RecipeError(origin, key, " ".join(str(exc).split())[:400]) from None
    problems = check_shapes(kinds, {n: d for n, d in dims.items() if d is not None})
    if problems:
        name, why = problems[0]
        shape = "(" + ", ".join("?" if not isinstance(d, int) else str(d) for d in dims[name]) + ")"
        raise RecipeError(origin, f"{key}.{name}", f"the output is {shape}: {why}")
    return kinds
