"""Remote cache entries on a file:// remote (a shared mount): verification, hostile metas, two writers,
and the --remote-cache options. Real files and the real Store; no server needed."""

from __future__ import annotations

import json

import pytest

from recipekit.cache.remote import RemoteCache, RemoteRejected, redact
from recipekit.cache.store import Store

KEY = "ab" * 32


def entry(store: Store, key: str, payload: bytes):
    with store.writer(key) as work:
        (work / "model.onnx").write_bytes(payload)
        (work / "sub").mkdir()
        (work / "sub" / "info.json").write_text(json.dumps({"n": len(payload)}))
        return store.commit(key, work, {"task": "r:export:x", "kind": "export", "result": {"n": len(payload)}})


def test_push_then_fetch_verifies_and_marks_origin(tmp_path):
    remote = RemoteCache((tmp_path / "remote").as_uri())
    a = entry(Store(tmp_path / "a"), KEY, b"weights-a")
    assert remote.push(a) is True
    assert remote.push(a) is False  # already there: nothing uploaded twice
    got = remote.fetch(KEY, Store(tmp_path / "b"))
    assert got.digests == a.digests and got.meta["origin"] == "remote"
    assert (got.path / "sub" / "info.json").read_text() == (a.path / "sub" / "info.json").read_text()
    assert not list((tmp_path / "remote").rglob("*.part"))


def test_two_writers_of_one_key_never_mix(tmp_path):
    """Writer B's blobs land between writer A's blobs and A's meta: each meta names only its own blobs."""
    remote = RemoteCache((tmp_path / "remote").as_uri())
    a = entry(Store(tmp_path / "a"), KEY, b"bytes of writer A")
    b = entry(Store(tmp_path / "b"), KEY, b"bytes of writer B, other length")
    for name, sha in a.digests.items():
        remote._put(a.path / name, None, remote.blob_path(sha))
    remote.push(b)  # B completes first
    doc = {**a.meta, "key": KEY, "files": a.digests}
    remote._put(None, json.dumps(doc).encode(), remote.meta_path(KEY))  # then A's meta replaces B's
    got = remote.fetch(KEY, Store(tmp_path / "c"))
    assert got.digests == a.digests
    assert remote.verify(KEY) is None


@pytest.mark.parametrize(
    "files",
    [{"../escape": "0" * 64}, {"/etc/passwd": "0" * 64}, {"ok": "not-a-digest"}, {"meta.json": "0" * 64}],
)
def test_hostile_meta_is_rejected_before_any_download(tmp_path, files):
    remote = RemoteCache((tmp_path / "remote").as_uri())
    meta = tmp_path / "remote" / "entries" / KEY[:2] / f"{KEY}.json"
    meta.parent.mkdir(parents=True)
    meta.write_text(json.dumps({"key": KEY, "files": files}))
    with pytest.raises(RemoteRejected):
        remote.fetch(KEY, Store(tmp_path / "b"))
    assert not (tmp_path / "escape").exists() and not list((tmp_path / "b").glob("objects/*/*"))


def test_corrupt_blob_is_rejected_and_nothing_committed(tmp_path):
    remote = RemoteCache((tmp_path / "remote").as_uri())
    a = entry(Store(tmp_path / "a"), KEY, b"weights")
    remote.push(a)
    sha = a.digests["model.onnx"]
    (tmp_path / "remote" / "blobs" / sha[:2] / sha).write_bytes(b"weightz")
    with pytest.raises(RemoteRejected, match="sha256") as exc:
        remote.fetch(KEY, Store(tmp_path / "b"))
    assert exc.value.blob == sha
    assert Store(tmp_path / "b").get(KEY) is None
    assert "model.onnx" in remote.verify(KEY)


def test_urls_are_shown_without_credentials():
    assert redact("s3://AKIAXXXX:secret@bucket/rk?X-Amz-Security-Token=tok") == "s3://bucket/rk"
    assert redact("https://user:pw@host:9000/b") == "https://host:9000/b"


def test_remote_cache_options_are_checked_before_any_work(cli, tmp_path, monkeypatch):
    monkeypatch.delenv("RECIPEKIT_REMOTE_CACHE", raising=False)
    recipe = str(tmp_path / "none.yaml")
    cases = [
        (["--remote-cache", "read-only"], "needs a URL"),
        (["--remote-cache", "nosuch://b/x"], "unknown protocol nosuch://"),
        (["--remote-cache", "s3://a", "--remote-cache", "s3://b"], "at most one URL"),
    ]
    for extra, msg in cases:
        code, _, err = cli("plan", recipe, *extra)
        assert code == 2 and msg in err and "Traceback" not in err, err
