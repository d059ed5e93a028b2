"""shapes: a generated labelled detection set (circles, squares, triangles on cluttered backgrounds).

Deterministic from its seeds (numpy's PCG64 and OpenCV's drawing, PNG files): the same call writes
the same bytes. Each image has 2-7 objects of 3 classes, 18-110 px, some overlapping, over a colour
gradient with noise and distractor lines; labels are YOLO `.txt` files (class cx cy w h, normalised),
one per image. The detector trained on it (tests/fixtures/shapes/train.py) is the trained fixture of
the INT8 tests and benchmarks/precision.py.

    python tests/helpers/shapes.py OUT_DIR [--train 300] [--val 60]
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import cv2
import numpy as np

CLASSES = ("circle", "square", "triangle")
SIZE = 320
TRAIN_SEED, VAL_SEED = 1, 2


def _background(rng: np.random.Generator) -> np.ndarray:
    a, b = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    t = np.linspace(0, 1, SIZE)[None, :, None] if rng.random() < 0.5 else np.linspace(0, 1, SIZE)[:, None, None]
    img = (a * (1 - t) + b * t) * np.ones((SIZE, SIZE, 1))
    img = img + rng.normal(0, rng.uniform(2, 14), (SIZE, SIZE, 3))
    img = np.clip(img, 0, 255).astype(np.uint8)
    for _ in range(int(rng.integers(0, 6))):  # distractors: lines, not objects
        p, q = rng.integers(0, SIZE, 2), rng.integers(0, SIZE, 2)
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        cv2.line(img, (int(p[0]), int(p[1])), (int(q[0]), int(q[1])), colour, int(rng.integers(1, 4)), cv2.LINE_AA)
    return img


def _colour(rng: np.random.Generator, img: np.ndarray, cx: int, cy: int) -> tuple[int, int, int]:
    """A colour that stands out from the background around (cx, cy)."""
    under = img[max(cy - 4, 0) : cy + 4, max(cx - 4, 0) : cx + 4].reshape(-1, 3).mean(0)
    for _ in range(20):
        c = rng.integers(0, 256, 3)
        if np.abs(c - under).sum() > 150:
            break
    return tuple(int(v) for v in c)


def _shape(img: np.ndarray, rng: np.random.Generator, cls: int, cx: int, cy: int, r: int) -> tuple[float, ...]:
    """Draw one object; returns its box x1, y1, x2, y2 (pixels)."""
    colour = _colour(rng, img, cx, cy)
    if cls == 0:
        cv2.circle(img, (cx, cy), r, colour, -1, cv2.LINE_AA)
        return cx - r, cy - r, cx + r, cy + r
    angle = rng.uniform(0, 2 * math.pi)
    n = 4 if cls == 1 else 3
    rad = r * (1.25 if n == 4 else 1.2)
    pts = np.array(
        [
            (cx + rad * math.cos(angle + 2 * math.pi * k / n), cy + rad * math.sin(angle + 2 * math.pi * k / n))
            for k in range(n)
        ]
    )
    cv2.fillPoly(img, [np.round(pts * 16).astype(np.int32)], colour, cv2.LINE_AA, shift=4)
    return pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max()


def image(rng: np.random.Generator) -> tuple[np.ndarray, list[tuple[int, float, float, float, float]]]:
    """One image and its boxes (class, x1, y1, x2, y2), clipped to the image."""
    img, boxes = _background(rng), []
    for _ in range(int(rng.integers(2, 8))):
        r = int(rng.integers(9, 56))
        cx, cy = (int(v) for v in rng.integers(r // 2, SIZE - r // 2, 2))
        cls = int(rng.integers(0, len(CLASSES)))
        x1, y1, x2, y2 = _shape(img, rng, cls, cx, cy, r)
        boxes.append((cls, max(x1, 0.0), max(y1, 0.0), min(x2, SIZE - 1.0), min(y2, SIZE - 1.0)))
    return img, boxes


def write(folder: Path, count: int, seed: int) -> Path:
    """`count` images in folder/images and their YOLO labels in folder/labels."""
    rng = np.random.default_rng(seed)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "labels").mkdir(parents=True, exist_ok=True)
    for i in range(count):
        img, boxes = image(rng)
        cv2.imwrite(str(folder / "images" / f"{i:04d}.png"), img)
        rows = [
            f"{c} {(a + b) / 2 / SIZE:.6f} {(y + z) / 2 / SIZE:.6f} {(b - a) / SIZE:.6f} {(z - y) / SIZE:.6f}"
            for c, a, y, b, z in boxes
        ]
        (folder / "labels" / f"{i:04d}.txt").write_text("\n".join(rows) + "\n")
    return folder


def dataset(root: Path, train: int = 300, val: int = 60) -> Path:
    """root/train, root/val and root/shapes.yaml (the Ultralytics dataset file)."""
    write(root / "train", train, TRAIN_SEED)
    write(root / "val", val, VAL_SEED)
    names = "\n".join(f"  {i}: {n}" for i, n in enumerate(CLASSES))
    yaml = root / "shapes.yaml"
    yaml.write_text(f"path: {root.resolve()}\ntrain: train/images\nval: val/images\nnames:\n{names}\n")
    return yaml


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--train", type=int, default=300)
    ap.add_argument("--val", type=int, default=60)
    args = ap.parse_args()
    print(dataset(args.out, args.train, args.val))


FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "shapes" / "shapes-yolov8n.pt"
RECIPE = """name: shapes
source: {{kind: ultralytics, model: yolov8n.yaml, init: weights, weights: {weights}}}
input:
  samples: [{samples}]
  calibration: calib
export:
  opset: 17
  imgsz: [320, 320]
  precision: int8
  quantization: {{sensitivity: {{blocks: {blocks}, splits: 2}}}}
targets: {{ort: {{}}}}
gates: {{accuracy: {{labelled: {{images: val/images, labels: val/labels}}, max_drop: 1.0}}}}
"""


def fixture_recipe(folder: Path, calib: int = 6, samples: int = 4, val: int = 8, blocks: int = 8) -> Path:
    """shapes.yaml in `folder`: the trained fixture, INT8, calibrated on `calib` training images, its
    gates run on `samples` validation images, its labelled set `val` validation images."""
    import shutil

    write(folder / "train", calib, TRAIN_SEED)
    write(folder / "val", max(val, samples), VAL_SEED)
    (folder / "calib").mkdir(exist_ok=True)
    for p in sorted((folder / "train" / "images").iterdir()):
        shutil.copyfile(p, folder / "calib" / p.name)
    names = ", ".join(f"val/images/{i:04d}.png" for i in range(samples))
    path = folder / "shapes.yaml"
    path.write_text(RECIPE.format(weights=FIXTURE, samples=names, blocks=blocks))
    return path
