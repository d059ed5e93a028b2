"""level_head: one feature level's output of a detector whose head is split over several outputs."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from recipekit.recipe.outputs.fields import OutputField, no_overlap
from recipekit.recipe.outputs.kinds import Kind

DECODER_ROLES = {
    "dfl": {"box_distribution", "class_scores"},
    "yolox": {"box_offsets", "objectness", "class_scores"},
}
"""The channel roles each decoder reads (every level needs all of them, over its outputs)."""


class LevelHead(Kind):
    """Some channel groups of one level (stride) of a head; the outputs sharing `head` are decoded together."""

    kind: Literal["level_head"] = "level_head"
    head: str = Field("head", description="outputs with this head name form one detector (default: head)")
    stride: int = Field(ge=1, description="input pixels per cell of this level (8, 16, 32 ...)")
    layout: Literal["nchw", "nlc"] = Field(
        "nchw", description="nchw: (B, C, H, W); nlc: (B, H*W, C), H and W the input size / stride rounded up"
    )
    decoder: Literal["dfl", "yolox"] = Field(
        description="dfl: box_distribution (4 x bins) + class_scores (PicoDet, NanoDet, YOLOv8 split heads); "
        "yolox: box_offsets + objectness + class_scores (score = objectness x class)"
    )
    cell_offset: float | None = Field(
        None, ge=0, le=1, description="cell center = (index + cell_offset) x stride; default 0.5 (dfl), 0 (yolox)"
    )
    groups: list[OutputField] = Field(description="this output's channel groups")

    @model_validator(mode="after")
    def _groups(self) -> LevelHead:
        if any(g.span() is None for g in self.groups):
            raise ValueError("every level_head group needs its channel span (start, stop)")
        roles = {g.role for g in self.groups}
        extra = roles - DECODER_ROLES[self.decoder]
        if extra:
            want = ", ".join(sorted(DECODER_ROLES[self.decoder]))
            raise ValueError(f"decoder {self.decoder} reads {want}; these groups are none of them: {sorted(extra)}")
        no_overlap(self.groups, "level_head groups")
        return self
