"""recipekit.recipe.outputs: output semantics declared as data, validated, serialised to plain JSON."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from recipekit.recipe import outputs as o


def test_raw_heads_of_every_ultralytics_task_serialise_with_their_groups():
    pose = o.RawHead(groups=[o.box(0, "cxcywh"), o.class_scores(4, 1), o.keypoints(5, 17, 3)])
    seg = o.RawHead(groups=[o.box(0, "cxcywh"), o.class_scores(4, 80), o.mask_coefficients(84, 32)])
    obb = o.RawHead(groups=[o.box(0, "cxcywh"), o.class_scores(4, 15), o.angle(19)])
    doc = o.declare({"pose": pose, "seg": seg, "protos": o.PrototypeMasks(coefficients="seg"), "obb": obb})
    json.dumps(doc)  # plain JSON: what the Jetson bundle's compare.py reads
    groups = {g["name"]: g for g in doc["pose"]["groups"]}
    assert groups["box"] == {"role": "box", "start": 0, "stop": 4, "unit": "px", "format": "cxcywh", "name": "box"}
    assert groups["keypoints"]["stop"] == 56 and groups["keypoints"]["visibility"] == "probability"
    assert doc["seg"]["groups"][2] == {
        "role": "mask_coefficients",
        "start": 84,
        "stop": 116,
        "unit": "none",
        "name": "mask_coefficients",
    }
    assert doc["protos"] == {"kind": "prototype_masks", "coefficients": "seg", "batch_axis": 0}
    assert doc["obb"]["groups"][2]["unit"] == "radian"
    assert (doc["pose"]["channel_axis"], doc["pose"]["anchor_axis"], doc["pose"]["batch_axis"]) == (1, 2, 0)


def test_detections_of_other_families():
    rtdetr = o.Detections(columns=[o.box(0, "cxcywh", unit="normalized"), o.class_scores(4, 80)])
    cls = o.ClassScores(unit="probability")
    tv = {
        n: o.Detections(group="dets", batch_axis=None, field=o.whole(role, **kw))
        for n, role, kw in [
            ("boxes", "box", {}),
            ("scores", "score", {}),
            ("labels", "class", {}),
            ("masks", "mask", {}),
            ("keypoints", "keypoints", {"dims": 3}),
            ("keypoints_scores", "keypoint_scores", {"unit": "logit"}),
        ]
    }
    doc = o.declare({"rtdetr": rtdetr, "cls": cls, **tv})
    assert doc["rtdetr"]["columns"][0]["unit"] == "normalized" and doc["rtdetr"]["columns"][1]["stop"] == 84
    assert doc["cls"] == {"kind": "class_scores", "unit": "probability", "batch_axis": 0}
    assert doc["masks"]["field"]["role"] == "mask" and doc["masks"]["batch_axis"] is None
    assert {doc[n]["group"] for n in tv} == {"dets"}


def test_undeclared_outputs_are_tensors_and_unknown_names_are_refused():
    doc = o.declare({"a": o.TensorOutput(unit="logit")}, names=["a", "b"])
    assert doc["b"] == {"kind": "tensor", "unit": "none", "batch_axis": 0}
    with pytest.raises(ValueError, match="'c'.*no outputs"):
        o.declare({"c": o.TensorOutput()}, names=["a"])


@pytest.mark.parametrize(
    "bad, why",
    [
        (
            {
                "kind": "raw_head",
                "groups": [{"role": "box", "start": 0, "stop": 3}, {"role": "score", "start": 3, "stop": 4}],
            },
            "box spans 4",
        ),
        (
            {
                "kind": "raw_head",
                "groups": [{"role": "box", "start": 0, "stop": 4}, {"role": "class_scores", "start": 2, "stop": 9}],
            },
            "overlaps",
        ),
        ({"kind": "raw_head", "groups": [{"role": "box", "start": 0, "stop": 4}]}, "needs a box and a score"),
        (
            {"kind": "detections", "columns": [{"role": "box", "start": 0, "stop": 4, "unit": "probability"}]},
            "takes unit",
        ),
        (
            {"kind": "detections", "columns": [{"role": "keypoints", "start": 0, "stop": 10, "dims": 3}]},
            "multiple of dims",
        ),
        ({"kind": "detections", "field": {"role": "box", "start": 0, "stop": 4}}, "no span"),
        ({"kind": "detections", "columns": [{"role": "box", "start": 0, "stop": 4}]}, "needs a box and a score"),
        ({"kind": "prototype_masks", "coefficients": "nothing"}, "no output with a mask_coefficients"),
        ({"kind": "detections", "columns": [], "surprise": 1}, "surprise"),
    ],
)
def test_inconsistent_declarations_are_refused_with_the_reason(bad, why):
    with pytest.raises(ValidationError, match=why):
        o.declare({"out": bad})


def test_the_short_legacy_form_reads_as_columns():
    doc = o.declare(
        {
            "output0": {
                "kind": "detections",
                "box": [0, 4],
                "score": 4,
                "class": 5,
                "extra": [6, 32],
                "score_thr": 0.25,
                "layout": "xyxy",
            }
        }
    )
    cols = {c["role"]: (c["start"], c["stop"]) for c in doc["output0"]["columns"]}
    assert cols == {"box": (0, 4), "score": (4, 5), "class": (5, 6), "mask_coefficients": (6, 38)}
    assert doc["output0"]["score_threshold"] == 0.25
    tv = o.declare(
        {
            "boxes": {"kind": "detections", "field": "box", "group": "d", "batched": False},
            "scores": {"kind": "detections", "field": "score", "group": "d", "batched": False},
        }
    )
    assert tv["boxes"]["batch_axis"] is None and tv["boxes"]["field"]["format"] == "xyxy"


def test_declarations_round_trip_through_parse():
    doc = o.declare({"x": o.RawHead(channel_axis=2, anchor_axis=1, groups=[o.box(0), o.score(4, unit="logit")])})
    again = o.canonical(o.parse(doc["x"]))
    assert again == doc["x"]
