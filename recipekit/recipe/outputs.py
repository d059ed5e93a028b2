"""Output semantics: what the elements of each model output are, declared once per source.

Every comparison (parity, shape-sweep, batch-consistency, webgpu-browser, the Jetson check and
`device-check`) reads these declarations, so it can compare each part of an output in its own units:
pixels for coordinates, absolute error for probabilities, mask IoU for masks. Sources declare them in
their export info; an `onnx` source's recipe declares them under `source.output_kinds`. They are
written into the manifest (`output_kinds`) and into `webgpu.json` (`outputs[].kind`).

This module validates and serialises (pydantic). The comparison itself (recipekit.onnx.compare)
reads the plain JSON dicts `declare()` returns, with numpy only, because the Jetson bundle ships
it next to check.py.

Kinds (the `kind` key):

- `tensor`: compared element-wise with atol/rtol (the default for an undeclared output).
- `class_scores`: per-class scores of an image classifier, (B, C) or (C,); `unit` probability
  (compared with score_abs) or logit (atol/rtol).
- `raw_head`: one tensor holding every candidate (anchor) of a detection head before NMS, e.g.
  Ultralytics' (B, 4 + nc, A). `channel_axis` and `anchor_axis` say which axis is which; `groups`
  lists the channel groups (fields below) with their channel spans. Candidates whose score (the
  largest class score) is below `min_score` in both results are not compared outside the score
  groups: they can never become detections. The figures state how many were compared.
- `detections`: detections after NMS (or a top-k head). Either `columns`: rows (B, N, C) or (N, C)
  whose last axis packs fields, or `field`: the whole output is one field of every detection, e.g.
  torchvision's boxes (N, 4), scores (N,), labels (N,), masks (N, 1, H, W). Outputs sharing a `group`
  (default: the output's name) form one detection list; detections are matched (same class, IoU >=
  iou_match) rather than compared row by row. Rows whose box and score are all zero are padding.
  `score_threshold`: the score threshold the NMS ran with (candidates near it may be kept on one
  side only: min_score defaults to score_threshold + score_abs).
- `prototype_masks`: (B, nm, h, w) mask prototypes whose instances are `sigmoid(coefficients @
  prototypes) > 0.5`; `coefficients` names the output holding the mask coefficients (a raw head or
  a detections output with a mask_coefficients field). Compared as mask IoU after decoding, per
  candidate (raw head) or per matched detection.

Fields (channel groups of a raw head, columns or whole-output fields of detections), each with a
`role`, a span [start, stop) of channels/columns (not used by whole-output fields) and a `unit`:

- `box`: 4 values, `format` xyxy, cxcywh or xywh; unit px (input pixels: the model input after
  resize/letterbox) or normalized (0..1 of the input's W and H; converted to pixels to compare).
  Compared with box_px. A rotated box (xywhr) is a cxcywh box plus an `angle` field.
- `score`: a detection's confidence, probability (score_abs) or logit (atol/rtol).
- `class`: a class id (matched exactly).
- `class_scores`: nc per-class scores (probability or logit); score = max, class = argmax.
- `keypoints`: count x dims values (x, y in px or normalized, then a visibility when dims is 3, in
  `visibility` units); compared as the largest keypoint distance (keypoints_px) and visibility
  (score_abs for probabilities).
- `keypoint_scores`: count per-keypoint scores (Keypoint R-CNN's logits).
- `mask_coefficients`: nm coefficients for prototype_masks (atol/rtol).
- `angle`: rotation of a box in radians (angle_rad, modulo pi).
- `mask`: whole-output per-detection instance masks (N, 1, H, W) or (N, H, W) of probabilities
  (Mask R-CNN): mask IoU at 0.5 (mask_iou).
- `values`: anything else (atol/rtol).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, RootModel, TypeAdapter, field_validator, model_validator

from recipekit.core.plugin import Strict

Unit = Literal["px", "normalized", "probability", "logit", "radian", "none"]
Role = Literal[
    "box",
    "score",
    "class",
    "class_scores",
    "keypoints",
    "keypoint_scores",
    "mask_coefficients",
    "angle",
    "mask",
    "values",
]
BoxFormat = Literal["xyxy", "cxcywh", "xywh"]

UNITS: dict[str, tuple[str, ...]] = {
    "box": ("px", "normalized"),
    "score": ("probability", "logit"),
    "class": ("none",),
    "class_scores": ("probability", "logit"),
    "keypoints": ("px", "normalized"),
    "keypoint_scores": ("probability", "logit"),
    "mask_coefficients": ("none",),
    "angle": ("radian",),
    "mask": ("probability",),
    "values": ("none", "px", "normalized", "probability", "logit", "radian"),
}
"""The units each role may have (the first is its default)."""
WIDTH = {"box": 4, "score": 1, "class": 1, "angle": 1}
"""Fixed channel counts."""


class OutputField(Strict):
    """One field: a channel group of a raw head, a column span of detection rows, or a whole output."""

    role: Role = Field(description="what the values are (see the module docs)")
    start: int | None = Field(None, ge=0, description="first channel/column; None for a whole-output field")
    stop: int | None = Field(None, ge=1, description="one past the last channel/column")
    unit: Unit | None = Field(None, description="units of the values; default: the role's first unit")
    format: BoxFormat | None = Field(None, description="box layout (role box only); default xyxy")
    dims: Literal[2, 3] | None = Field(None, description="keypoints: values per keypoint (x, y[, visibility])")
    visibility: Literal["probability", "logit"] | None = Field(None, description="keypoints with dims 3")
    name: str | None = Field(None, description="how failures and per-group tolerance keys name it; default: role")

    @model_validator(mode="after")
    def _consistent(self) -> OutputField:
        if self.unit is not None and self.unit not in UNITS[self.role]:
            raise ValueError(f"role {self.role} takes unit {' or '.join(UNITS[self.role])}, got {self.unit}")
        if self.format is not None and self.role != "box":
            raise ValueError(f"format is for role box only (got role {self.role})")
        if (self.start is None) != (self.stop is None):
            raise ValueError("give both start and stop (a channel span), or neither (a whole-output field)")
        if self.start is not None and self.stop <= self.start:
            raise ValueError(f"empty channel span [{self.start}, {self.stop})")
        width = WIDTH.get(self.role)
        if width and self.start is not None and self.stop - self.start != width:
            raise ValueError(f"role {self.role} spans {width} channel(s), got [{self.start}, {self.stop})")
        if self.role == "keypoints":
            if self.dims is None:
                raise ValueError("keypoints need dims (2: x, y; 3: x, y, visibility)")
            if self.start is not None and (self.stop - self.start) % self.dims:
                raise ValueError(f"keypoint span [{self.start}, {self.stop}) is not a multiple of dims {self.dims}")
        elif self.dims is not None or self.visibility is not None:
            raise ValueError("dims and visibility are for role keypoints only")
        return self

    def canonical(self) -> dict[str, Any]:
        """The JSON the comparison reads: every default filled in."""
        out = self.model_dump(mode="json", exclude_none=True)
        out["unit"] = self.unit or UNITS[self.role][0]
        out["name"] = self.name or self.role
        if self.role == "box":
            out["format"] = self.format or "xyxy"
        if self.role == "keypoints" and self.dims == 3:
            out["visibility"] = self.visibility or "probability"
        return out

    def span(self) -> tuple[int, int] | None:
        return None if self.start is None else (self.start, self.stop)  # type: ignore[return-value]


class _Kind(Strict):
    batch_axis: Literal[0] | None = Field(0, description="0: a leading batch axis; None: one image, no batch axis")


class TensorOutput(_Kind):
    kind: Literal["tensor"] = "tensor"
    unit: Unit = Field("none", description="units of the values (compared with atol/rtol)")


class ClassScores(_Kind):
    kind: Literal["class_scores"] = "class_scores"
    unit: Literal["probability", "logit"] = Field(
        "probability", description="probabilities: score_abs; logits: atol/rtol"
    )


def _no_overlap(fields: list[OutputField], what: str) -> None:
    spans = sorted((f.span(), f.name or f.role) for f in fields if f.span() is not None)
    for (a, na), (b, nb) in zip(spans, spans[1:], strict=False):
        if b[0] < a[1]:
            raise ValueError(f"{what}: {na} [{a[0]}, {a[1]}) overlaps {nb} [{b[0]}, {b[1]})")
    names = [f.name or f.role for f in fields]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"{what}: field names must be unique, {dup} repeat (give `name`)")


class RawHead(_Kind):
    kind: Literal["raw_head"] = "raw_head"
    channel_axis: int = Field(1, ge=0, description="axis of the channels (of the batched tensor)")
    anchor_axis: int = Field(2, ge=0, description="axis of the candidates")
    groups: list[OutputField] = Field(description="channel groups: a box and class scores (or a score) at least")

    @model_validator(mode="after")
    def _groups(self) -> RawHead:
        if self.channel_axis == self.anchor_axis:
            raise ValueError("channel_axis and anchor_axis must differ")
        if any(g.span() is None for g in self.groups):
            raise ValueError("every raw-head group needs its channel span (start, stop)")
        roles = {g.role for g in self.groups}
        if "box" not in roles or not roles & {"score", "class_scores"}:
            raise ValueError(f"a raw head needs a box and a score or class_scores group, got {sorted(roles)}")
        if roles & {"mask", "class"}:
            raise ValueError("raw-head groups cannot be mask or class (candidates carry class_scores)")
        _no_overlap(self.groups, "raw_head groups")
        return self


class Detections(_Kind):
    kind: Literal["detections"] = "detections"
    group: str | None = Field(None, description="detection list this output belongs to; default: the output's name")
    columns: list[OutputField] | None = Field(None, description="fields packed along the last axis of each row")
    field: OutputField | None = Field(None, description="the whole output is this field of every detection")
    score_threshold: float | None = Field(None, ge=0, description="the NMS score threshold the detections were kept at")

    @model_validator(mode="before")
    @classmethod
    def _legacy(cls, data: Any) -> Any:
        """The short form of recipekit <= 0.3 ({box: [0, 4], score: 4, class: 5, keypoints: [6, 17, 3],
        extras: [6, 38], field: box, box_format, batched}) read as columns/field."""
        return legacy_detections(data) if isinstance(data, dict) else data

    @model_validator(mode="after")
    def _layout(self) -> Detections:
        if (self.columns is None) == (self.field is None):
            raise ValueError("give either columns (rows packing fields) or field (the whole output is one field)")
        if self.columns is not None:
            if any(c.span() is None for c in self.columns):
                raise ValueError("every column field needs its span (start, stop)")
            if any(c.role == "mask" for c in self.columns):
                raise ValueError("instance masks are a whole output (field), not columns")
            _no_overlap(self.columns, "detection columns")
        elif self.field.span() is not None:
            raise ValueError("a whole-output field has no span (drop start/stop)")
        return self

    def fields(self) -> list[OutputField]:
        return list(self.columns) if self.columns is not None else [self.field]  # type: ignore[list-item]


class PrototypeMasks(_Kind):
    kind: Literal["prototype_masks"] = "prototype_masks"
    coefficients: str = Field(description="the output holding the mask coefficients these prototypes decode")


OutputKind = Annotated[TensorOutput | ClassScores | RawHead | Detections | PrototypeMasks, Field(discriminator="kind")]
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
        return value

    def to_json(self) -> dict[str, dict[str, Any]]:
        return {name: canonical(kind) for name, kind in self.root.items()}


def _fields(kind: Any) -> list[OutputField]:
    if isinstance(kind, RawHead):
        return kind.groups
    if isinstance(kind, Detections):
        return kind.fields()
    return []


def canonical(kind: Any) -> dict[str, Any]:
    """One output's semantics as the plain JSON dict recipekit.onnx.compare reads."""
    out = kind.model_dump(mode="json", exclude_none=True, exclude={"groups", "columns", "field"})
    out["batch_axis"] = kind.batch_axis
    if isinstance(kind, RawHead):
        out["groups"] = [g.canonical() for g in kind.groups]
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


