"""Fragments wherever they live on the search path, and env interpolations, are part of the
remembered composition; a fragment outside the search path is refused; `plan` and rejected
recipes write nothing."""

from __future__ import annotations

import os
import shutil

import pytest
from helpers.common import RECIPES

from recipekit.recipe.load import load

SHARED = "# @package _global_\ngates:\n  parity: {atol: 0.3, rtol: 0.002}\n"


@pytest.fixture
def project(tmp_path):
    """project/recipes/yolo11n.yaml pulling ../shared/common.yaml and an env-interpolating fragment."""
    root = tmp_path / "project"
    shutil.copytree(RECIPES, root / "recipes")
    (root / "shared").mkdir()
    (root / "shared" / "common.yaml").write_text(SHARED)
    (root / "recipes" / "envfrag.yaml").write_text(
        "# @package _global_\ninput:\n  preprocess: {pad_value: '${oc.env:RK_TEST_PAD,114}'}\n"
    )
    text = (root / "recipes" / "yolo11n.yaml").read_text()
    text = text.replace("  - _base/yolo\n", "  - _base/yolo\n  - ../shared/common\n  - envfrag\n")
    text = text[: text.index("\ngates:")] + "\n"
    (root / "recipes" / "yolo11n.yaml").write_text(text)
    return root


def test_fragment_outside_the_recipe_folder_is_keyed(project, tmp_path):
    recipe, cache = project / "recipes" / "yolo11n.yaml", tmp_path / "cache"
    assert load(recipe, [], cache).gates["parity"].atol == 0.3
    (project / "shared" / "common.yaml").write_text(SHARED.replace("0.3", "0.7"))
    assert load(recipe, [], cache).gates["parity"].atol == 0.7  # not the remembered 0.3
    assert len([p for p in (cache / "resolved").glob("*.json") if len(p.stem) == 64]) == 2


def test_env_interpolation_is_keyed(project, tmp_path, monkeypatch):
    recipe, cache = project / "recipes" / "yolo11n.yaml", tmp_path / "cache"
    pads = []
    for value in ("100", "50", "100"):
        monkeypatch.setenv("RK_TEST_PAD", value)
        pads.append(load(recipe, [], cache).input.preprocess.pad_value)
    assert pads == [100, 50, 100]
    monkeypatch.delenv("RK_TEST_PAD")
    assert load(recipe, [], cache).input.preprocess.pad_value == 114


def test_recipe_path_folders_are_searched_and_keyed(project, tmp_path, monkeypatch):
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "site.yaml").write_text("# @package _global_\nexport:\n  simplify: true\n")
    recipe, cache = project / "recipes" / "yolo11n.yaml", tmp_path / "cache"
    recipe.write_text(recipe.read_text().replace("  - envfrag\n", "  - envfrag\n  - site\n"))
    monkeypatch.setenv("RECIPEKIT_RECIPE_PATH", os.pathsep.join([str(tmp_path / "nothing"), str(extra)]))
    assert load(recipe, [], cache).export.simplify is True
    (extra / "site.yaml").write_text("# @package _global_\nexport:\n  simplify: false\n")
    assert load(recipe, [], cache).export.simplify is False


def test_fragment_outside_the_search_path_is_refused(project, tmp_path, cli):
    (tmp_path / "outside.yaml").write_text("# @package _global_\nname: stolen\n")
    recipe = project / "recipes" / "yolo11n.yaml"
    recipe.write_text(recipe.read_text().replace("  - ../shared/common\n", "  - ../../outside\n"))
    code, out, err = cli("build", recipe, "--cache", tmp_path / "c", "--out", tmp_path / "o")
    assert code == 2, out + err
    assert str(recipe) in err and "defaults[1]" in err and "'../../outside'" in err
    assert str(project / "recipes") in err and "RECIPEKIT_RECIPE_PATH" in err and "Traceback" not in err
    assert not (tmp_path / "c").exists() and not (tmp_path / "o").exists()


def _recipekit_temp() -> set[str]:
    import tempfile

    return {p for p in os.listdir(tempfile.gettempdir()) if p.startswith("recipekit-")}


def test_plan_writes_nothing(tmp_path, cli):
    before = _recipekit_temp()
    code, out, err = cli("plan", RECIPES / "yolo11n.yaml", "export.imgsz=160", "--cache", tmp_path / "c")
    assert code == 0, err
    assert len(out.splitlines()) == 7 and all(len(line.split()[1]) == 64 for line in out.splitlines())
    assert not (tmp_path / "c").exists()
    assert not any(p.endswith(tuple(str(os.getpid()))) for p in _recipekit_temp() - before)


@pytest.mark.parametrize(
    "override",
    ["gates.parity.atol=-1", "export.opsett=17", "input.samples=[nowhere.jpg]", "targets.ort.providers=7"],
)
def test_rejected_recipe_writes_nothing(tmp_path, cli, override):
    code, out, err = cli(
        "build", RECIPES / "yolo11n.yaml", override, "--cache", tmp_path / "c", "--out", tmp_path / "o"
    )
    assert code == 2, out + err
    assert not (tmp_path / "c").exists() and not (tmp_path / "o").exists()
