"""INT8 on trained detectors, ONNX Runtime CPU: fp32, plain INT8 and searched INT8 side by side in one run.

Two trained YOLOv8n detectors, each built from its recipe with `recipekit build` (the builds share a
cache; nothing here re-describes a model):
- `nudenet`: recipes/nudenet-320n.yaml, the detector the `nudenet` package ships (an Ultralytics
  export; an `onnx` source, top-left letterbox, BGR), on real photos that installed packages ship
  (Ultralytics' bus.jpg and zidane.jpg, matplotlib's grace_hopper.jpg, scikit-image's astronaut and
  camera), each whole, mirrored and cut into four overlapping two-thirds crops (30 images at 320,
  its samples and its calibration set). No labels: no mAP against labels.
- `shapes`: the detector trained here (tests/fixtures/shapes/shapes-yolov8n.pt, an `ultralytics`
  source) calibrated on generated training images and evaluated on its generated validation images
  with their labels. A `.pt` source, so Ultralytics' own ONNX export of the same weights is a row too.
Rows per model: fp32 (recipekit's build), plain INT8 and searched INT8 (`export.quantization.goal`),
both with uint8 activations (ONNX Runtime's fast x86 kernels); `--symmetric` adds INT8 searched
with symmetric activations (what TensorRT compiles; a build whose goal is out of reach is a row
saying so). Every ONNX file of a model
runs in one process, the same session options (all graph optimizations, `--threads` intra-op threads,
sequential), the same image, warm-up first, then `--runs` round robin. Agreement: the accuracy gate's
measure (recipekit.precision.metric.score): COCO mAP50-95 of the fp32 build's confident detections
(score >= 0.25) as truth for the row's, and the other way round, with the detections each direction
rests on, on the evaluation images (nudenet: the images the search ran on; shapes: the labelled
validation images, where the search measured its drop; its agreement it measured on the training
images it calibrated on).

    .venv/bin/python benchmarks/precision.py [--runs 20] [--threads 2] [--json] [--symmetric]

Goal (issue 26): searched INT8 <= 0.6x fp32 latency, agreement >= 0.9 both ways, mAP drop <= 0.01.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHAPES = ROOT / "tests" / "helpers" / "shapes.py"
PHOTOS = (
    "ultralytics:bus.jpg",
    "ultralytics:zidane.jpg",
    "matplotlib:mpl-data/sample_data/grace_hopper.jpg",
    "skimage:data/astronaut.png",
    "skimage:data/camera.png",
)
SHAPES_RECIPE = """name: shapes
source: {{kind: ultralytics, model: yolov8n.yaml, init: weights, weights: {weights}}}
input:
  samples: [{samples}]
  calibration: calib/images
export:
  opset: 17
  imgsz: [320, 320]
  quantization: {{activations: uint8, goal: null}}