# --- constructors for declarations -----------------------------------------------------------


def box(start: int | None = 0, format: BoxFormat = "xyxy", unit: str = "px", name: str | None = None) -> OutputField:  # noqa: A002
    stop = None if start is None else start + 4
    return OutputField(role="box", start=start, stop=stop, format=format, unit=unit, name=name)


def score(col: int | None = None, unit: str = "probability") -> OutputField:
    return OutputField(role="score", start=col, stop=None if col is None else col + 1, unit=unit)


def class_id(col: int | None = None) -> OutputField:
    return OutputField(role="class", start=col, stop=None if col is None else col + 1)


def class_scores(start: int, count: int, unit: str = "probability") -> OutputField:
    return OutputField(role="class_scores", start=start, stop=start + count, unit=unit)


def keypoints(start: int | None, count: int, dims: int, unit: str = "px", visibility: str | None = None) -> OutputField:
    stop = None if start is None else start + count * dims
    vis = (visibility or "probability") if dims == 3 else None
    return OutputField(role="keypoints", start=start, stop=stop, dims=dims, unit=unit, visibility=vis)


def mask_coefficients(start: int, count: int) -> OutputField:
    return OutputField(role="mask_coefficients", start=start, stop=start + count)


def angle(col: int) -> OutputField:
    return OutputField(role="angle", start=col, stop=col + 1)


