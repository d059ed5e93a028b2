"""Key completeness, as a property: change one input at a time and exactly the steps that read it
(directly or through an upstream) get new keys.

Inputs: every leaf of every resolved recipe in recipes/, and the files the steps read (weights,
ONNX files and their external data, sample images). Keys are computed at plan time, so nothing is
built: this runs in the quick subset. The expected sets come from what each step kind reads (the
table in `expected`), not from the plan's own declarations.
"""

from __future__ import annotations

import copy
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from helpers.common import RECIPES

from recipekit.core.errors import RecipeKitError

ALTERNATIVES = {
    "resize": ["letterbox", "stretch", "none"],
    "pad": ["center", "top-left"],
    "color": ["rgb", "bgr"],
    "layout": ["nchw", "nhwc"],
    "bundle": ["jsep", "webgpu"],
    "dtype": ["float32", "float16"],
    "init": ["synthetic", "architecture", "weights"],
    "format": ["xyxy", "cxcywh", "xywh"],  # an output field's box format
    "unit": ["probability", "logit", "px", "normalized"],
    "precision": ["fp32", "fp16", "int8"],
    "judge": ["fp32", "fp16", "int8"],
    "activations": ["int8", "uint8"],
    "method": ["minmax", "entropy", "percentile"],
    "when": ["goal", "always"],
}
SAMPLES = ["ultralytics:bus.jpg", "ultralytics:zidane.jpg"]
TARGET_READS = {"trt": {"trt-lint", "parity"}, "trt-jetson": {"trt-lint", "parity", "name"}}
"""What a target's build reads beyond input and export (the TensorRT lint it runs, the parity
tolerances a Jetson bundle ships, the recipe name its README shows)."""
GATE_READS = {"webgpu-browser": {"parity"}, "empty-input": {"parity"}}
"""Gates that read another gate's settings (the parity tolerances they inherit)."""
PRECISION_LEAVES = {("export", "precision"), ("export", "quantization"), ("input", "calibration")}
"""The precision settings: the steps before the precision step do not read them."""
SAMPLE_TARGETS = {"webgpu", "trt", "trt-jetson"}
"""Targets whose build reads the sample images (the page's picture, INT8 calibration)."""


def keys_of(data: dict, file: Path, cache: Path) -> dict[str, object]:
    from recipekit.graph.keys import assign_keys
    from recipekit.graph.plan import plan
    from recipekit.recipe.load import validate

    recipe = validate(data, str(file), str(file.parent))
    settings = {"recipe": data, "file": str(file), "base_dir": str(file.parent), "cache": str(cache), "out": str(cache)}
    steps = assign_keys(plan(recipe, check=False), settings, readonly=True)
    short = {s.task: s.task.split(":", 1)[1] for s in steps}  # tasks without the recipe name (a leaf too)
    return {short[s.task]: replace(s, deps={r: short[d] for r, d in s.deps.items()}) for s in steps}


def leaves(node, path=()):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from leaves(v, (*path, k))
    elif isinstance(node, list) and node and path[-1] != "samples":
        for i, v in enumerate(node):
            yield from leaves(v, (*path, i))
    elif not (isinstance(node, list | dict) and not node):
        yield path, node


def candidates(path, value):
    name = next((p for p in reversed(path) if isinstance(p, str)), "")
    if name == "kind" and path[0] == "source":
        return []
    if path[-1] == "samples":
        return [[s for s in SAMPLES if s not in value] + value[:1], value[::-1], value[:1]]
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return [value + 1, value - 1, value * 2, value + 32]
    if isinstance(value, float):
        return [value * 1.5 + 0.01, value / 2]
    if isinstance(value, str):
        return [a for a in ALTERNATIVES.get(name, []) if a != value] + [value + "x"]
    if value is None:
        return [True, 1, 0.5, 3, "reason", [1, 1, 1]]
    return []


def mutated(data, path, value):
    out = copy.deepcopy(data)
    node = out
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    return out


def closure(steps: dict, roots: set[str]) -> set[str]:
    """`roots` and every step downstream of them."""
    out, grew = set(roots), True
    while grew:
        grew = False
        for task, step in steps.items():
            if task not in out and out & set(step.deps.values()):
                out.add(task)
                grew = True
    return out


