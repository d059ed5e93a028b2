"""recipekit: declarative, cached, gated builds of vision models for ONNX Runtime, WebGPU and TensorRT."""

__version__ = "0.1.0"