def whole(role: str, **kw: Any) -> OutputField:
    """A whole-output field (torchvision's boxes, scores, labels, masks, keypoints)."""
    return OutputField(role=role, **kw)


# --- the short legacy form -------------------------------------------------------------------

_LEGACY = {"box", "score", "class", "keypoints", "extras", "extra", "box_format", "batched", "layout", "score_thr"}


def legacy_detections(data: dict[str, Any]) -> dict[str, Any]:
    if not _LEGACY & set(data) and not isinstance(data.get("field"), str):
        return data
    d = dict(data)
    fmt = d.pop("box_format", None) or d.pop("layout", None) or "xyxy"
    if "score_thr" in d:
        d["score_threshold"] = d.pop("score_thr")
    batched = d.pop("batched", None)
    if batched is not None:
        d["batch_axis"] = 0 if batched else None
    if isinstance(d.get("field"), str):
        role = {"extras": "mask_coefficients", "extra": "mask_coefficients"}.get(d["field"], d["field"])
        extra = {"box": {"format": fmt}, "keypoints": {"dims": 3}}.get(role, {})
        d["field"] = {"role": role, **extra}
        return d
    d["columns"] = _legacy_columns(d, fmt)
    return d


def _legacy_columns(d: dict[str, Any], fmt: str) -> list[dict[str, Any]]:
    cols: list[dict[str, Any]] = []
    if "box" in d:
        b = d.pop("box")
        start = b if isinstance(b, int) else int(b[0])
        cols.append({"role": "box", "start": start, "stop": start + 4, "format": fmt})
    for key, role in (("score", "score"), ("class", "class")):
        if key in d:
            cols.append({"role": role, "start": int(d[key]), "stop": int(d.pop(key)) + 1})
    if "keypoints" in d:
        start, k, dims = (int(v) for v in d.pop("keypoints"))
        cols.append({"role": "keypoints", "start": start, "stop": start + k * dims, "dims": dims})
    if "extras" in d:  # [start, stop]
        a, b = (int(v) for v in d.pop("extras"))
        cols.append({"role": "mask_coefficients", "start": a, "stop": b})
    if "extra" in d:  # [start, count]
        a, n = (int(v) for v in d.pop("extra"))
        cols.append({"role": "mask_coefficients", "start": a, "stop": a + n})
    return cols
