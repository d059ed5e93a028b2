"""Fields: what the channels of a head, the columns of detection rows or a whole output hold.

Each field has a `role`, a span [start, stop) of channels/columns (none for whole-output fields) and
a `unit`; recipekit.recipe.outputs documents the roles. Constructors at the bottom spell the common
declarations (`box(0, "cxcywh")`, `class_scores(4, 80)`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

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
    "box_distribution",
    "box_offsets",
    "objectness",
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
    "box_distribution": ("logit", "probability"),
    "box_offsets": ("none",),
    "objectness": ("probability", "logit"),
}
"""The units each role may have (the first is its default)."""
WIDTH = {"box": 4, "score": 1, "class": 1, "angle": 1, "box_offsets": 4, "objectness": 1}
"""Fixed channel counts."""
LEVEL_ROLES = ("box_distribution", "box_offsets", "objectness")
"""Roles only a per-level head's channels have (its decoder reads them)."""


class OutputField(Strict):
    """One field: a channel group of a head, a column span of detection rows, or a whole output."""

    role: Role = Field(description="what the values are (see recipekit.recipe.outputs)")
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
        self._width()
        if self.role == "keypoints":
            if self.dims is None:
                raise ValueError("keypoints need dims (2: x, y; 3: x, y, visibility)")
            if self.start is not None and (self.stop - self.start) % self.dims:
                raise ValueError(f"keypoint span [{self.start}, {self.stop}) is not a multiple of dims {self.dims}")
        elif self.dims is not None or self.visibility is not None:
            raise ValueError("dims and visibility are for role keypoints only")
        return self

    def _width(self) -> None:
        if self.start is None:
            return
        width, got = WIDTH.get(self.role), self.stop - self.start  # type: ignore[operator]
        if width and got != width:
            raise ValueError(f"role {self.role} spans {width} channel(s), got [{self.start}, {self.stop})")
        if self.role == "box_distribution" and got % 4:
            raise ValueError(f"box_distribution [{self.start}, {self.stop}) is not 4 x bins channels")

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


def no_overlap(fields: list[OutputField], what: str) -> None:
    spans = sorted((f.span(), f.name or f.role) for f in fields if f.span() is not None)
    for (a, na), (b, nb) in zip(spans, spans[1:], strict=False):
        if b[0] < a[1]:
            raise ValueError(f"{what}: {na} [{a[0]}, {a[1]}) overlaps {nb} [{b[0]}, {b[1]})")
    names = [f.name or f.role for f in fields]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"{what}: field names must be unique, {dup} repeat (give `name`)")


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


def box_distribution(start: int, bins: int, unit: str = "logit") -> OutputField:
    """A DFL box: 4 x bins channels (left, top, right, bottom distances over bins 0..bins-1)."""
    return OutputField(role="box_distribution", start=start, stop=start + 4 * bins, unit=unit)


def box_offsets(start: int) -> OutputField:
    """A YOLOX box: tx, ty (cell units), tw, th (log of size / stride)."""
    return OutputField(role="box_offsets", start=start, stop=start + 4)


def objectness(col: int, unit: str = "logit") -> OutputField:
    return OutputField(role="objectness", start=col, stop=col + 1, unit=unit)
