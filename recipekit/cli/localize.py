"""`recipekit localize ARTIFACT`: find the first node whose output on a runtime disagrees with ONNX Runtime
on the CPU, and cut it out as a single-node repro (recipekit.onnx.localize).

Exit status: 0 every output agrees; 1 a disagreement (localized or not: the report says); 2 bad input.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from recipekit.cli.common import parse
from recipekit.core.errors import UsageError


def _parser() -> argparse.ArgumentParser:
    from recipekit.targets.webgpu.bundles import BUNDLES

    p = argparse.ArgumentParser(
        prog="recipekit localize",
        description="Run an artifact on a runtime and on ORT CPU, find the first node that disagrees (or fails), "
        "and write it as a single-node ONNX repro with its inputs.",
    )
    p.add_argument("artifact", help="a webgpu target folder (build/<name>/webgpu), a folder with model.onnx, or .onnx")
    p.add_argument("--backend", choices=("browser", "ort"), default="browser", help="the runtime under test")
    p.add_argument("--bundle", choices=sorted(BUNDLES), help="onnxruntime-web bundle (default: the artifact's)")
    p.add_argument("--ep", default=None, help="execution provider in the browser (default: the bundle's first)")
    p.add_argument("--image", help="an image, preprocessed as the artifact's manifest says (default: its sample)")
    p.add_argument("--blank", type=int, metavar="VALUE", help="a uniform image of this pixel value instead")
    p.add_argument("--size", type=int, nargs=2, metavar=("H", "W"), help="input size where the model's is dynamic")
    p.add_argument("--reference", help="the ONNX that ORT CPU runs as the reference (default: the artifact's model)")
    p.add_argument("--out", help="folder for localization.json and the repro (default: ./localize-<model>)")
    p.add_argument("--runs", type=int, default=16, help="most backend runs (default 16)")
    p.add_argument("--fast", action="store_true", help="Dawn's fast toggles, as the webgpu-browser gate's first run")
    return p


def _artifact(arg: str) -> tuple[Path, dict[str, Any]]:
    """The model file and the webgpu manifest beside it ({} if none)."""
    path = Path(arg)
    folder = path if path.is_dir() else path.parent
    manifest = json.loads((folder / "webgpu.json").read_text()) if (folder / "webgpu.json").is_file() else {}
    model = folder / (manifest.get("model") or "model.onnx") if path.is_dir() else path
    if not model.is_file():
        raise UsageError(f"{arg}: no ONNX model there (expected a .onnx file or a folder with model.onnx)")
    return model, manifest


def _feeds(model: Path, manifest: dict[str, Any], args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """(case name, {input name: tensor}) from --image / --blank / the manifest's sample."""
    import onnx

    from recipekit.onnx.preprocess import blank_tensor, image_tensor
    from recipekit.recipe.schema import Preprocess

    graph = onnx.load(str(model), load_external_data=False).graph
    inits = {i.name for i in graph.initializer}
    first = next(i for i in graph.input if i.name not in inits)
    dims = [d.dim_value for d in first.type.tensor_type.shape.dim]
    pre = Preprocess.model_validate(manifest.get("preprocess") or {})
    nchw = pre.layout == "nchw"
    static = tuple(dims[2:4] if nchw else dims[1:3]) if len(dims) == 4 and all(dims[1:]) else None
    hw = tuple(args.size or static or manifest.get("input_size") or ())
    if len(hw) != 2:
        raise UsageError(f"{model}: its input size is dynamic: give --size H W")
    image = args.image or (str(model.parent / manifest["sample"]) if manifest.get("sample") else None)
    if args.blank is not None or image is None:
        value = args.blank or 0
        return f"blank({value})", {first.name: blank_tensor(hw, pre, value)}
    if not Path(image).is_file():
        raise UsageError(f"--image: {image} is not a file")
    return Path(image).name, {first.name: image_tensor(Path(image), hw, pre)}


def invoke(command: str, argv: list[str]) -> int:
    from recipekit.onnx.localize import localize, ort_backend

    args = parse(_parser(), argv)
    model, manifest = _artifact(args.artifact)
    case, feeds = _feeds(model, manifest, args)
    out = Path(args.out or f"localize-{model.parent.name if model.name == 'model.onnx' else model.stem}")
    reference = Path(args.reference) if args.reference else None
    if args.backend == "ort":
        loc = localize(model, feeds, ort_backend, out, reference, max_runs=args.runs)
    else:
        loc = _in_browser(model, feeds, out, reference, manifest, args)
    (out / "localization.json").write_text(json.dumps({"case": case, **loc.to_json()}, indent=1, default=str))
    from recipekit.targets.webgpu.localize import summary

    print(f"{model} on {case}: " + (loc.message if loc.status != "localized" else summary(loc)))
    print(f"report: {out / 'localization.json'}")
    return 0 if loc.status == "agrees" else 1


def _in_browser(
    model: Path, feeds: dict[str, Any], out: Path, reference: Path | None, manifest: dict, args: Any
) -> Any:
    from recipekit.core.errors import Unavailable
    from recipekit.targets.webgpu.browser import FAST_DAWN
    from recipekit.targets.webgpu.bundles import BUNDLES, DEFAULT
    from recipekit.targets.webgpu.localize import localize_in_browser
    from recipekit.targets.webgpu.web.run import BrowserSession

    bundle = args.bundle or (manifest.get("onnxruntime_web") or {}).get("bundle") or DEFAULT
    ep = args.ep or BUNDLES[bundle].eps[0]
    try:
        with BrowserSession(None, FAST_DAWN if args.fast else ()) as session:
            return localize_in_browser(session, model, feeds, bundle, out, reference, ep=ep, max_runs=args.runs)
    except Unavailable as exc:
        raise UsageError(f"cannot run the browser here: {exc.reason}") from exc
