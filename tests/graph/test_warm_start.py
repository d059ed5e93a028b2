"""The warm start (graph/executors/workers.py): the console command starts the forkserver its workers
are forked from before composing when a build is likely, it loads the recipe's source libraries
offline, and a remembered recipe starts nothing. Real processes; the builds compare a warm run's
artifact with an inline run's. Ready steps leading the longest chain go first."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.common import RECIPES, copy_recipes

from recipekit.graph.executors.local import chain_lengths
from recipekit.graph.executors.workers import likely_sources
from recipekit.graph.plan import plan
from recipekit.recipe.fragments import source_kind_hint
from recipekit.recipe.load import load

SMALL = "export.imgsz=320"


def test_a_remembered_composition_is_not_a_likely_build(tmp_path):
    recipe, cache = str(RECIPES / "yolo11n.yaml"), tmp_path / "c"
    ultralytics = [("source", "ultralytics")]
    assert likely_sources([recipe], [SMALL], cache, force=False) == ultralytics  # nothing remembered yet
    load(recipe, [SMALL], cache)  # what a build does once the recipe planned: remember its composition
    assert likely_sources([recipe], [SMALL], cache, force=False) == []
    assert likely_sources([recipe], [SMALL], cache, force=True) == ultralytics
    assert likely_sources([recipe], ["export.imgsz=256"], cache, force=False) == ultralytics  # other overrides
    assert likely_sources([], [], cache, force=False) == []


def test_source_kind_hint_reads_overrides_then_recipe_then_fragments(tmp_path):
    folder = copy_recipes(tmp_path / "r")
    assert source_kind_hint(folder / "yolo11n.yaml", []) == "ultralytics"
    assert source_kind_hint(folder / "yolo11n.yaml", ["source.kind=onnx"]) == "onnx"
    (folder / "_base" / "src.yaml").write_text("# @package _global_\nsource: {kind: torchvision}\n")
    (folder / "frag.yaml").write_text("defaults:\n  - _base/src\n  - _self_\nname: frag\ntargets: {ort: {}}\n")
    assert source_kind_hint(folder / "frag.yaml", []) == "torchvision"
    (folder / "bad.yaml").write_text("name: [unclosed\n")
    assert source_kind_hint(folder / "bad.yaml", []) is None  # composing it reports the error, not the hint
    both = [str(folder / "yolo11n.yaml"), str(folder / "bad.yaml")]
    assert likely_sources(both, [], tmp_path / "c", force=False) == [("source", "ultralytics")]
    assert likely_sources([str(folder / "bad.yaml")], [], tmp_path / "c", force=False) == []  # nothing to warm


def test_the_longest_chain_goes_first():
    from doit.loader import generate_tasks

    from recipekit.graph.doit_tasks import step_tasks

    steps = plan(load(RECIPES / "yolo11n-seg-b4.yaml"), ["ort"], check=False)
    settings = {"yolo11n-seg-b4": {"cache": "cache"}}
    chain = chain_lengths({t.name: t for t in generate_tasks("t", (t for t in step_tasks(steps, settings)))})
    by_kind = {s.task.split(":")[1]: chain[s.task] for s in steps}
    assert by_kind["export"] > by_kind["fix"] > by_kind["compile"] > by_kind["gate"] > by_kind["publish"] == 2
    assert chain["yolo11n-seg-b4"] == 1  # the recipe's task: what its publish steps lead to
    assert by_kind["golden"] == by_kind["gate"] + 1  # golden feeds the gates only


WARM_PROBE = """
import json, multiprocessing, sys
from pathlib import Path
from recipekit.graph.executors import workers
from helpers.probes import heavy_and_settings

workers.enable_warm_start()
recipe, cache = sys.argv[1], Path(sys.argv[2])
with workers.warm_start([recipe], [], cache, False) as server:
    out = {"started": server.started, "parent_torch": "torch" in sys.modules}
    if server.started:
        with multiprocessing.get_context("forkserver").Pool(1) as pool:
            out["worker"] = pool.apply(heavy_and_settings)
