"""The architecture YAMLs the installed Ultralytics ships, found without importing it (plan time).

Ultralytics resolves `yolo11n-pose.yaml` to the shipped `yolo11-pose.yaml` with scale `n` (the digits,
then the scale letter); a name that resolves to no shipped file, or a scale the file does not define,
is refused at plan with the names that would work.
"""

from __future__ import annotations

import difflib
import functools
import importlib.util
import re
from pathlib import Path

from recipekit.core.errors import RecipeError

_SCALE = re.compile(r"(\d+)([nslmx])(.+)?$")
_SCALES_BLOCK = re.compile(r"^scales:.*?$((?:\n[ \t]+.*$|\n\s*#.*$|\n\s*$)*)", re.M)
_SCALE_KEY = re.compile(r"^[ \t]+([A-Za-z0-9_-]+):", re.M)


@functools.cache
def shipped() -> dict[str, tuple[str, ...]]:
    """Shipped YAML file name -> its scale letters (empty: the file takes no scale)."""
    spec = importlib.util.find_spec("ultralytics")
    roots = [Path(p) / "cfg" / "models" for p in (spec.submodule_search_locations or [])] if spec else []
    out: dict[str, tuple[str, ...]] = {}
    for root in roots:
        for f in sorted(root.rglob("*.yaml")):
            block = _SCALES_BLOCK.search(f.read_text(errors="replace"))
            out[f.name] = tuple(_SCALE_KEY.findall(block.group(1))) if block else ()
    return out


def names() -> list[str]:
    """Every model name Ultralytics builds from its shipped YAMLs (yolo11n.yaml, yolo11s-pose.yaml, ...)."""
    out = []
    for name, scales in shipped().items():
        m = re.match(r"(.*?\d+)(.*)$", name)
        out += [f"{m.group(1)}{s}{m.group(2)}" for s in scales] if scales and m else [name]
    return out


_ACTIVATION = re.compile(r"^(torch\.)?nn\.[A-Za-z][A-Za-z0-9_]*\([\w\s.,=+-]*\)$")
"""The only `activation:` form an architecture YAML may hold (`nn.SiLU()`, `nn.LeakyReLU(0.1)`): Ultralytics
would `eval` anything else; recipekit builds in its restricted mode, and refuses other forms at plan."""


def check_user_yaml(origin: str, path: Path) -> None:
    """A user's architecture YAML: read safely (yamlcheck), its `activation` a plain torch.nn layer."""
    from recipekit.recipe.yamlcheck import check_file

    data = check_file(path)
    if not isinstance(data, dict) or not isinstance(data.get("backbone"), list):
        raise RecipeError(origin, "source.model", f"{path} is not an Ultralytics architecture YAML (no backbone: list)")
    act = data.get("activation")
    if act is not None and not (isinstance(act, str) and _ACTIVATION.match(act.strip())):
        raise RecipeError(
            origin,
            "source.model",
            f"{path}: activation {str(act)[:80]!r} is not a torch.nn layer call like nn.SiLU() (it would be "
            "evaluated as Python code); refused",
        )


def is_shipped(model: str) -> bool:
    """`model` names an architecture the installed Ultralytics ships (with a scale it defines)."""
    if model in shipped():
        return True
    unified = _SCALE.sub(lambda m: m.group(1) + (m.group(3) or ""), model)
    scale = _SCALE.search(model)
    return bool(unified in shipped() and scale and scale.group(2) in shipped()[unified])


def check_model(origin: str, base: Path, model: str) -> None:
    """Refuse a model name that is neither one Ultralytics ships nor an architecture YAML file
    (a path; a shipped name wins, as a recipe named yolo11n.yaml may sit next to its recipe)."""
    if not shipped() or ("/" not in model and is_shipped(model)):
        return
    for candidate in (base / model, Path(model)):
        if candidate.is_file():
            check_user_yaml(origin, candidate)
            return
    known = names()
    near = difflib.get_close_matches(model, known, n=3, cutoff=0.6)
    hint = f" (did you mean {' or '.join(near)}?)" if near else ""
    raise RecipeError(
        origin,
        "source.model",
        f"unknown Ultralytics model {model!r}{hint}: not a file next to the recipe, nor one of the "
        f"{len(known)} architectures the installed Ultralytics ships: {', '.join(known)}",
    )
