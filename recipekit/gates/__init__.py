"""Validation gates: checks that stop a broken artifact from being published."""

from recipekit.registry import Registry

GATES = Registry(
    "gate",
    {
        "parity": "recipekit.gates.parity:Parity",
        "batch-consistency": "recipekit.gates.batch_consistency:BatchConsistency",
        "shape-sweep": "recipekit.gates.shape_sweep:ShapeSweep",
        "empty-input": "recipekit.gates.empty_input:EmptyInput",
        "static-dims": "recipekit.gates.static_dims:StaticDimsGate",
        "trt-lint": "recipekit.gates.trt_lint:TrtLint",
        "webgpu-lint": "recipekit.gates.webgpu_lint:WebGpuLint",
        "webgpu-browser": "recipekit.gates.webgpu_browser:WebGpuBrowser",
        "latency": "recipekit.gates.latency:Latency",
    },
)
