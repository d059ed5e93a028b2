"""Sources: turn a model description (architecture, weights, ONNX file) into a raw ONNX graph."""

from recipekit.registry import Registry

SOURCES = Registry(
    "source",
    {
        "ultralytics": "recipekit.sources.ultralytics:UltralyticsSource",
        "mmpose": "recipekit.sources.mmpose:MmposeSource",
        "torchvision": "recipekit.sources.torchvision:TorchvisionSource",
        "onnx": "recipekit.sources.onnx_file:OnnxFileSource",
    },
)
