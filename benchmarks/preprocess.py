"""recipekit's preprocessing (recipekit.onnx.pixels: numpy, bit-exact with check.py and the browser)
side by side with the libraries it stands in for, in one run: cv2.resize (INTER_LINEAR) and Pillow's
resize (BILINEAR), on the photos Ultralytics ships. Prints medians and how many pixels differ.

    .venv/bin/python benchmarks/preprocess.py [--runs 9]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from recipekit.onnx import pixels
from recipekit.onnx.preprocess import read_image, resolve_sample


def median_ms(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def rows(runs: int) -> list[tuple[str, str, float, float, str]]:
    out = []
    for name in ("bus", "zidane"):
        img = read_image(resolve_sample(f"ultralytics:{name}.jpg", Path(".")))
        h, w = img.shape[:2]
        for dh, dw in ((640 * h // max(h, w), 640 * w // max(h, w)), (48, 320)):
            ours, ref = pixels.linear(img, dh, dw), cv2.resize(img, (dw, dh), interpolation=cv2.INTER_LINEAR)
            diff = np.abs(ours.astype(int) - ref)
            out.append(
                (
                    f"{name} {h}x{w} -> {dh}x{dw}",
                    "linear vs cv2.resize",
                    median_ms(lambda: pixels.linear(img, dh, dw), runs),  # noqa: B023 - timed now
                    median_ms(lambda: cv2.resize(img, (dw, dh), interpolation=cv2.INTER_LINEAR), runs),  # noqa: B023
                    f"max {diff.max()}, {100 * (diff > 0).mean():.1f}% of values",
                )
            )
        dh, dw = (298, 224) if h > w else (256, 455)
        ours, ref = pixels.pil(img, dh, dw), np.asarray(Image.fromarray(img).resize((dw, dh), Image.BILINEAR))
        diff = np.abs(ours.astype(int) - ref)
        out.append(
            (
                f"{name} {h}x{w} -> {dh}x{dw}",
                "pil vs Image.resize",
                median_ms(lambda: pixels.pil(img, dh, dw), runs),  # noqa: B023
                median_ms(lambda: Image.fromarray(img).resize((dw, dh), Image.BILINEAR), runs),  # noqa: B023
                f"max {diff.max()}, {100 * (diff > 0).mean():.1f}% of values",
            )
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=9)
    args = ap.parse_args()
    print("| resize | recipekit vs | recipekit ms | library ms | differs |\n| --- | --- | --- | --- | --- |")
    for case, what, ours, ref, diff in rows(args.runs):
        print(f"| {case} | {what} | {ours:.1f} | {ref:.2f} | {diff} |")


if __name__ == "__main__":
    main()
