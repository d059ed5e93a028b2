"""Pieces of the webgpu artifact: tensor descriptions, the page's manifest."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from recipekit.cache.digests import file_sha256
from recipekit.targets.webgpu.bundles import BUNDLES

if TYPE_CHECKING:
    import onnx

ELEM = {1: "float32", 10: "float16", 7: "int64", 6: "int32", 2: "uint8", 9: "bool", 11: "float64"}


def tensors(values: Any, kinds: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Name, shape (ints, or the symbolic name of a dynamic axis), dtype (and meaning for outputs)."""
    out = []
    for v in values:
        t = v.type.tensor_type
        row = {
            "name": v.name,
            "dtype": ELEM.get(t.elem_type, str(t.elem_type)),
            "shape": [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.shape.dim],
        }
        if kinds is not None:
            row["kind"] = kinds.get(v.name) or {"kind": "tensor"}
        out.append(row)
    return out


def external_data(path: Path) -> list[str]:
    """The model's external data files, relative to it (the page passes them to onnxruntime-web)."""
    from recipekit.onnx.external import data_files

    return [p.relative_to(path.parent).as_posix() for p in data_files(path)]


def runtime_facts(version: str, bundle: str, runtime: dict[str, Any]) -> dict[str, Any]:
    """The runtime a page loads: version, bundle and its import path, where its files are (+ a deprecation)."""
    b = BUNDLES[bundle]
    return {
        "version": version,
        "bundle": bundle,
        "import": b.import_path,
        **({"deprecated": b.deprecated} if b.deprecated else {}),
        **({"requires": "WebAssembly.Suspending (JSPI)"} if b.needs_jspi else {}),
        **runtime,
    }


def graph_inputs(model: onnx.ModelProto) -> list[Any]:
    inits = {i.name for i in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in inits]


def page_manifest(
    model: onnx.ModelProto,
    path: Path,
    recipe: Any,
    config: Any,
    version: str,
    runtime: dict[str, Any],
    kinds: dict[str, Any],
    sample: str | None,
) -> dict[str, Any]:
    """What the page (and a person deploying it) needs: runtime, bundle, tensors, preprocessing."""
    from recipekit.precision import graph_precision

    nms = recipe.export.nms
    return {
        "format": "recipekit-webgpu/1",
        "model": path.name,
        "model_sha256": file_sha256(path),
        "external_data": [{"path": rel, "data": rel} for rel in external_data(path)],
        "precision": graph_precision(model),
        "fp16": graph_precision(model) == "fp16",
        "onnxruntime_web": runtime_facts(version, config.bundle, runtime),
        "execution_providers": list(BUNDLES[config.bundle].eps),
        "input_size": list(recipe.export.imgsz),
        "input_shapes": [list(s) for s in recipe.shapes()],  # preprocess.js picks per-image sizes among/within them
        "inputs": tensors(graph_inputs(model)),
        "outputs": tensors(model.graph.output, kinds),
        "preprocess": recipe.input.preprocess.model_dump(mode="json"),
        "nms": nms.model_dump(mode="json") if nms else None,
        "page": "index.html",
        "sample": sample,
        "headers": {"Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp"},
    }
