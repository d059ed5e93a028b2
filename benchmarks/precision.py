"""INT8 vs fp32 on ONNX Runtime's CPU for yolo11n at 640: latency medians side by side with Ultralytics'
own ONNX export of the same weights, and the accuracy gate's agreement mAP; prints a table.

Goal (issue 16): int8 latency <= 0.6x fp32 with agreement mAP50-95 >= 0.9. Every ONNX file runs
in one process, the same session options (ORT_ENABLE_ALL, `--threads` intra-op threads,
sequential), the same preprocessed image, `--runs` timed runs after warm-up, interleaved round
robin so machine noise hits every model alike. The weights are recipekit's synthetic yolo11n
(no trained weights can be downloaded here): Ultralytics exports them from the .pt this script
saves, recipekit builds them from the recipe.

    .venv/bin/python benchmarks/precision.py [--runs 20] [--threads 2] [--imgsz 640]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "yolo11n.yaml"
SAVE_PT = """
import sys
from pathlib import Path
from recipekit.recipe.load import load
from recipekit.sources import SOURCES
recipe = load(Path(sys.argv[1]), [f"export.imgsz={sys.argv[3]}"])
model = SOURCES.get("ultralytics")(recipe.source).build_model(recipe)  # the nn.Module (DetectionModel)
import torch
torch.save({"model": model}, sys.argv[2])  # the checkpoint layout YOLO(path) loads
"""
ULTRALYTICS_EXPORT = """
import os, sys, tempfile
os.environ.update(YOLO_OFFLINE="1", YOLO_AUTOINSTALL="false", YOLO_CONFIG_DIR=tempfile.mkdtemp())
from ultralytics import YOLO
print(YOLO(sys.argv[1]).export(format="onnx", imgsz=int(sys.argv[2]), opset=17))
"""
VARIANTS = {
    "recipekit fp32": ["export.precision=fp32", "+gates.accuracy={judge: []}"],
    # A control: fp16 loses almost nothing on trained YOLO weights, so its agreement tells how
    # fragile these (synthetic) weights' detections are to any numeric noise at all.
    "recipekit fp16 (control)": [
        "export.precision=fp16",
        "+gates.accuracy={judge: []}",
        "gates.parity.skip=control",
        "gates.shape-sweep.skip=control",
    ],
    "recipekit int8 (symmetric, every target)": ["export.precision=int8", "+gates.accuracy={judge: []}"],
    "recipekit int8 (uint8 activations, ort)": [
        "export.precision=int8",
        "export.quantization.activations=uint8",
        "+gates.accuracy={judge: []}",
    ],
}


def run(cmd: list[str]) -> str:
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    return out.stdout


def build(name: str, overrides: list[str], work: Path, imgsz: int) -> tuple[Path, dict]:
    out = work / name.split()[1].replace("(", "") / name.replace(" ", "_").replace(",", "")
    cmd = [
        sys.executable,
        "-m",
        "recipekit",
        "build",
        str(RECIPE),
        f"export.imgsz={imgsz}",
        *overrides,
        "--cache",
        str(work / "cache"),
        "--out",
        str(out),
        "--quiet",
    ]
    run(cmd)
    doc = json.loads((out / "yolo11n" / "ort" / "manifest.json").read_text())
    return out / "yolo11n" / "ort" / "model.onnx", doc["gates"].get("accuracy", {}).get("figures", {})


def session(path: Path, threads: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def latencies(models: dict[str, Path], x, runs: int, threads: int) -> dict[str, float]:
    sessions = {k: session(p, threads) for k, p in models.items()}
    feeds = {k: {s.get_inputs()[0].name: x} for k, s in sessions.items()}
    for k, s in sessions.items():
        for _ in range(3):
            s.run(None, feeds[k])
    times: dict[str, list[float]] = {k: [] for k in sessions}
    for _ in range(runs):  # round robin: noise from other processes hits every model alike
        for k, s in sessions.items():
            t0 = time.perf_counter()
            s.run(None, feeds[k])
            times[k].append((time.perf_counter() - t0) * 1000)
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--imgsz", type=int, default=640)
    args = ap.parse_args()
    from recipekit.onnx.preprocess import image_tensor, resolve_sample
    from recipekit.recipe.schema import Preprocess

    work = Path(tempfile.mkdtemp(prefix="rk-precision-"))
    pt = work / "yolo11n-synthetic.pt"
    run([sys.executable, "-c", SAVE_PT, str(RECIPE), str(pt), str(args.imgsz)])
    ultra = Path(run([sys.executable, "-c", ULTRALYTICS_EXPORT, str(pt), str(args.imgsz)]).strip().splitlines()[-1])
    models, figures = {"ultralytics export fp32": ultra}, {}
    for name, overrides in VARIANTS.items():
        models[name], figures[name] = build(name, overrides, work, args.imgsz)
    x = image_tensor(resolve_sample("ultralytics:bus.jpg", ROOT), (args.imgsz, args.imgsz), Preprocess())
    med = latencies(models, x, args.runs, args.threads)
    base = med["recipekit fp32"]
    print(f"yolo11n {args.imgsz}x{args.imgsz}, onnxruntime CPU, {args.threads} threads, median of {args.runs} runs")
    print(f"{'model':<44} {'median ms':>10} {'x fp32':>7} {'agreement mAP50-95':>19} {'mAP50':>6} {'boxes':>7}")
    for name in models:
        f = figures.get(name, {})
        agree, a50 = f.get("agreement_map50_95"), f.get("agreement_map50")
        boxes = f"{f['reference_boxes']}/{f['artifact_boxes']}" if "reference_boxes" in f else "-"
        print(
            f"{name:<44} {med[name]:>10.1f} {med[name] / base:>7.2f} {str(agree if agree is not None else '-'):>19} "
            f"{str(a50 if a50 is not None else '-'):>6} {boxes:>7}"
        )
    print("boxes: confident detections (score >= 0.25) of the reference / of the artifact over the golden images")
    print("goal: int8 <= 0.60x fp32 latency with agreement mAP50-95 >= 0.9 (weights: synthetic yolo11n)")


if __name__ == "__main__":
    main()
