"""What an Ultralytics model is, found at plan time without importing Ultralytics (or torch).

An architecture YAML is looked up as Ultralytics does (a path relative to the recipe, else a file
shipped in `ultralytics/cfg/models/`, `yolo11n-pose.yaml` resolving to `yolo11-pose.yaml` with scale
`n`) and read with yaml.safe_load. A checkpoint's head is read from the class names its pickle
references (`recipekit.sources.checkpoint`, which never executes it). The head decides the task, the
preprocessing Ultralytics' own predictor applies, and which export options make sense.
"""

from __future__ import annotations

import functools
import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recipekit.core.errors import RecipeError

HEADS: dict[str, str] = {
    "Detect": "detect",
    "v10Detect": "detect",
    "Segment": "segment",
    "Segment26": "segment",
    "Pose": "pose",
    "Pose26": "pose",
    "OBB": "obb",
    "OBB26": "obb",
    "Classify": "classify",
    "RTDETRDecoder": "detect",
}
"""Supported head modules -> Ultralytics task."""
UNSUPPORTED: dict[str, str] = {
    "WorldDetect": "YOLO-World needs text embeddings at export",
    "YOLOEDetect": "YOLOE needs text or visual prompts at export",
    "YOLOESegment": "YOLOE needs text or visual prompts at export",
    "YOLOESegment26": "YOLOE needs text or visual prompts at export",
    "Depth": "depth maps are not a detection or classification output",
    "SemanticSegment": "semantic maps are not a detection or classification output",
}
E2E_HEADS = ("v10Detect",)
"""Heads with a one-to-one (NMS-free) branch regardless of the YAML's `end2end` key."""


@dataclass(frozen=True)
class Arch:
    """The facts plan-time checks need: head module, task, and whether an NMS-free head exists."""

    head: str
    task: str
    end2end: bool  # has a one-to-one head (YOLOv10, YOLO26)
    where: str  # the YAML file or checkpoint it was read from

    @property
    def rtdetr(self) -> bool:
        return self.head == "RTDETRDecoder"


def supported() -> str:
    return ", ".join(sorted(HEADS))


def _models_root() -> Path | None:
    spec = importlib.util.find_spec("ultralytics")
    roots = list(spec.submodule_search_locations or []) if spec else []
    return Path(roots[0]) / "cfg" / "models" if roots else None


def _shipped(name: str) -> Path | None:
    root = _models_root()
    if root is None:
        return None
    stem, suffix = Path(name).stem, Path(name).suffix
    unified = re.sub(r"(\d+)([nslmx])(.+)?$", r"\1\3", stem)  # yolo11n-pose -> yolo11-pose, as Ultralytics
    for cand in (f"{stem}{suffix}", f"{unified}{suffix}"):
        found = sorted(root.rglob(cand))
        if found:
            return found[0]
    return None


def is_shipped(path: Path) -> bool:
    """A YAML from Ultralytics' own cfg/models (built by name, so Ultralytics reads the scale from it)."""
    root = _models_root()
    return root is not None and path.is_relative_to(root)


def resolve_yaml(model: str, base: Path, origin: str) -> Path:
    """The architecture YAML `model` names: a bare name is one Ultralytics ships (else a file beside the
    recipe: recipes are often named like their model), a path is relative to the recipe."""
    if not model.endswith((".yaml", ".yml")):
        raise RecipeError(
            origin,
            "source.model",
            f"expected an architecture YAML (e.g. yolo11n.yaml, yolo11n-obb.yaml, yolov8n-rtdetr.yaml), got {model!r}; "
            "a checkpoint goes in source.weights with source.init: weights",
        )
    local = (base / model).resolve()
    if ("/" in model or "\\" in model) and local.is_file():
        return local
    shipped = _shipped(model) if Path(model).name == model else None
    if shipped is None and local.is_file():
        return local
    if shipped is None:
        raise RecipeError(
            origin,
            "source.model",
            f"no architecture {model!r}: not a file relative to the recipe and not shipped by the installed "
            "Ultralytics (ultralytics/cfg/models/: e.g. yolov8n.yaml, yolo11n-seg.yaml, yolo12n-cls.yaml, "
            "yolov10n.yaml, rtdetr-l.yaml)",
        )
    return shipped


def from_yaml(path: Path, origin: str) -> Arch:
    import yaml

    try:
        doc = _load_yaml(path.read_text())
        layers = (doc.get("head") or doc.get("backbone")) if isinstance(doc, dict) else None
        head = str(layers[-1][2])
    except (OSError, yaml.YAMLError, TypeError, IndexError, KeyError, AttributeError) as exc:
        raise RecipeError(origin, "source.model", f"{path} is not an Ultralytics architecture YAML: {exc}") from None
    return _arch(head, bool(doc.get("end2end")) or head in E2E_HEADS, str(path), origin, "source.model")


def from_checkpoint_globals(names: list[str], where: str, origin: str) -> Arch | None:
    """The head of a checkpoint from the classes its pickle references; None when none is known."""
    heads = [n.rpartition(".")[2] for n in names if n.startswith("ultralytics.nn.modules.head.")]
    known = [h for h in heads if h in HEADS or h in UNSUPPORTED]
    if not known:
        return None
    head = next((h for h in known if h in UNSUPPORTED), None) or max(known, key=_specificity)
    return _arch(head, head in E2E_HEADS or head.endswith("26"), where, origin, "source.weights")


def _specificity(head: str) -> int:
    """Subclasses first: a Pose checkpoint also references Detect."""
    return 0 if head == "Detect" else 1


def _arch(head: str, end2end: bool, where: str, origin: str, key: str) -> Arch:
    if head in UNSUPPORTED:
        raise RecipeError(
            origin, key, f"{where}: head {head} is not supported ({UNSUPPORTED[head]}); supported heads: {supported()}"
        )
    if head not in HEADS:
        raise RecipeError(origin, key, f"{where}: unknown head module {head!r}; supported heads: {supported()}")
    return Arch(head=head, task=HEADS[head], end2end=end2end, where=where)


def expected_resize(arch: Arch, imgsz: tuple[int, int]) -> str:
    """What Ultralytics' predictor does to an image: letterbox for detectors; classify_transforms for
    classifiers (shortest side resized + centre crop when square, a plain resize to (H, W) otherwise)."""
    if arch.task != "classify":
        return "letterbox"
    return "center-crop" if imgsz[0] == imgsz[1] else "stretch"


def check_export(arch: Arch, recipe: Any, config: Any) -> None:
    """Export options this head cannot honour, refused before any step runs."""
    origin, ex = recipe.origin, recipe.export
    if ex.nms is not None and (arch.task == "classify" or arch.rtdetr or config.end2end):
        what = "classifiers" if arch.task == "classify" else ("RT-DETR" if arch.rtdetr else "end2end (NMS-free) heads")
        raise RecipeError(origin, "export.nms", f"{what} run no NMS: leave export.nms unset ({arch.head} head)")
    if config.end2end and not arch.end2end:
        raise RecipeError(
            origin,
            "source.end2end",
            f"{arch.head} has no one-to-one (NMS-free) head: end2end is for YOLOv10 and YOLO26; use export.nms instead",
        )
    if arch.rtdetr and ex.opset < 16:
        raise RecipeError(origin, "export.opset", f"RT-DETR needs opset 16 or later (GridSample), got {ex.opset}")


@functools.lru_cache(maxsize=16)
def _load_yaml(text: str) -> Any:
    """An architecture YAML's document (safe loading, libyaml's parser when PyYAML has it: a step
    reads the same file several times). Callers only read it."""
    import yaml

    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506 - a safe loader
