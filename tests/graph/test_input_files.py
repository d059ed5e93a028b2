"""A step builds only from the declared input files its key hashed: a file missing on this machine (a
cluster worker without the client's checkout) or changed since planning fails the step, never filed."""

from __future__ import annotations

import pytest

from recipekit.cache.digests import file_sha256
from recipekit.core.errors import StepFailed
from recipekit.graph.context import StepContext
from recipekit.graph.plan import Step


def ctx_for(tmp_path, path, digest) -> StepContext:
    step = Step(
        task="r:export:ultralytics",
        kind="export",
        plugin="ultralytics",
        key="ab" * 32,
        files={"weights/w.pt": str(path)},
        inputs={"files": {"weights/w.pt": digest}},
    )
    return StepContext(step, {"cache": str(tmp_path / "cache")})


def test_unchanged_input_passes(tmp_path):
    w = tmp_path / "w.pt"
    w.write_bytes(b"weights")
    ctx_for(tmp_path, w, file_sha256(w)).check_inputs()


def test_changed_input_fails_the_step_naming_both_digests(tmp_path):
    w = tmp_path / "w.pt"
    w.write_bytes(b"weights")
    planned = file_sha256(w)
    w.write_bytes(b"other weights")
    with pytest.raises(StepFailed, match=rf"weights/w.pt: .*other bytes.*keyed {planned[:12]}"):
        ctx_for(tmp_path, w, planned).check_inputs()


def test_missing_input_names_the_path(tmp_path):
    with pytest.raises(StepFailed, match=r"is not on this machine"):
        ctx_for(tmp_path, tmp_path / "gone.pt", "0" * 64).check_inputs()


def test_nothing_is_filed_under_the_key(tmp_path):
    from recipekit.cache.store import Store

    w = tmp_path / "w.pt"
    w.write_bytes(b"weights")
    ctx = ctx_for(tmp_path, w, "0" * 64)
    with pytest.raises(StepFailed):
        ctx.cached(lambda work: pytest.fail("the build must not start"))
    assert Store(tmp_path / "cache").get(ctx.key) is None


def test_the_same_recipe_text_in_two_folders_reads_each_folders_files(cli, tmp_path):
    """One process (a matrix, main() as a library) building two recipes whose texts are the same:
    each one's relative paths are its own folder's, so are the bytes its keys hash."""
    import json

    import onnx
    from helpers.tiny_onnx import tiny_conv, tiny_recipe

    keys = []
    for name, stamp in (("a", None), ("b", "another file")):
        folder = tmp_path / name
        folder.mkdir()
        if stamp:
            model = onnx.load(str(tiny_conv(folder / "tiny.onnx")))
            model.metadata_props.add(key="note", value=stamp)
            onnx.save(model, str(folder / "tiny.onnx"))
        recipe = tiny_recipe(folder, gates="{}")
        code, out, err = cli("build", recipe, "--cache", folder / "c", "--out", folder / "o", "-q")
        assert code == 0, out + err
        metas = [json.loads(m.read_text()) for m in (folder / "c" / "objects").glob("*/*/meta.json")]
        (data,) = [m for m in metas if m["kind"] == "export"]
        assert data["inputs"]["files"]["weights/tiny.onnx"] == file_sha256(folder / "tiny.onnx")
        keys.append(data["key"])
    assert keys[0] != keys[1]
