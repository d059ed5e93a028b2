"""A labelled set: images with boxes from a COCO JSON file or YOLO label files, in model input pixels.

COCO JSON: `images[].file_name` relative to the images folder, `annotations[].bbox` [x, y, w, h] in
image pixels; categories sorted by id become classes 0..n-1 (COCO's 80 categories map onto the
Ultralytics class order this way). YOLO: one `<image stem>.txt` per image in the labels folder, rows
`class cx cy w h` normalised to the image. Boxes are mapped through the recipe's resize (letterbox
ratio and padding), so they compare with the model's outputs directly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recipekit.core.errors import RecipeError

if TYPE_CHECKING:
    import numpy as np

    from recipekit.gates.accuracy.decode import Dets
    from recipekit.recipe.schema import Recipe

KEY = "gates.accuracy.labelled"


@dataclass
class Labelled:
    images: list[Path]
    boxes: list[np.ndarray]  # (n, 4) xyxy in image pixels
    classes: list[np.ndarray]


def _coco(images: Path, doc: dict[str, Any], origin: str) -> Labelled:
    import numpy as np

    order = {c["id"]: k for k, c in enumerate(sorted(doc.get("categories", []), key=lambda c: c["id"]))}
    per: dict[int, list[tuple[list[float], int]]] = {}
    for a in doc.get("annotations", []):
        if a.get("iscrowd", 0) or a["category_id"] not in order:
            continue
        x, y, w, h = (float(v) for v in a["bbox"])
        per.setdefault(a["image_id"], []).append(([x, y, x + w, y + h], order[a["category_id"]]))
    paths, boxes, classes = [], [], []
    for img in sorted(doc.get("images", []), key=lambda i: i["id"]):
        rows = per.get(img["id"], [])
        paths.append(images / img["file_name"])
        boxes.append(np.asarray([r[0] for r in rows], dtype=np.float64).reshape(-1, 4))
        classes.append(np.asarray([r[1] for r in rows], dtype=np.int64))
    if not paths:
        raise RecipeError(origin, KEY, "the COCO JSON file lists no images")
    return Labelled(paths, boxes, classes)


def _yolo(images: Path, labels: Path, origin: str) -> Labelled:
    import numpy as np

    from recipekit.onnx.preprocess import IMAGE_SUFFIXES, read_image

    paths = sorted(p for p in images.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    boxes, classes = [], []
    for p in paths:
        txt = labels / f"{p.stem}.txt"
        rows = np.loadtxt(txt, ndmin=2) if txt.is_file() and txt.read_text().strip() else np.zeros((0, 5))
        h, w = read_image(p).shape[:2]
        cx, cy, bw, bh = rows[:, 1] * w, rows[:, 2] * h, rows[:, 3] * w, rows[:, 4] * h
        boxes.append(np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1).reshape(-1, 4))
        classes.append(rows[:, 0].astype(np.int64))
    if not paths:
        raise RecipeError(origin, KEY, f"no images in {images}")
    return Labelled(paths, boxes, classes)


def files(recipe: Recipe, images: str, labels: str) -> tuple[Path, Path]:
    base, origin = Path(recipe.base_dir or "."), recipe.origin or recipe.name
    img_dir, lab = (base / images).resolve(), (base / labels).resolve()
    if not img_dir.is_dir():
        raise RecipeError(origin, f"{KEY}.images", f"expected a folder of images, got {img_dir}")
    if not lab.exists():
        raise RecipeError(origin, f"{KEY}.labels", f"expected a COCO JSON file or a folder of YOLO .txt files: {lab}")
    return img_dir, lab


def load(recipe: Recipe, images: str, labels: str) -> Labelled:
    """The labelled set named by the recipe (paths relative to it)."""
    img_dir, lab = files(recipe, images, labels)
    origin = recipe.origin or recipe.name
    if lab.is_file():
        try:
            return _coco(img_dir, json.loads(lab.read_text()), origin)
        except (ValueError, KeyError, TypeError) as exc:
            raise RecipeError(origin, f"{KEY}.labels", f"not a COCO detection JSON file ({exc})") from None
    return _yolo(img_dir, lab, origin)


def in_input_pixels(boxes: np.ndarray, classes: np.ndarray, info: dict[str, Any]) -> Dets:
    """Image-pixel boxes through the resize's ratio and padding (preprocess.resize's info)."""
    import numpy as np

    from recipekit.gates.accuracy.decode import Dets

    (rx, ry), (px, py) = info["ratio"], info["pad"]
    mapped = boxes * np.array([rx, ry, rx, ry]) + np.array([px, py, px, py])
    return Dets(mapped, np.ones(len(mapped)), classes)