def _by(steps: dict, kind: str, target: str | None = None, plugin: str | None = None) -> set[str]:
    return {
        t
        for t, s in steps.items()
        if s.kind == kind and (target is None or s.target == target) and (plugin is None or s.plugin == plugin)
    }


def _gate_setting(steps: dict, data: dict, target: str, gate: str) -> set[str]:
    """The steps a change to `gate`'s settings for `target` reaches."""
    roots = {
        t
        for t, s in steps.items()
        if s.kind == "gate" and s.target == target and (s.plugin == gate or gate in GATE_READS.get(s.plugin, set()))
    }
    if gate in TARGET_READS.get(target, set()):
        roots |= _by(steps, "compile", target)
    return roots


def expected(steps: dict, data: dict, path: tuple) -> set[str]:
    """What reads the leaf at `path` (before closing over downstream steps): the spec of the step kinds."""
    section = path[0]
    publish = _by(steps, "publish")  # the manifest records the whole resolved recipe
    if path[:2] in PRECISION_LEAVES:  # read from the precision step on, not by export, golden and the fix chain
        return {t for t, s in steps.items() if s.kind not in ("export", "golden", "fix")}
    if section in ("source", "input", "export"):
        return set(steps)
    if section == "name":
        return publish | {c for t, r in TARGET_READS.items() if "name" in r for c in _by(steps, "compile", t)}
    if section == "fixes":
        from recipekit.fixes import FIXES

        name = next(iter(data["fixes"][path[1]]))
        return set(steps) if FIXES.get(name).stage == "source" else publish | _by(steps, "fix")
    if section == "targets":
        return publish | _target_setting(steps, data, path)
    if section == "gates":
        roots = set(publish)
        for target, entry in data["targets"].items():
            if path[1] not in ((entry or {}).get("gates") or {}):
                roots |= _gate_setting(steps, data, target, path[1])
        return roots
    raise AssertionError(f"unknown section {section}")


def _target_setting(steps: dict, data: dict, path: tuple) -> set[str]:
    target = path[1]
    if len(path) > 3 and path[2] == "gates":
        return _gate_setting(steps, data, target, path[3])
    mine = {t for t, s in steps.items() if s.target == target and s.kind != "publish"}
    if path[1:] == ("webgpu", "bundle") and _bundle_workarounds(data):  # decides which of them apply
        return mine | _by(steps, "fix")
    return mine


def _bundle_workarounds(data: dict) -> bool:
    """Does the recipe's fix chain hold a fix that works around one onnxruntime-web bundle's defect?"""
    from recipekit.fixes import FIXES

    names = [f if isinstance(f, str) else next(iter(f)) for f in data.get("fixes") or []]
    return any(getattr(FIXES.get(n), "bundles", None) is not None for n in names)


def changed(before: dict, after: dict) -> set[str]:
    return {t for t, s in after.items() if t not in before or before[t].key != s.key}


def recipe_data(path: Path) -> dict:
    from recipekit.recipe.dump import to_raw
    from recipekit.recipe.load import load

    return to_raw(load(path))


def _check_leaf(steps, data, file, cache, path, value) -> bool:
    for new in [c for c in candidates(path, value) if c != value]:
        try:
            after = keys_of(mutated(data, path, new), file, cache)
        except (RecipeKitError, KeyError, ValueError):
            continue
        want = closure(after, expected(after, mutated(data, path, new), path) & set(after))
        got = changed(steps, after)
        assert got == want, (
            f"{file.name}: {'.'.join(map(str, path))} = {new!r}: extra {got - want}, missing {want - got}"
        )
        return True
    return False


@pytest.mark.parametrize("recipe", sorted(p.name for p in RECIPES.glob("*.yaml")))
def test_every_recipe_leaf_changes_exactly_the_steps_that_read_it(recipe, tmp_path):
    file = RECIPES / recipe
    data = recipe_data(file)
    steps = keys_of(data, file, tmp_path / "cache")
    assert all(len(s.key) == 64 for s in steps.values())
    tried = [(path, _check_leaf(steps, data, file, tmp_path / "cache", path, value)) for path, value in leaves(data)]
    exercised = [p for p, ok in tried if ok]
    assert len(exercised) >= 0.8 * len(tried), f"only {len(exercised)}/{len(tried)}: {[p for p, ok in tried if not ok]}"
    assert not (tmp_path / "cache").exists(), "computing keys wrote into the cache"


