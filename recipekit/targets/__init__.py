"""Targets: compile the fixed ONNX into what one runtime loads (ORT, WebGPU, TensorRT, Jetson bundle)."""

from recipekit.core.registry import Registry

TARGETS = Registry(
    "target",
    {
        "ort": "recipekit.targets.ort:OrtTarget",
        "webgpu": "recipekit.targets.webgpu.target:WebGpuTarget",
        "trt": "recipekit.targets.trt.engine:TrtTarget",
        "trt-jetson": "recipekit.targets.trt.jetson:TrtJetsonTarget",
    },
)