targets: {{ort: {{}}}}
gates: {{parity: {{box_px: 0.1, score_abs: 0.002}}, accuracy: {{labelled: {{images: val/images, labels: val/labels}}}}}}
"""
ULTRALYTICS_EXPORT = """
import os, sys, tempfile
os.environ.update(YOLO_OFFLINE="1", YOLO_AUTOINSTALL="false", YOLO_CONFIG_DIR=tempfile.mkdtemp())
from ultralytics import YOLO
print(YOLO(sys.argv[1]).export(format="onnx", imgsz=320, opset=17))
"""


def run(cmd: list[str]) -> str:
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        sys.exit(f"failed: {' '.join(map(str, cmd))}\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    return out.stdout


def photos(folder: Path) -> list[Path]:
    """The real photos, each whole, mirrored and as four two-thirds crops (top, bottom, left, right)."""
    import cv2
    import numpy as np

    from recipekit.onnx.preprocess import read_image, resolve_sample

    folder.mkdir(parents=True, exist_ok=True)
    for spec in PHOTOS:
        img = read_image(resolve_sample(spec, ROOT))
        h, w = img.shape[:2]
        stem = Path(spec.split(":", 1)[1]).stem
        cuts = {"full": img, "mirrored": img[:, ::-1], "top": img[: h * 2 // 3], "bottom": img[h // 3 :]}
        cuts.update({"left": img[:, : w * 2 // 3], "right": img[:, w // 3 :]})
        for tag, cut in cuts.items():
            cv2.imwrite(str(folder / f"{stem}-{tag}.png"), np.ascontiguousarray(cut))
    return sorted(folder.iterdir())


def shapes_module():
    spec = importlib.util.spec_from_file_location("shapes_generator", SHAPES)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def nudenet(work: Path) -> tuple[Path, list[str]]:
    """recipes/nudenet-320n.yaml on the photos and their cuts (samples and calibration, 320 only)."""
    found = photos(work / "photos")
    listed = ",".join(f"'{p}'" for p in found)
    return ROOT / "recipes" / "nudenet-320n.yaml", [
        f"input.samples=[{listed}]",
        f"+input.calibration='{work / 'photos'}'",
        "input.shapes=[]",
    ]


def shapes(work: Path, val: int, calib: int) -> tuple[Path, list[str]]:
    gen = shapes_module()
    gen.write(work / "val", val, gen.VAL_SEED)
    gen.write(work / "calib", calib, gen.TRAIN_SEED)
    samples = ", ".join(f"val/images/{i:04d}.png" for i in range(8))  # the gates' images
    (work / "shapes.yaml").write_text(SHAPES_RECIPE.format(weights=gen.FIXTURE, samples=samples))
    return work / "shapes.yaml", []


def build(recipe: Path, name: str, overrides: list[str], work: Path) -> tuple[Path | None, dict, float]:
    """`recipekit build` in a subprocess, as a user runs it: the model (None when the build failed: the
    manifest is then {"failed": its line}), its manifest, the seconds."""
    from recipekit.recipe.load import load

    out = work / "out" / name.replace(" ", "-").replace(",", "").replace("(", "").replace(")", "")
    cmd = [sys.executable, "-m", "recipekit", "build", str(recipe), *overrides]
    t0 = time.perf_counter()
    done = subprocess.run(
        [*cmd, "--cache", str(work / "cache"), "--out", str(out), "-q"], capture_output=True, text=True
    )
    seconds = time.perf_counter() - t0
    if done.returncode == 1:  # a failed step (an unreachable goal): a row that says so
        lines = done.stdout.splitlines()
        why = next((ln.strip() for ln in lines if "goal not reached" in ln), lines[-1] if lines else "failed")
        return None, {"failed": why}, seconds
    if done.returncode != 0:
        sys.exit(f"failed: {' '.join(map(str, cmd))}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    folder = out / load(recipe, overrides).name / "ort"
    return folder / "model.onnx", json.loads((folder / "manifest.json").read_text()), seconds


def variants(goal: str, symmetric: bool) -> dict[str, list[str]]:
    int8 = ["export.precision=int8", "export.quantization.activations=uint8"]
    out = {
        "fp32": [],
        "plain INT8": [*int8, "export.quantization.goal=null"],
        "searched INT8": [*int8, f"export.quantization.goal={goal}"],
    }
    if symmetric:
        symmetric_int8 = [int8[0], "export.quantization.activations=int8"]
        out["searched INT8, symmetric (trt)"] = [*symmetric_int8, out["searched INT8"][-1]]
    return out


def evaluation(recipe: Path, overrides: list[str]) -> tuple[list, list | None, dict, object]:
    """The evaluation images as tensors (the labelled set, else the samples), their labels (or None),
    the accuracy gate's measure, and the loaded recipe."""
    from recipekit.onnx.preprocess import image_tensor, resolve_sample
    from recipekit.precision.metric import labelled_set, options
    from recipekit.recipe.load import load

    r = load(recipe, [o for o in overrides if "goal" not in o])
    acc = r.gates.get("accuracy")
    if acc is not None and acc.labelled is not None:
        tensors, truth = labelled_set(r, acc.labelled.images, acc.labelled.labels)
    else:
        pre, hw = r.input.preprocess, tuple(r.export.imgsz)
        tensors = [image_tensor(resolve_sample(s, Path(r.base_dir)), hw, pre) for s in r.input.samples]
        truth = None
    return tensors, truth, options(r)["measure"], r


def agreement(models: dict[str, Path], recipe: Path, overrides: list[str], kinds: dict) -> tuple[dict, int]:
    """Each model against the fp32 build on the evaluation images (both directions, counts, drop)."""
    from recipekit.onnx.runtime import OrtRunner
    from recipekit.precision.metric import score

    tensors, truth, measure, _ = evaluation(recipe, overrides)
    ref_runner = OrtRunner(models["fp32"])
    names = ref_runner.output_names
    ref = [ref_runner.run_one(x) for x in tensors]
    hws = [tuple(x.shape[2:4]) for x in tensors]
    out = {}
    for name, path in models.items():
        got = [OrtRunner(path).run_one(x) for x in tensors]
        out[name] = score(names, kinds, hws, measure, ref, got, truth)
    return out, len(tensors)


