"""Kinds of what trained models output besides detections: dense maps, sequences, embeddings."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from recipekit.recipe.outputs.kinds import Kind


class DenseMap(Kind):
    """A value per pixel: a binary map (text, saliency, matting) or per-pixel classes (segmentation)."""

    kind: Literal["dense_map"] = "dense_map"
    unit: Literal["probability", "logit"] = Field("probability", description="probabilities or logits")
    classes: Literal["binary", "per_pixel"] = Field(
        "binary",
        description="binary: one channel (or none), foreground at >= threshold; per_pixel: a channel per "
        "class, the argmax",
    )
    channel_axis: Literal[1, 3] | None = Field(
        1, description="axis of the channels (of the batched tensor): 1 (B, C, H, W), 3 (B, H, W, C), None (B, H, W)"
    )
    threshold: float | None = Field(
        None, description="binary maps: foreground at >= this, in the map's unit; default 0.5 (probability), 0 (logit)"
    )
    background: int = Field(0, ge=0, description="per-pixel classes: the class that is not foreground")

    @model_validator(mode="after")
    def _consistent(self) -> DenseMap:
        if self.classes == "per_pixel" and self.channel_axis is None:
            raise ValueError("per-pixel classes need a channel axis (channel_axis: 1 or 3)")
        if self.threshold is not None and self.classes == "per_pixel":
            raise ValueError("threshold is for binary maps (per-pixel classes take the argmax)")
        if self.threshold is not None and self.unit == "probability" and not 0 < self.threshold < 1:
            raise ValueError(f"a probability threshold is in (0, 1), got {self.threshold}")
        return self


class Sequence(Kind):
    """Per-time-step class scores of a CTC recognizer (text lines, speech): classes on the last axis."""

    kind: Literal["sequence"] = "sequence"
    unit: Literal["probability", "logit"] = Field(
        "probability", description="softmax probabilities, or logits / log-probabilities"
    )
    time_axis: Literal[0, 1] = Field(1, description="1: (B, T, C); 0: (T, B, C), as CTC losses take them")
    blank: int = Field(0, ge=0, description="the CTC blank class")
    decoder: Literal["ctc_greedy"] = Field(
        "ctc_greedy", description="argmax per step, repeats collapsed, blank dropped"
    )

    @model_validator(mode="after")
    def _consistent(self) -> Sequence:
        if self.batch_axis is None and self.time_axis != 0:
            raise ValueError("without a batch axis the sequence is (T, C): time_axis 0")
        return self


class Embedding(Kind):
    """One vector per image (face, re-identification, CLIP image features): compared by cosine similarity."""

    kind: Literal["embedding"] = "embedding"
