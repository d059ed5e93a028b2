"""The detection kinds and the plain ones: tensor, class_scores, raw_head, detections, prototype_masks."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from recipekit.core.plugin import Strict
from recipekit.recipe.outputs.fields import LEVEL_ROLES, OutputField, no_overlap
from recipekit.recipe.outputs.legacy import legacy_detections


class Kind(Strict):
    batch_axis: Literal[0] | None = Field(0, description="0: a leading batch axis; None: one image, no batch axis")


class TensorOutput(Kind):
    kind: Literal["tensor"] = "tensor"
    unit: Literal["px", "normalized", "probability", "logit", "radian", "none"] = Field(
        "none", description="units of the values (compared with atol/rtol)"
    )


class ClassScores(Kind):
    kind: Literal["class_scores"] = "class_scores"
    unit: Literal["probability", "logit"] = Field(
        "probability", description="probabilities: score_abs; logits: atol/rtol"
    )


class RawHead(Kind):
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
        if roles & {"mask", "class", *LEVEL_ROLES}:
            why = "class and mask are detections' fields; box_distribution, box_offsets and objectness a level_head's"
            raise ValueError(f"raw-head groups cannot be {sorted(roles & {'mask', 'class', *LEVEL_ROLES})} ({why})")
        no_overlap(self.groups, "raw_head groups")
        return self


class Detections(Kind):
    kind: Literal["detections"] = "detections"
    group: str | None = Field(None, description="detection list this output belongs to; default: the output's name")
    columns: list[OutputField] | None = Field(None, description="fields packed along the last axis of each row")
    field: OutputField | None = Field(None, description="the whole output is this field of every detection")
    score_threshold: float | None = Field(None, ge=0, description="the NMS score threshold the detections were kept at")
    max_detections: int | None = Field(
        None, ge=1, description="the model's cap on detections per image: at the cap, compared clear of the cut"
    )

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
        if any(f.role in LEVEL_ROLES for f in self.fields()):
            raise ValueError(f"detections cannot hold {', '.join(LEVEL_ROLES)} (a level_head's channels)")
        if self.columns is not None:
            if any(c.span() is None for c in self.columns):
                raise ValueError("every column field needs its span (start, stop)")
            if any(c.role == "mask" for c in self.columns):
                raise ValueError("instance masks are a whole output (field), not columns")
            no_overlap(self.columns, "detection columns")
        elif self.field.span() is not None:
            raise ValueError("a whole-output field has no span (drop start/stop)")
        return self

    def fields(self) -> list[OutputField]:
        return list(self.columns) if self.columns is not None else [self.field]  # type: ignore[list-item]


class PrototypeMasks(Kind):
    kind: Literal["prototype_masks"] = "prototype_masks"
    coefficients: str = Field(description="the output holding the mask coefficients these prototypes decode")
