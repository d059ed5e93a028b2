"""Validation gates: checks that stop a broken artifact from being published."""

from recipekit.core.registry import Registry

GATES = Registry(
    "gate",
    {
        "parity": "recipekit.gates.parity:Parity",
        "batch-consistency": "recipekit.gates.batch_consistency:BatchConsistency",
        "shape-sweep": "recipekit.gates.shape_sweep:ShapeSweep",
        "empty-input": "recipekit.gates.empty_input:EmptyInput",
        "static-dims": "recipekit.gates.static_dims:StaticDimsGate",
        "trt-lint": "recipekit.targets.trt.lint:TrtLint",
        "webgpu-lint": "recipekit.targets.webgpu.lint:WebGpuLint",
        "webgpu-browser": "recipekit.targets.webgpu.browser:WebGpuBrowser",
        "latency": "recipekit.gates.latency:Latency",
        "accuracy": "recipekit.gates.accuracy.gate:Accuracy",
        "jetson-device": "recipekit.targets.trt.ondevice:JetsonDevice",
    },
)
