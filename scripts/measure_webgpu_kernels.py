#!/usr/bin/env python3
"""Measure which node signatures each bundle's WebGPU EP has a kernel for; write
recipekit/targets/webgpu/ops-measured.json (read by webgpu-lint, recipekit.targets.webgpu.kernels).

Every distinct signature (domain, op, opset version, input types) of the given ONNX files, after ORT's
basic optimizations (what ORT partitions), is run alone in headless Chromium on the pinned
onnxruntime-web, one page per node, for the JSEP bundle and the native one: ORT logs "kernel not found
in registries" for a node its EP cannot take. Signatures already in the file are kept (pass --fresh to
measure everything again, as after a new onnxruntime-web pin). Usage:
    .venv/bin/python scripts/measure_webgpu_kernels.py build/*/webgpu/model.onnx tests/data/*.onnx [--fresh]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from recipekit.targets.webgpu import kernels  # noqa: E402
from recipekit.targets.webgpu.graph import node_label  # noqa: E402
from recipekit.targets.webgpu.web import pinned_version  # noqa: E402
from recipekit.targets.webgpu.web.run import BrowserSession  # noqa: E402

FAMILIES = {"jsep": "jsep", "native": "webgpu"}  # kernel family -> a bundle that runs it


def samples(paths: list[Path]) -> dict[str, tuple[object, object, dict]]:
    """signature -> (model, node, types) of one node that has it."""
    out: dict[str, tuple[object, object, dict]] = {}
    for path in paths:
        model = kernels.basic_optimized(path)
        types = kernels.input_types(model)
        sigs = kernels.signatures(model)
        for node in model.graph.node:
            sig = sigs[node_label(node)]
            if sig not in out and "?" not in sig.split("|")[3]:
                out[sig] = (model, node, types)
    return out


def measure(todo: dict[str, tuple], bundle: str, tmp: Path) -> dict[str, bool]:
    import onnx

    found: dict[str, bool] = {}
    with BrowserSession() as session:
        for i, (sig, (model, node, types)) in enumerate(sorted(todo.items())):
            path = tmp / f"n{i}.onnx"
            onnx.save(kernels.probe_model(model, node, types), str(path))
            report = session.run(path, [], bundle, ("webgpu",), 120)
            run = report.runs[0] if report.runs else None
            lines = [ln for ln in report.console if "placed on" in ln or "kernel not found" in ln]
            if run is None or not lines:  # ORT refused the graph before placing it: nothing measured
                print(f"  ? {sig}: {(report.error or (run.error if run else ''))[:120]}", flush=True)
                continue
            found[sig] = node_label(node) not in run.no_kernel
            print(f"  {'+' if found[sig] else '-'} {sig}", flush=True)
    return found


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", type=Path)
    ap.add_argument("--fresh", action="store_true", help="forget the signatures measured before")
    args = ap.parse_args()
    doc = {"kernels": {}} if args.fresh or not kernels.MEASURED.is_file() else json.loads(kernels.MEASURED.read_text())
    if doc.get("onnxruntime_web") not in (None, pinned_version()):
        doc = {"kernels": {}}  # measured with another onnxruntime-web: measure again
    every = samples(args.models)
    with tempfile.TemporaryDirectory(prefix="recipekit-kernels-") as tmp:
        for family, bundle in FAMILIES.items():
            known = doc["kernels"].setdefault(family, {})
            todo = {s: v for s, v in every.items() if s not in known}
            print(f"{family} ({bundle} bundle): {len(todo)} new signature(s) of {len(every)}", flush=True)
            known.update(measure(todo, bundle, Path(tmp)))
    doc.update(
        onnxruntime_web=pinned_version(),
        generated_by="scripts/measure_webgpu_kernels.py",
        method="each signature alone in headless Chromium; ORT's 'kernel not found in registries' log",
    )
    doc["kernels"] = {f: dict(sorted(v.items())) for f, v in sorted(doc["kernels"].items())}
    kernels.MEASURED.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {kernels.MEASURED}: " + ", ".join(f"{f} {len(v)}" for f, v in doc["kernels"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
