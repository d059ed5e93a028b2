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
