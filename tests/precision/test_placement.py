"""INT8 placement without a model: blocks from node names, the search on a scored table, the goal's
schema and its plan-time errors."""

from __future__ import annotations

import shutil

import pytest
from helpers.precision_models import tinydet_onnx, write_recipe

from recipekit.precision.evaluate import Score
from recipekit.precision.nodes import blocks
from recipekit.precision.search import Goal, Search

YOLO_NAMES = [
    "/model.0/conv/Conv",
    "/model.0/act/Sigmoid",
    "/model.1/conv/Conv",
    "/model.2/cv1/conv/Conv",
    "/model.2/m.0/cv1/conv/Conv",
    "/model.2/m.0/cv2/conv/Conv",
    "/model.2/Concat",
    "/model.22/cv2.0/cv2.0.0/conv/Conv",
    "/model.22/cv3.0/cv3.0.0/conv/Conv",
    "/model.22/cv3.0/cv3.0.1/conv/Conv",
    "/model.22/dfl/conv/Conv",
]


def test_blocks_follow_name_scopes_and_split_the_largest_within_the_budget():
    coarse = blocks(YOLO_NAMES, 4)
    assert [b.name for b in coarse] == ["/model.0", "/model.1", "/model.2", "/model.22"]
    finer = blocks(YOLO_NAMES, 8)
    assert len(finer) <= 8 and "/model.22/cv3.0" in [b.name for b in finer]
    assert sorted(n for b in finer for n in b.nodes) == sorted(YOLO_NAMES)  # every node once
    assert [b.nodes for b in blocks(YOLO_NAMES, 0)] == [(n,) for n in YOLO_NAMES]


def test_blocks_of_names_without_scopes_are_chunks_in_graph_order():
    names = [f"Conv_{i}" for i in range(10)]
    out = blocks(names, 3)
    assert [len(b.nodes) for b in out] == [4, 3, 3] and out[0].name == "Conv_0 .. Conv_3"
    merged = blocks(YOLO_NAMES, 2)  # four scopes, two blocks: neighbours merged
    assert [b.name for b in merged] == ["/model.0 .. /model.2", "/model.22"]


def _table(costs: dict[str, float]) -> list[dict]:
    return [{"block": b, "nodes": [f"{b}/a", f"{b}/b"], "cost": c} for b, c in costs.items()]


def _scorer(needed: set[str], seen: list):
    """Agreement 0.95 once every node of `needed` is float, else 0.8 and a failure; records what was scored."""

    def score(nodes: list[str]) -> Score:
        seen.append(sorted(nodes))
        return Score(0.95, None) if needed <= set(nodes) else Score(0.8, None, failures=("agreement 0.8 < 0.9",))

    return score


def test_search_keeps_only_the_nodes_the_goal_needs():
    rows = _table({"x": 0.3, "y": 0.2, "z": 0.1, "w": 0.0})
    seen: list = []
    out = Search(rows, Goal(0.9, None, 8), _scorer({"y/b"}, seen)).run()
    assert out.met and out.nodes == ["y/b"] and out.score.agreement == 0.95
    assert seen[0] == []  # plain INT8 first
    assert len(seen) == len({tuple(s) for s in seen})  # no set is scored twice
    assert all(t["float_nodes"] <= 8 for t in out.trials)


def test_search_within_max_float_or_unreachable_with_the_best_measured():
    rows = _table({"x": 0.3, "y": 0.2, "z": 0.1})
    out = Search(rows, Goal(0.9, None, 3), _scorer({"z/a"}, [])).run()  # z is 3rd: 6 nodes needed
    assert not out.met and out.best is not None and out.best[1].agreement == 0.8
    assert all(t["float_nodes"] <= 3 for t in out.trials)


@pytest.fixture(scope="module")
def tinydet(tmp_path_factory):
    return tinydet_onnx(tmp_path_factory.mktemp("tinydet") / "tinydet.onnx")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("+export.quantization.goal={}", "export.quantization.goal: a goal needs min_agreement or max_drop"),
        (
            "+export.quantization.goal={max_drop: 0.01}",
            "export.quantization.goal.max_drop: a drop against labels needs the labelled set in gates.accuracy",
        ),
        (
            "+export.quantization={goal: {min_agreement: 0.9}, sensitivity: null}",
            "goal: the search ranks nodes by their sensitivity",
        ),
    ],
)
def test_goal_errors_name_the_key_at_plan(tmp_path, cli, tinydet, override, message):
    shutil.copyfile(tinydet, tmp_path / "tinydet.onnx")
    code, out, err = cli("plan", write_recipe(tmp_path, "int8"), override, "--cache", tmp_path / "c")
    assert code == 2 and message in err and "Traceback" not in err, out + err
