"""Graph fixes: named, ordered rewrites of the source (before export) or the ONNX graph (after)."""

from recipekit.core.registry import Registry

FIXES = Registry(
    "fix",
    {
        "shape-inference": "recipekit.fixes.shape_inference:ShapeInference",
        "constant-folding": "recipekit.fixes.constant_folding:ConstantFolding",
        "onnxslim": "recipekit.fixes.onnxslim:OnnxSlim",
        "static-dims": "recipekit.fixes.static_dims:StaticDims",
        "opset": "recipekit.fixes.opset:Opset",
        "fixed-shape-nms": "recipekit.sources.ultralytics.fixed_shape_nms:FixedShapeNms",
        "static-reshape-channels": "recipekit.fixes.static_reshape_channels:StaticReshapeChannels",
        "zero-safe-reshape": "recipekit.fixes.zero_safe_reshape:ZeroSafeReshape",
        "zero-safe-gemm": "recipekit.fixes.zero_safe_gemm:ZeroSafeGemm",
        "zero-safe-gathernd": "recipekit.fixes.zero_safe_gathernd:ZeroSafeGatherNd",
        "zero-safe-rows": "recipekit.fixes.zero_safe_rows:ZeroSafeRows",
        "split-grouped-conv": "recipekit.fixes.split_grouped_conv:SplitGroupedConv",
        "rtmo-rect-priors": "recipekit.sources.mmpose.rtmo_rect_priors:RtmoRectPriors",
    },
)

RETIRED = {"fp16": "fp16 is no longer a fix: set export.precision: fp16 (one precision step shared by every target)"}
"""Fix names that were removed, with what to write instead (recipe loading names them)."""
