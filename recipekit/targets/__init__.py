"""Targets: compile the fixed ONNX into what one runtime loads (ORT, WebGPU, TensorRT, Jetson bundle)."""

from recipekit.registry import Registry

TARGETS = Registry(
    "target",
    {
        "ort": "recipekit.targets.ort:OrtTarget",
        "webgpu": "recipekit.targets.webgpu:WebGpuTarget",
        "trt": "recipekit.targets.trt:TrtTarget",
        "trt-jetson": "recipekit.targets.trt_jetson:TrtJetsonTarget",
    },
)
