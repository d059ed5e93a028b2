"""A `-j N` worker (a fork of the forkserver, executors/workers.py) imports what the planned steps'
plugins declare (Plugin.imports), and nothing else: an Ultralytics matrix never pays for
torchvision or onnxslim, a torchvision one does."""

from __future__ import annotations

import subprocess
import sys

import pytest
from helpers.common import RECIPES, copy_recipes

from recipekit.graph.executors.workers import plugin_imports, step_plugins
from recipekit.graph.plan import plan
from recipekit.recipe.load import load


def imports(recipe: str, *targets: str) -> tuple[str, ...]:
    return plugin_imports(step_plugins(plan(load(RECIPES / recipe), list(targets) or None, check=False)))


def test_ultralytics_plan_imports_no_torchvision():
    got = imports("yolo11n.yaml")
    assert got[0] == "torch" and {"ultralytics", "onnx", "onnxruntime"} <= set(got)  # the gates: onnxruntime
    assert "torchvision" not in got and "onnxslim" not in got


def test_torchvision_and_fix_plugins_add_theirs(tmp_path):
    assert "torchvision" in imports("fasterrcnn-mnv3.yaml")
    recipe = copy_recipes(tmp_path / "r") / "slim.yaml"
    recipe.write_text((RECIPES / "yolo11n.yaml").read_text().replace("fixes: []", "fixes: [onnxslim]"))
    assert "onnxslim" in plugin_imports(step_plugins(plan(load(recipe), check=False)))


@pytest.mark.slow
@pytest.mark.parametrize("recipe", ["yolo11n.yaml", "fasterrcnn-mnv3.yaml"])
def test_what_a_cell_imports_is_declared(tmp_path, recipe):
    """Run the cell inline in a child process: every heavy module it imported is in the declared set."""
    heavy = ("torch", "torchvision", "ultralytics", "onnx", "onnxruntime", "onnxslim", "cv2", "mmpose")
    code = (
        "import sys\nfrom recipekit.cli import main\n"
        f"main(['build', {str(RECIPES / recipe)!r}, 'export.imgsz=160', '--targets', 'ort', '--cache', "
        f"{str(tmp_path / 'c')!r}, '--out', {str(tmp_path / 'o')!r}, '-q'])\n"
        f"print('HEAVY:' + ','.join(m for m in {heavy!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    used = set(out.strip().splitlines()[-1].removeprefix("HEAVY:").split(","))
    assert used <= set(imports(recipe, "ort")), used - set(imports(recipe, "ort"))
