#!/usr/bin/env python3
"""Time the webgpu-browser gate per model and bundle (median of --repeat runs) and print a table.

Goal (issue 28): <= 10 s median for yolo11n-pose at 320 on the default bundle (the native WebGPU EP; 14 s
before, 18 s with JSEP before that). Each (model, bundle) runs twice side by side: without a GPU cache
(every run a cold Chromium, as before), and with the GPU cache kept in a fresh state folder (the first
run fills it; the median is of the runs after it). Models: a tiny NonZero -> Pad graph, and yolo11n-pose
(random weights, seed 0) exported with embedded NMS, unfixed and with fixed-shape-nms when that fix is
importable; for the fixed one also without the gate's fast Dawn
toggles (the reference: the gate as it ran before them). The unfixed yolo11n-pose row shows which bundles
run an embedded NMS that keeps nothing (JSEP fails it). Usage:
    .venv/bin/python benchmarks/webgpu_gate.py [--repeat 3] [--imgsz 320] [--bundles webgpu jsep]
        [--skip-yolo] [--only fixed]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from helpers import webgpu_models as models  # noqa: E402

from recipekit.targets.webgpu.browser import WebGpuBrowser, WebGpuBrowserConfig  # noqa: E402


def subjects(tmp: Path, imgsz: int, skip_yolo: bool) -> list[tuple[str, Path, int, dict, bool]]:
    out = [("nonzero-pad 64", models.nonzero_pad(tmp / "np.onnx", (64, 64)), 64, {}, False)]
    if skip_yolo:
        return out
    (tmp / "raw").mkdir()
    out.append(
        (f"yolo11n-pose {imgsz} nms", models.yolo11n_pose(tmp / "raw", imgsz), imgsz, {"output0": models.POSE}, True)
    )
    try:
        import recipekit.sources.ultralytics.fixed_shape_nms  # noqa: F401
    except ImportError:
        return out
    (tmp / "fixed").mkdir()
    fixed = models.yolo11n_pose(tmp / "fixed", imgsz, fixed_shape_nms=True)
    out.append((f"yolo11n-pose {imgsz} nms+fixed-shape-nms", fixed, imgsz, {"output0": models.POSE}, True))
    return out


def time_gate(
    path: Path, imgsz: int, kinds: dict, nms: bool, bundle: str, repeat: int, state: Path | None, fast: bool = True
) -> dict:
    """`repeat` runs; with `state`, the first starts from an empty GPU cache and the others reuse it."""
    ctx = models.gate_context(path, models.recipe(imgsz, nms=nms, bundle=bundle), bundle, kinds)
    ctx.state = state
    seconds, result = [], None
    for _ in range(repeat):
        start = time.monotonic()
        result = WebGpuBrowser(WebGpuBrowserConfig(fast=fast)).check(ctx)
        seconds.append(time.monotonic() - start)
    timings = result.figures.get("timings_ms", {}).get("webgpu", {})
    runs = [v for k, v in timings.items() if k != "create" and v is not None]
    later = seconds[1:] or seconds  # with a kept cache: the runs after the one that filled it
    return {
        "status": result.status,
        "first": seconds[0],
        "median": statistics.median(later if state else seconds),
        "min": min(later if state else seconds),
        "max": max(later if state else seconds),
        "create_ms": timings.get("create"),
        "run_ms": max(runs) if runs else None,
        "why": (result.failures or [""])[0][:70],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--imgsz", type=int, default=320)
    ap.add_argument("--bundles", nargs="+", default=["webgpu", "jsep"])
    ap.add_argument("--skip-yolo", action="store_true")
    ap.add_argument("--only", default="", help="only the models whose name contains this text")
    ap.add_argument("--no-gpu-cache", action="store_true", help="keep no GPU cache between runs (as before)")
    args = ap.parse_args()
    head = (
        f"{'model':<38} {'bundle':<7} {'toggles':<8} {'GPU cache':<9} {'status':<11} {'1st run s':>9} {'median s':>9} "
        f"{'min s':>7} {'max s':>7} {'webgpu create ms':>17} {'slowest run ms':>15}  first failure"
    )
    with tempfile.TemporaryDirectory(prefix="webgpu-bench-") as tmp:
        rows = subjects(Path(tmp), args.imgsz, args.skip_yolo)
        print(head)
        print("-" * len(head))
        for name, path, imgsz, kinds, nms in rows:
            if args.only not in name:
                continue
            for bundle in args.bundles:
                variants = [(True, kept) for kept in ((False,) if args.no_gpu_cache else (False, True))]
                if "fixed" in name:  # the reference: the same gate without the fast Dawn toggles (as before)
                    variants.append((False, False))
                for fast, kept in variants:
                    state = Path(tempfile.mkdtemp(dir=tmp)) if kept else None
                    r = time_gate(path, imgsz, kinds, nms, bundle, args.repeat, state, fast)
                    fmt = lambda v: f"{v:.0f}" if v is not None else "-"  # noqa: E731
                    print(
                        f"{name:<38} {bundle:<7} {'fast' if fast else 'off':<8} {'kept' if kept else 'none':<9} "
                        f"{r['status']:<11} {r['first']:>9.1f} {r['median']:>9.1f} {r['min']:>7.1f} {r['max']:>7.1f} "
                        f"{fmt(r['create_ms']):>17} {fmt(r['run_ms']):>15}  {r['why']}",
                        flush=True,
                    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
