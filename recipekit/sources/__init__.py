"""Sources: turn a model description (architecture, weights, ONNX file) into a raw ONNX graph."""

from recipekit.core.registry import Registry

SOURCES = Registry(
    "source",
    {
        "ultralytics": "recipekit.sources.ultralytics.source:UltralyticsSource",
        "mmpose": "recipekit.sources.mmpose.source:MmposeSource",
        "torchvision": "recipekit.sources.torchvision.source:TorchvisionSource",
        "onnx": "recipekit.sources.onnx_file:OnnxFileSource",
        "python": "recipekit.sources.python.source:PythonSource",
    },
)