def _sample_copy(tmp_path: Path, recipe: str) -> tuple[Path, dict]:
    recipes = tmp_path / "recipes"
    shutil.copytree(RECIPES, recipes)
    data = recipe_data(recipes / recipe)
    from recipekit.onnx.preprocess import resolve_sample

    for i, spec in enumerate(data["input"]["samples"]):
        src = resolve_sample(spec, recipes)
        shutil.copyfile(src, recipes / f"sample{i}{src.suffix}")
        data["input"]["samples"][i] = f"sample{i}{src.suffix}"
    return recipes / recipe, data


def flip(path: Path, offset: int = -1) -> None:
    raw = bytearray(path.read_bytes())
    raw[offset] ^= 0xFF
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("recipe", ["yolo11n.yaml", "yolo11n-pose-webgpu.yaml", "yolo11n-seg-b4.yaml"])
def test_sample_image_bytes_change_exactly_the_steps_that_read_them(recipe, tmp_path):
    file, data = _sample_copy(tmp_path, recipe)
    before = keys_of(data, file, tmp_path / "c")
    flip(file.parent / data["input"]["samples"][0].split("/")[-1])
    after = keys_of(data, file, tmp_path / "c")
    roots = _by(after, "golden") | {c for t in SAMPLE_TARGETS for c in _by(after, "compile", t)}
    roots |= _by(after, "export")  # ultralytics synthetic weights are recalibrated on the samples
    assert changed(before, after) == closure(after, roots)


def test_onnx_weights_and_external_data_change_every_step(tmp_path):
    from helpers.onnx_models import external_data_model

    model = external_data_model(tmp_path / "m.onnx")
    data = {
        "name": "ext",
        "source": {"kind": "onnx", "path": "m.onnx"},
        "input": {"samples": ["ultralytics:bus.jpg"]},
        "export": {"opset": 17, "imgsz": [64, 96]},
        "targets": {"ort": {}, "webgpu": {}},
    }
    file = tmp_path / "ext.yaml"
    before = keys_of(data, file, tmp_path / "c")
    flip(model.with_suffix(".onnx.data"), 10)
    after = keys_of(data, file, tmp_path / "c")
    assert changed(before, after) == set(after)
    import onnx

    graph = onnx.load(str(model), load_external_data=False)  # the graph file itself, same data file
    graph.doc_string = "edited"
    onnx.save(graph, str(model))
    assert changed(after, keys_of(data, file, tmp_path / "c")) == set(after)


def test_sample_bytes_do_not_rekey_an_onnx_export(tmp_path):
    """The onnx source copies the file: its export does not read the samples, so it keeps its key."""
    from helpers.onnx_models import external_data_model

    from recipekit.onnx.preprocess import resolve_sample

    external_data_model(tmp_path / "m.onnx")
    recipes = tmp_path
    shutil.copyfile(resolve_sample("ultralytics:bus.jpg", recipes), recipes / "s.jpg")
    data = {
        "name": "ext",
        "source": {"kind": "onnx", "path": "m.onnx"},
        "input": {"samples": ["s.jpg"]},
        "export": {"opset": 17, "imgsz": [64, 96]},
        "targets": {"ort": {}, "webgpu": {}},
    }
    file = tmp_path / "ext.yaml"
    before = keys_of(data, file, tmp_path / "c")
    flip(recipes / "s.jpg")
    after = keys_of(data, file, tmp_path / "c")
    assert changed(before, after) == closure(after, _by(after, "golden") | _by(after, "compile", "webgpu"))


def test_calibration_image_bytes_change_the_precision_step_and_after(tmp_path):
    file, data = _sample_copy(tmp_path, "yolo11n.yaml")
    calib = file.parent / "calib"
    calib.mkdir()
    for i, name in enumerate(data["input"]["samples"]):
        shutil.copyfile(file.parent / name, calib / f"c{i}.jpg")
    data["export"]["precision"] = "int8"
    data["input"]["calibration"] = "calib"
    before = keys_of(data, file, tmp_path / "c")
    assert _by(before, "precision")
    flip(calib / "c1.jpg")
    after = keys_of(data, file, tmp_path / "c")
    assert changed(before, after) == closure(after, _by(after, "precision"))