def row(model: str, name: str, s: dict, ms: dict, manifest: dict, images: int) -> dict:
    task = next(iter(s["tasks"].values()))
    d = task["directions"]
    search = (manifest.get("precision") or {}).get("search") or {}
    return {
        "model": model,
        "weights": "trained",
        "variant": name,
        "median_ms": ms[name],
        "latency_ratio": round(ms[name] / ms["fp32"], 3),
        "agreement": s["agreement"],
        "agreement_reference_as_truth": d["reference_as_truth"]["map50_95"],
        "reference_boxes": d["reference_as_truth"]["truth_items"],
        "agreement_artifact_as_truth": d["artifact_as_truth"]["map50_95"],
        "artifact_boxes": d["artifact_as_truth"]["truth_items"],
        "images": images,
        "map_drop": (s.get("labelled") or {}).get("drop"),
        "float_nodes": len(search["float_nodes"]) if search else None,
    }


def rows_for(model: str, recipe: Path, base: list[str], goal: str, work: Path, args, pt: Path | None = None):
    from recipekit.precision.latency import medians

    models, manifests, seconds, failed = {}, {}, {}, []
    for name, overrides in variants(goal, args.symmetric).items():
        path, manifests[name], seconds[name] = build(recipe, f"{model} {name}", [*base, *overrides], work)
        if path is None:
            failed.append({"model": model, "weights": "trained", "variant": name, **manifests[name]})
        else:
            models[name] = path
    kinds = manifests["fp32"]["output_kinds"]
    if pt is not None:  # the same weights through Ultralytics' own exporter (it writes next to the weights)
        import shutil

        local = shutil.copyfile(pt, work / pt.name)
        models["Ultralytics' own export, fp32"] = Path(
            run([sys.executable, "-c", ULTRALYTICS_EXPORT, local]).split()[-1]
        )
    scores, images = agreement(models, recipe, base, kinds)
    ms = medians(models, evaluation(recipe, base)[0][0], args.runs, args.threads)
    out = [row(model, name, scores[name], ms, manifests.get(name, {}), images) for name in models]
    for r in out + failed:
        r["build_seconds"] = round(seconds.get(r["variant"], 0.0), 1)
    return out + failed


def table(rows: list[dict], threads: int, runs: int) -> str:
    head = f"{'model':<8} {'variant':<32} {'ms':>7} {'x fp32':>6} {'ref->art (n)':>14} {'art->ref (n)':>14} "
    lines = [head + f"{'mAP drop':>8} {'float':>5} {'build s':>7}"]
    for r in rows:
        if "failed" in r:
            lines.append(f"{r['model']:<8} {r['variant']:<32} build failed: {r['failed'][:160]}")
            continue
        drop = "-" if r["map_drop"] is None else f"{r['map_drop']:.4f}"
        fl = "-" if r["float_nodes"] is None else str(r["float_nodes"])
        ra = f"{r['agreement_reference_as_truth']:.4f} ({r['reference_boxes']})"
        ar = f"{r['agreement_artifact_as_truth']:.4f} ({r['artifact_boxes']})"
        lines.append(
            f"{r['model']:<8} {r['variant']:<32} {r['median_ms']:>7.1f} {r['latency_ratio']:>6.2f} {ra:>14} {ar:>14} "
            f"{drop:>8} {fl:>5} {r['build_seconds']:>7.1f}"
        )
    lines.append(
        f"onnxruntime CPU, {threads} threads, median of {runs} runs round robin; agreement mAP50-95 against the fp32 "
        "build (ref->art: its detections at score >= 0.25 as truth; art->ref: the row's; n: those detections); "
        "mAP drop: against the labels; build s: the row's build (the searched row: its sensitivity table and search)"
    )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", action="store_true", help="one JSON object per row")
    ap.add_argument("--symmetric", action="store_true", help="also the searched INT8 with symmetric activations")
    ap.add_argument("--val", type=int, default=40, help="shapes: validation images (evaluation, labelled)")
    ap.add_argument("--calib", type=int, default=16, help="shapes: training images to calibrate and search on")
    ap.add_argument("--work", type=Path, default=None)
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="rk-precision-"))
    work.mkdir(parents=True, exist_ok=True)
    recipe, base = nudenet(work)
    rows = rows_for("nudenet", recipe, base, "{min_agreement: 0.9}", work, args)
    recipe, base = shapes(work, args.val, args.calib)
    goal = "{min_agreement: 0.9, max_drop: 0.01}"
    rows += rows_for("shapes", recipe, base, goal, work, args, shapes_module().FIXTURE)
    if args.json:
        for r in rows:
            print(json.dumps(r))
    else:
        print(table(rows, args.threads, args.runs))


if __name__ == "__main__":
    main()
