"""INT8 on trained detectors, ONNX Runtime CPU: fp32, plain INT8 and searched INT8 side by side in one run.

Two trained YOLOv8n detectors:
- `nudenet`: the detector the `nudenet` package ships (320n.onnx, an Ultralytics export; an `onnx`
  source), on real photos that installed packages ship (Ultralytics' bus.jpg and zidane.jpg,
  matplotlib's grace_hopper.jpg, scikit-image's astronaut and camera), each whole, mirrored and cut
  into four overlapping two-thirds crops (30 images). No labels: no mAP against labels.
- `shapes`: the detector trained here (tests/fixtures/shapes/shapes-yolov8n.pt, an `ultralytics`
  source) on its generated validation images, with their labels; calibrated on training images.
  A `.pt` source, so Ultralytics' own ONNX export of the same weights is a row too.
Rows per model: fp32 (recipekit's build), plain INT8 and searched INT8 (`export.quantization.goal`),
both with uint8 activations (ONNX Runtime's fast x86 kernels) and a sensitivity table of 64 blocks
(finer than the default 32: smaller float sets); `--symmetric` adds the searched INT8
with symmetric activations (the placement TensorRT targets get). Every ONNX file of a model runs in
one process, the same session options (all graph optimizations, `--threads` intra-op threads,
sequential), the same image, warm-up first, then `--runs` round robin. Agreement: COCO mAP50-95 of
the fp32 build's confident detections (score >= 0.25) as truth for the row's, and the other way
round (the accuracy gate's measure, recipekit.precision.metric.score), on the evaluation images,
with the box counts each direction rests on.

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
RAW_HEAD = (
    "{{output0: {{kind: raw_head, channel_axis: 1, anchor_axis: 2, groups: [{{role: box, start: 0, stop: 4, "
    "format: cxcywh}}, {{role: class_scores, start: 4, stop: {stop}}}]}}}}"
)
RECIPE = """name: {name}
source: {source}
input:
  samples: [{samples}]
  calibration: {calibration}
export:
  opset: 17
  imgsz: [320, 320]
  precision: fp32
  quantization: {{activations: uint8, sensitivity: {{blocks: 64}}}}
targets: {{ort: {{}}}}
gates: {{parity: {{box_px: 0.1, score_abs: 0.002}}, accuracy: {{judge: []{labelled}}}}}
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


def photos(folder: Path) -> list[str]:
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
    return sorted(p.name for p in folder.iterdir())


def shapes_module():
    spec = importlib.util.spec_from_file_location("shapes_generator", SHAPES)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def nudenet_recipe(work: Path) -> Path:
    import nudenet

    names = photos(work / "photos")
    onnx = Path(nudenet.__file__).with_name("320n.onnx")
    source = f"{{kind: onnx, path: {onnx}, output_kinds: {RAW_HEAD.format(stop=22)}}}"
    samples = ", ".join(f"photos/{n}" for n in names)
    text = RECIPE.format(name="nudenet", source=source, samples=samples, calibration="photos", labelled="")
    (work / "nudenet.yaml").write_text(text)
    return work / "nudenet.yaml"


def shapes_recipe(work: Path, val: int, calib: int) -> Path:
    shapes = shapes_module()
    shapes.write(work / "val", val, shapes.VAL_SEED)
    shapes.write(work / "calib", calib, shapes.TRAIN_SEED)
    source = f"{{kind: ultralytics, model: yolov8n.yaml, init: weights, weights: {shapes.FIXTURE}}}"
    samples = ", ".join(f"val/images/{i:04d}.png" for i in range(val))
    labelled = ", labelled: {images: val/images, labels: val/labels}, max_drop: 1.0"
    text = RECIPE.format(name="shapes", source=source, samples=samples, calibration="calib/images", labelled=labelled)
    (work / "shapes.yaml").write_text(text)
    return work / "shapes.yaml"


def build(recipe: Path, name: str, overrides: list[str], work: Path) -> tuple[Path, dict]:
    out = work / "out" / name.replace(" ", "-")
    cmd = [sys.executable, "-m", "recipekit", "build", str(recipe), *overrides]
    run([*cmd, "--cache", str(work / "cache"), "--out", str(out), "--quiet"])
    folder = out / recipe.stem / "ort"
    return folder / "model.onnx", json.loads((folder / "manifest.json").read_text())


def variants(goal: str, symmetric: bool) -> dict[str, list[str]]:
    out = {
        "fp32": [],
        "plain INT8": ["export.precision=int8"],
        "searched INT8": ["export.precision=int8", f"+export.quantization.goal={goal}"],
    }
    if symmetric:
        out["searched INT8, symmetric (trt)"] = [*out["searched INT8"], "export.quantization.activations=int8"]
    return out


