"""The recipe schema (pydantic v2). Unknown keys are errors everywhere.

Plugin sections (`source`, each fix, target and gate) are validated by the plugin's own static
Config in `recipe.load`, so adding a plugin never touches this file.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SerializeAsAny, field_validator, model_validator

from recipekit.core.plugin import Strict

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
MAX_NAME = 100
"""Characters in a recipe name: it becomes folder and file names (build/<name>/, archives)."""
MAX_SIDE = 4096
"""Largest input height or width. Memory: activations grow with H x W (YOLO at 4096x4096 needs ~10 GiB)."""
MAX_PIXELS = 4096 * 4096 * 2
"""Largest batch.max x H x W: the export, the reference and every gate hold a batch of that many pixels
(100000x100000 would need 27.9 GiB for the input alone)."""
MAX_BATCH = 64
"""Largest batch.max: each gate runs batches this large through PyTorch and ONNX Runtime (memory)."""
MAX_DET = 10_000
"""Largest nms.max_det: output (B, max_det, 6+extra) and NMS work grow with it (memory)."""


MIN_SIDE = 8
"""Smallest input height or width: small crop classifiers take tiny inputs (MTCNN's RNet: 24x24)."""


def _side_ok(v: tuple[int, int], what: str) -> tuple[int, int]:
    if min(v) < MIN_SIDE:
        raise ValueError(f"expected (H, W) of at least {MIN_SIDE} each, got {list(v)}")
    if max(v) > MAX_SIDE:
        raise ValueError(
            f"expected (H, W) of at most {MAX_SIDE} each, got {list(v)}: {what} memory grows with H x W "
            f"(about 10 GiB for YOLO at {MAX_SIDE}x{MAX_SIDE})"
        )
    return v


class Preprocess(Strict):
    """How an image becomes the model's input tensor. Every gate applies it; the manifest records it;
    the browser viewer and the Jetson bundle's check.py compute it to the same bits (recipekit.onnx.pixels)."""

    resize: Literal["letterbox", "stretch", "center-crop", "none", "multiple", "fixed-height"] = Field(
        "letterbox",
        description="letterbox: keep the aspect ratio, fit (H, W) and pad (see `pad`); stretch: resize to (H, W); "
        "center-crop: resize (keeping aspect ratio, bilinear with antialiasing as PIL) to cover (H, W) / "
        "crop_fraction and crop the centre (H, W), as torchvision's Resize + CenterCrop; multiple: each image "
        "at its own size, its aspect kept within the export size and each side rounded to a multiple of "
        "`multiple` (text detectors; needs export.dynamic.hw; gates stretch to each declared shape); "
        "fixed-height: resize to height H keeping the aspect ratio (width ceil(H * w / h), at most W), pad "
        "on the right to W; a deployment picks the narrowest declared width that holds the line (text "
        "recognizers); none: requires images of the input size",
    )
    pad: Literal["center", "top-left"] = Field(
        "center",
        description="letterbox placement: centre (Ultralytics' LetterBox) or anchored at the top-left corner, "
        "padding on the bottom and right (other modes ignore it)",
    )
    multiple: int = Field(32, ge=1, le=256, description="resize: multiple: each side a multiple of this")
    crop_fraction: float = Field(
        1.0,
        gt=0,
        le=1,
        description="center-crop: the crop's share of the resized image (0.875: Resize(256) + CenterCrop(224))",
    )
    scale: float = Field(1 / 255, description="multiplied into pixel values (0..255) before mean/std: 1/255 gives 0..1")
    mean: tuple[float, float, float] = Field(
        (0.0, 0.0, 0.0), description="subtracted per channel after scaling, in the model's colour order"
    )
    std: tuple[float, float, float] = Field((1.0, 1.0, 1.0), description="divided per channel after subtracting mean")
    color: Literal["rgb", "bgr"] = Field("rgb", description="channel order the model expects")
    layout: Literal["nchw", "nhwc"] = Field("nchw", description="tensor layout the model expects")
    pad_value: int = Field(114, ge=0, le=255, description="padding pixel value (letterbox, fixed-height)")
    pad_tensor_value: float | None = Field(
        None,
        description="padding written after normalisation, as this tensor value (PaddleOCR's recognizer pads "
        "with 0.0); default: pad_value pixels, normalised",
    )

    @field_validator("std")
    @classmethod
    def _no_zero_std(cls, v: tuple[float, float, float]) -> tuple[float, float, float]:
        if any(s == 0 for s in v):
            raise ValueError("std entries must be non-zero")
        return v


class Input(Strict):
    """The model input: type, accepted shapes, preprocessing and the sample images gates use."""

    name: str | None = Field(None, description="input tensor name; default: the source's own")
    dtype: Literal["float32", "float16"] = Field("float32", description="input tensor element type")
    shapes: list[Annotated[tuple[int, int], AfterValidator(lambda v: _side_ok(v, "the gates'"))]] = Field(
        default_factory=list, description="extra (H, W) shapes the artifact must accept and be checked at"
    )
    preprocess: Preprocess = Field(default_factory=Preprocess)
    calibration: str | list[str] | None = Field(
        None,
        description="INT8 calibration images: a folder or a glob (relative to the recipe), or a list of them; "
        "default: the samples",
    )
    samples: list[str] = Field(
        default_factory=list,
        description="images for gates: a path (relative to the recipe) or 'package:file' (e.g. ultralytics:bus.jpg); "
        "none: seeded random inputs",
    )


class Batch(Strict):
    """Batch profile: the sizes the artifact must serve. opt is independent of max."""

    min: int = Field(1, ge=1)
    opt: int = Field(1, ge=1)
    max: int = Field(1, ge=1, description=f"at most {MAX_BATCH}: every gate runs batches this large (memory)")

    @model_validator(mode="after")
    def _ordered(self) -> Batch:
        if self.max > MAX_BATCH:
            raise ValueError(
                f"expected max <= {MAX_BATCH}, got {self.max}: every gate runs batches this large (memory)"
            )
        if not self.min <= self.opt <= self.max:
            raise ValueError(f"expected min <= opt <= max, got min={self.min}, opt={self.opt}, max={self.max}")
        return self


class Dynamic(Strict):
    """Which axes are dynamic in the exported graph."""

    batch: bool | None = Field(None, description="dynamic batch axis; default: when batch.max > batch.min")
    hw: bool = Field(False, description="dynamic height and width")


class NMS(Strict):
    """Embedded non-maximum suppression: output (B, max_det, 6+extra) after NMS."""

    iou: float = Field(0.7, gt=0, le=1)
    score: float = Field(0.25, ge=0, le=1)
    max_det: int = Field(
        300, ge=1, description=f"at most {MAX_DET}: the output holds this many rows per image (memory)"
    )

    @field_validator("max_det")
    @classmethod
    def _max_det(cls, v: int) -> int:
        if v > MAX_DET:
            raise ValueError(f"expected at most {MAX_DET}, got {v}: the output holds max_det rows per image (memory)")
        return v


RETIRED_FP16 = "set export.precision: fp16 instead (one precision step shared by every target)"


INT8_OPS = (
    "Conv",
    "ConvTranspose",
    "MatMul",
    "Gemm",
    "Add",
    "Mul",
    "Sigmoid",
    "Concat",
    "MaxPool",
    "Resize",
    "Split",
    "Slice",
)
"""What is quantized by default: the compute ops and the element-wise ops between them."""


class Sensitivity(Strict):
    """Per-block sensitivity of an INT8 build: the task metric each block costs when it alone is quantized."""

    blocks: int = Field(
        16,
        ge=0,
        description="measure at most this many blocks (quantizable nodes grouped by their name scopes, the "
        "largest split first); 0: every node on its own",
    )
    splits: int = Field(
        6,
        ge=0,
        description="then the costliest block of several nodes is measured again in parts (up to 4, by its inner "
        "scopes), this many times: the table is finer where the cost is",
    )
    when: Literal["goal", "always"] = Field(
        "goal",
        description="goal: measured when export.quantization.goal is set (the search needs it; a plain INT8 "
        "build costs no more than the quantization); always: every INT8 build measures the table",
    )

    def measured(self, goal: Any) -> bool:
        return self.when == "always" or goal is not None


class QuantizationGoal(Strict):
    """What a searched INT8 build must keep: the fewest, most sensitive nodes stay float until it holds."""

    min_agreement: float | None = Field(
        None,
        gt=0,
        le=1,
        description="lowest agreement with the fp32 model on the calibration images at every declared shape, in "
        "each task's headline (detections: mAP50-95 both directions; dense maps: IoU; class scores: top-1; "
        "sequences: exact match; embeddings: cosine), judged by the accuracy gate's rules and thresholds",
    )
    max_drop: float | None = Field(
        None,
        ge=0,
        le=1,
        description="largest mAP50-95 drop against the labels of gates.accuracy.labelled (fp32 minus INT8)",
    )
    max_float: float = Field(
        0.25, gt=0, le=1, description="largest share of the quantizable nodes the search may keep float"
    )
    max_latency_ratio: float | None = Field(
        None,
        gt=0,
        description="largest latency of the searched model over the fp32 model's, measured on ONNX Runtime's CPU "
        "(the machine that builds; meaningful for ort targets with uint8 activations)",
    )

    @model_validator(mode="after")
    def _aim(self) -> QuantizationGoal:
        if self.min_agreement is None and self.max_drop is None:
            raise ValueError("a goal needs min_agreement or max_drop (or both)")
        return self


class Quantization(Strict):
    """INT8 explicit quantization (export.precision: int8) with ONNX Runtime's static QDQ quantizer."""

    method: Literal["minmax", "entropy", "percentile"] = Field("minmax", description="activation range calibration")
    activations: Literal["int8", "uint8"] = Field(
        "int8",
        description="int8: symmetric (zero point 0), the QDQ TensorRT accepts, one file for every target; uint8: "
        "asymmetric, what ONNX Runtime's fast x86 kernels take (trt targets then compile a symmetric twin with "
        "the same float nodes)",
    )
    per_channel: bool = Field(True, description="per-output-channel weight scales")
    ops: list[str] = Field(
        default_factory=lambda: list(INT8_OPS),
        description="op types quantized (int8 chains between them avoid re-quantizing); the decode tail stays float",
    )
    float_tail: bool = Field(
        True,
        description="keep float every node from which an output is reached without a Conv/MatMul/Gemm (decode "
        "tails mixing pixels and probabilities)",
    )
    exclude_nodes: list[str] = Field(default_factory=list, description="node names kept float")
    sensitivity: Sensitivity | None = Field(
        default_factory=Sensitivity, description="measure each block's cost to the task metric (null: do not)"
    )
    goal: QuantizationGoal | None = Field(
        None, description="search which nodes stay float until the goal holds (needs sensitivity)"
    )

    @model_validator(mode="after")
    def _goal_needs_sensitivity(self) -> Quantization:
        if self.goal is not None and self.sensitivity is None:
            raise ValueError("goal: the search ranks nodes by their sensitivity; do not set sensitivity: null")
        return self


class Export(Strict):
    """How the source is exported to ONNX."""

    @model_validator(mode="before")
    @classmethod
    def _retired(cls, data: Any) -> Any:
        if isinstance(data, dict) and "half" in data:
            raise ValueError(f"export.half was removed: {RETIRED_FP16}")
        return data

    opset: int = Field(17, ge=11, le=23, description="ONNX opset")
    imgsz: tuple[int, int] = Field((640, 640), description="export input size (H, W); one int means square")
    batch: Batch = Field(default_factory=Batch)
    dynamic: Dynamic = Field(default_factory=Dynamic)
    nms: NMS | None = Field(None, description="embed NMS in the graph (true for defaults)")
    precision: Literal["fp32", "fp16", "int8"] = Field(
        "fp32",
        description="one precision step shared by every target: fp16 (float16 weights and compute, float32 inputs "
        "and outputs) or int8 (QDQ explicit quantization calibrated on input.calibration)",
    )
    quantization: Quantization = Field(default_factory=Quantization, description="int8 options")
    simplify: bool = Field(False, description="run the exporter's own simplifier (onnxslim)")

    @field_validator("imgsz", mode="before")
    @classmethod
    def _square(cls, v: Any) -> Any:
        return (v, v) if isinstance(v, int) else v

    @field_validator("imgsz")
    @classmethod
    def _stride(cls, v: tuple[int, int]) -> tuple[int, int]:
        return _side_ok(v, "export")

    @model_validator(mode="after")
    def _pixels(self) -> Export:
        pixels = self.batch.max * self.imgsz[0] * self.imgsz[1]
        if pixels > MAX_PIXELS:
            raise ValueError(
                f"batch.max x H x W = {pixels} pixels; expected at most {MAX_PIXELS} (e.g. 2 x 4096 x 4096): the "
                "export "
                "and every gate hold one batch of that size (memory)"
            )
        return self

    @field_validator("nms", mode="before")
    @classmethod
    def _nms_bool(cls, v: Any) -> Any:
        if v is True:
            return {}
        return None if v is False else v

    @property
    def dynamic_batch(self) -> bool:
        return self.dynamic.batch if self.dynamic.batch is not None else self.batch.max > self.batch.min


class Recipe(BaseModel):
    """A resolved recipe. Plugin sections hold the plugin's own validated Config objects."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    name: str = Field(description="deployment name: a plain file name; build/<name>/ holds its artifacts")
    source: SerializeAsAny[Strict] = Field(description="where the model comes from; `kind` picks the source")
    input: Input = Field(default_factory=Input)
    export: Export = Field(default_factory=Export)
    fixes: list[FixEntry] = Field(default_factory=list, description="ordered graph fixes: a name, or {name: {options}}")
    targets: dict[str, TargetEntry] = Field(description="target name -> its options (and `gates:` overrides)")
    gates: dict[str, SerializeAsAny[Strict]] = Field(
        default_factory=dict, description="gate name -> options; applies to every target"
    )
    base_dir: str = Field("", exclude=True, description="folder of the recipe file: relative paths start here")
    origin: str = Field("", exclude=True, description="the recipe file (and overrides) errors name")

    def shapes(self) -> list[tuple[int, int]]:
        """Every declared (H, W) input shape, export size first, no duplicates."""
        out = [tuple(self.export.imgsz)]
        out += [tuple(s) for s in self.input.shapes if tuple(s) not in out]
        return out  # type: ignore[return-value]


class FixEntry(BaseModel):
    """One fix in the ordered chain."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)
    name: str
    config: SerializeAsAny[Strict]


class TargetEntry(BaseModel):
    """One target: its options and gate settings that apply to it only."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)
    config: SerializeAsAny[Strict]
    gates: dict[str, SerializeAsAny[Strict]] = Field(default_factory=dict)


Recipe.model_rebuild()
