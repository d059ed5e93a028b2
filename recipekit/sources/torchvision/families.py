"""The torchvision detection builders recipekit builds, by family, known without importing torch.

A family decides how synthetic weights are calibrated, what the outputs are and what the config's
detection settings are called for its builder: two-stage R-CNNs take `box_score_thresh`,
`box_nms_thresh`, `box_detections_per_img` and `rpn_score_thresh`; one-stage detectors (RetinaNet,
FCOS, SSD, SSDlite) take `score_thresh`, `nms_thresh` and `detections_per_img` (the config's box_*
names map onto them, and rpn_score_thresh is refused: they have no RPN).
"""

from __future__ import annotations

from typing import Any

from recipekit.core.errors import RecipeError

FAMILIES: dict[str, str] = {
    "fasterrcnn_mobilenet_v3_large_320_fpn": "rcnn",
    "fasterrcnn_mobilenet_v3_large_fpn": "rcnn",
    "fasterrcnn_resnet50_fpn": "rcnn",
    "fasterrcnn_resnet50_fpn_v2": "rcnn",
    "maskrcnn_resnet50_fpn": "mask_rcnn",
    "maskrcnn_resnet50_fpn_v2": "mask_rcnn",
    "keypointrcnn_resnet50_fpn": "keypoint_rcnn",
    "retinanet_resnet50_fpn": "retinanet",
    "retinanet_resnet50_fpn_v2": "retinanet",
    "fcos_resnet50_fpn": "fcos",
    "ssd300_vgg16": "ssd",
    "ssdlite320_mobilenet_v3_large": "ssd",
}
"""Every builder of torchvision.models.detection (0.29) -> its family."""
TWO_STAGE = ("rcnn", "mask_rcnn", "keypoint_rcnn")
ONE_STAGE_NAMES = {
    "box_score_thresh": "score_thresh",
    "box_nms_thresh": "nms_thresh",
    "box_detections_per_img": "detections_per_img",
}
FIXED_SIZE = {"ssd300_vgg16": (300, 300), "ssdlite320_mobilenet_v3_large": (320, 320)}
"""SSD builders resize every image to a fixed size inside the graph (GeneralizedRCNNTransform fixed_size)."""


def family(builder: str, origin: str = "recipe") -> str:
    if builder not in FAMILIES:
        raise RecipeError(
            origin,
            "source.builder",
            f"unknown torchvision detection builder {builder!r}; supported: {', '.join(sorted(FAMILIES))}",
        )
    return FAMILIES[builder]


def model_kwargs(cfg: Any, origin: str = "recipe") -> dict[str, Any]:
    """The builder's keyword arguments from the config, under the names its family uses."""
    fam = family(cfg.builder, origin)
    named = {k: getattr(cfg, k) for k in (*ONE_STAGE_NAMES, "rpn_score_thresh") if getattr(cfg, k) is not None}
    if fam not in TWO_STAGE:
        if "rpn_score_thresh" in named:
            raise RecipeError(
                origin, "source.rpn_score_thresh", f"{cfg.builder} is a one-stage detector: it has no RPN"
            )
        named = {ONE_STAGE_NAMES[k]: v for k, v in named.items()}
    clash = sorted(set(named) & set(cfg.options))
    if clash:
        raise RecipeError(origin, f"source.options.{clash[0]}", "set twice: once by name in source, once in options")
    return {**named, **cfg.options}


def cap_of(model: Any) -> int | None:
    """The maximum number of detections per image the built model returns."""
    heads = getattr(model, "roi_heads", None)
    return int(heads.detections_per_img) if heads is not None else getattr(model, "detections_per_img", None)