def evaluation(recipe: Path) -> tuple[list, list | None, dict]:
    """The recipe's evaluation images as tensors (its labelled set, else its samples), their labels
    (or None) and the accuracy gate's options."""
    from recipekit.precision.calibration import calibration_tensors
    from recipekit.precision.metric import labelled_set, options
    from recipekit.recipe.load import load

    r = load(recipe, [])
    acc = r.gates.get("accuracy")
    if acc is not None and acc.labelled is not None:
        tensors, truth = labelled_set(r, acc.labelled.images, acc.labelled.labels)
    else:
        from recipekit.onnx.preprocess import resolve_sample

        tensors = calibration_tensors(r, [resolve_sample(s, Path(r.base_dir)) for s in r.input.samples])
        truth = None
    return tensors, truth, options(r)


def agreement(models: dict[str, Path], recipe: Path, kinds: dict) -> dict[str, dict]:
    """Each model against the fp32 build on the evaluation images (both directions, counts, drop)."""
    from recipekit.onnx.runtime import OrtRunner
    from recipekit.precision.metric import score

    tensors, truth, opts = evaluation(recipe)
    ref_runner = OrtRunner(models["fp32"])
    names = ref_runner.output_names
    ref = [ref_runner.run_one(x) for x in tensors]
    hws = [(320, 320)] * len(tensors)
    out = {}
    for name, path in models.items():
        got = [OrtRunner(path).run_one(x) for x in tensors]
        out[name] = score(names, kinds, hws, opts, ref, got, truth)
    return out


def rows_for(model: str, recipe: Path, goal: str, work: Path, args: argparse.Namespace, pt: Path | None = None):
    from recipekit.precision.latency import medians

    models, manifests = {}, {}
    for name, overrides in variants(goal, args.symmetric).items():
        models[name], manifests[name] = build(recipe, name, overrides, work)
    kinds = manifests["fp32"]["output_kinds"]
    if pt is not None:  # the same weights through Ultralytics' own exporter
        models["Ultralytics' own export, fp32"] = Path(run([sys.executable, "-c", ULTRALYTICS_EXPORT, pt]).split()[-1])
    tensors = evaluation(recipe)[0]
    ms = medians(models, tensors[0], args.runs, args.threads)
    scores = agreement(models, recipe, kinds)
    rows = []
    for name in models:
        s, search = scores[name], (manifests.get(name, {}).get("precision") or {}).get("search") or {}
        rows.append(
            {
                "model": model,
                "weights": "trained",
                "variant": name,
                "median_ms": ms[name],
                "latency_ratio": round(ms[name] / ms["fp32"], 3),
                "agreement": s["agreement_map50_95"],
                "agreement_reference_as_truth": s["reference_as_truth"]["map50_95"],
                "agreement_artifact_as_truth": s["artifact_as_truth"]["map50_95"],
                "reference_boxes": s["reference_boxes"],
                "artifact_boxes": s["artifact_boxes"],
                "images": len(tensors),
                "map_drop": (s.get("labelled") or {}).get("drop"),
                "float_nodes": len(search.get("float_nodes", [])) if search else None,
            }
        )
    return rows


def table(rows: list[dict], threads: int, runs: int) -> str:
    head = f"{'model':<8} {'variant':<32} {'ms':>7} {'x fp32':>6} {'ref->art':>8} {'art->ref':>8} "
    lines = [head + f"{'boxes ref/art':>13} {'mAP drop':>8} {'float':>5}"]
    for r in rows:
        drop = "-" if r["map_drop"] is None else f"{r['map_drop']:.4f}"
        fl = "-" if r["float_nodes"] is None else str(r["float_nodes"])
        lines.append(
            f"{r['model']:<8} {r['variant']:<32} {r['median_ms']:>7.1f} {r['latency_ratio']:>6.2f} "
            f"{r['agreement_reference_as_truth']:>8.4f} {r['agreement_artifact_as_truth']:>8.4f} "
            f"{str(r['reference_boxes']) + '/' + str(r['artifact_boxes']):>13} {drop:>8} {fl:>5}"
        )
    lines.append(
        f"onnxruntime CPU, {threads} threads, median of {runs} runs round robin; agreement mAP50-95 against the fp32 "
        "build (ref->art: its boxes at score >= 0.25 as truth; art->ref: the row's); mAP drop: against the labels"
    )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", action="store_true", help="one JSON object per row")
    ap.add_argument("--symmetric", action="store_true", help="also the searched INT8 with symmetric activations")
    ap.add_argument("--val", type=int, default=40, help="shapes: validation images (evaluation, labelled)")
    ap.add_argument("--calib", type=int, default=32, help="shapes: training images to calibrate on")
    ap.add_argument("--work", type=Path, default=None)
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="rk-precision-"))
    work.mkdir(parents=True, exist_ok=True)
    rows = rows_for("nudenet", nudenet_recipe(work), "{min_agreement: 0.9}", work, args)
    goal = "{min_agreement: 0.9, max_drop: 0.01}"
    rows += rows_for("shapes", shapes_recipe(work, args.val, args.calib), goal, work, args, shapes_module().FIXTURE)
    if args.json:
        for r in rows:
            print(json.dumps(r))
    else:
        print(table(rows, args.threads, args.runs))


if __name__ == "__main__":
    main()
