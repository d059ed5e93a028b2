"""A stage sees only what its key hashes: its recipe view raises on any other section, and the
view's dump is exactly config["recipe"] of the step (the bytes the key hashes)."""

from __future__ import annotations

import pytest
from helpers.common import RECIPES

from recipekit.graph.plan import plan
from recipekit.graph.view import UnhashedRead, dump_view, project
from recipekit.recipe.load import load


@pytest.mark.parametrize("recipe", sorted(p.name for p in RECIPES.glob("*.yaml")))
def test_view_dump_is_what_the_key_hashes(recipe):
    full = load(RECIPES / recipe)
    for step in plan(full, check=False):
        view = project(full, step.reads, step.task)
        assert dump_view(view, step.reads) == step.config["recipe"], step.task


def test_reading_an_unhashed_section_names_the_step_and_the_section():
    full = load(RECIPES / "yolov10n-dynamic.yaml")
    steps = {s.task: s for s in plan(full, check=False)}
    export = project(full, steps["yolov10n-dynamic:export:ultralytics"].reads, "yolov10n-dynamic:export:ultralytics")
    assert export.export.opset == full.export.opset and export.shapes() == full.shapes()
    with pytest.raises(UnhashedRead, match=r"yolov10n-dynamic:export:ultralytics read recipe section 'gates'"):
        export.gates.get("parity")
    with pytest.raises(UnhashedRead, match="'targets'"):
        list(export.targets)
    gate = project(full, steps["yolov10n-dynamic:gate:trt.parity"].reads, "g")
    assert list(gate.targets) == ["trt"] and set(gate.gates) <= {"parity"}  # its target, its own settings
    with pytest.raises(UnhashedRead, match="'name'"):
        str(gate.name)
    jetson = project(full, steps["yolov10n-dynamic:compile:trt-jetson"].reads, "c")
    assert jetson.name == "yolov10n-dynamic"  # the bundle's README names the recipe: declared, so hashed