print(json.dumps(out))
"""


def _probe(recipe: Path, cache: Path, env: dict[str, str]) -> dict:
    env = {**env, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}  # helpers.probes, for the worker
    proc = subprocess.run(
        [sys.executable, "-c", WARM_PROBE, str(recipe), str(cache)], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _clean_env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("YOLO_", "MPLCONFIGDIR", "RECIPEKIT_"))}
    return {**env, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")}


def test_warm_workers_load_the_source_offline_and_the_parent_loads_nothing(tmp_path):
    env = _clean_env(tmp_path)
    out = _probe(RECIPES / "yolo11n.yaml", tmp_path / "c", env)
    assert out["started"] and not out["parent_torch"]
    worker = out["worker"]
    assert worker["torch"] and worker["ultralytics"] and worker["offline"] == "1"
    assert Path(worker["settings"]).name.startswith("recipekit-ultralytics-")  # not the user's home
    assert not (tmp_path / "home" / ".config" / "Ultralytics").exists()
    load(RECIPES / "yolo11n.yaml", [], tmp_path / "c")  # remembered: a likely no-op forks nothing
    assert _probe(RECIPES / "yolo11n.yaml", tmp_path / "c", env) == {"started": False, "parent_torch": False}
    off = _probe(RECIPES / "yolo11n.yaml", tmp_path / "c2", {**env, "RECIPEKIT_WARM_START": "0"})
    assert off == {"started": False, "parent_torch": False}


@pytest.mark.slow
def test_a_warm_build_publishes_what_an_inline_build_does(tmp_path):
    """The console command on a cold cache (warm, one worker) and `main()` in a child (inline): the
    same artifact byte for byte, the same steps ran, and nothing written into the user's home."""
    env = _clean_env(tmp_path)
    warm = [sys.executable, "-m", "recipekit", "build", str(RECIPES / "yolo11n.yaml"), SMALL, "--json"]
    proc = subprocess.run(
        [*warm, "--cache", str(tmp_path / "c1"), "--out", str(tmp_path / "o1")], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    ran = {e["task"] for e in events if e.get("event") == "step-finished" and e["status"] == "ran"}
    inline = (
        "import sys\nfrom recipekit.cli import main\n"
        f"sys.exit(main(['build', {str(RECIPES / 'yolo11n.yaml')!r}, {SMALL!r}, '--json', '--cache', "
        f"{str(tmp_path / 'c2')!r}, '--out', {str(tmp_path / 'o2')!r}]))\n"
    )
    proc2 = subprocess.run([sys.executable, "-c", inline], capture_output=True, text=True, env=env)
    assert proc2.returncode == 0, proc2.stdout[-2000:] + proc2.stderr[-2000:]
    events2 = [json.loads(line) for line in proc2.stdout.splitlines() if line.startswith("{")]
    assert ran == {e["task"] for e in events2 if e.get("event") == "step-finished" and e["status"] == "ran"}
    a, b = (tmp_path / o / "yolo11n" / "ort" / "model.onnx" for o in ("o1", "o2"))
    assert a.read_bytes() == b.read_bytes()
    assert not (tmp_path / "home" / ".config" / "Ultralytics").exists()


def test_a_free_worker_takes_the_ready_step_leading_the_longest_chain(tmp_path):
    """doit's dispatcher with recipekit's ready queue: of two ready tasks the one with more tasks after
    it runs first, whatever order doit found them in (doit alone: first in, first out)."""
    from doit.control import TaskControl
    from doit.dependency import Dependency, JsonDB
    from doit.runner import Runner
    from doit.task import Task

    from recipekit.graph.executors.local import LongestChainFirst

    order: list[str] = []

    def record(name: str) -> None:
        order.append(name)

    def task(name: str, *deps: str) -> Task:
        return Task(name, [(record, [name])], task_dep=list(deps))

    tasks = [task("short"), task("long1"), task("long2", "long1"), task("long3", "long2")]
    tasks.append(task("end", "short", "long3"))
    control = TaskControl(tasks)
    control.process(None)
    reporter = type("Quiet", (), {"__getattr__": lambda self, name: lambda *a, **k: None})()
    dispatcher = LongestChainFirst(control.tasks, control.targets, control.selected_tasks)
    Runner(Dependency(JsonDB, str(tmp_path / "state.json")), reporter).run_all(dispatcher)
    assert order[0] == "long1" and order[-1] == "end", order
