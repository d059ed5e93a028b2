"""A committed entry's digests are remembered with its files' identity: the step that reads it next
(another process) does not hash it again, and a file changed since is still caught."""

from __future__ import annotations

import os

from recipekit.cache import digests
from recipekit.cache.store import Store

KEY = "ab" * 32


def commit(root) -> Store:
    store = Store(root)
    with store.writer(KEY) as work:
        (work / "model.onnx").write_bytes(os.urandom(100_000))
        (work / "sub").mkdir()
        (work / "sub" / "weights.bin").write_bytes(os.urandom(1000))
    store.commit(KEY, work, {"task": "r:export:x", "kind": "export"})
    return store


def test_a_committed_entry_is_read_back_without_hashing(tmp_path, monkeypatch):
    commit(tmp_path / "c")

    def no_hashing(path):
        raise AssertionError(f"hashed {path} again")

    monkeypatch.setattr(digests, "file_sha256", no_hashing)
    entry = Store(tmp_path / "c").get(KEY)  # a new Store: what another process reads from digests.json
    assert entry is not None and set(entry.digests) == {"model.onnx", "sub/weights.bin"}


def test_a_file_changed_after_the_commit_is_still_caught(tmp_path, capsys):
    store = commit(tmp_path / "c")
    path = store.path(KEY) / "model.onnx"
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0xFF
    path.write_bytes(bytes(raw))
    assert Store(tmp_path / "c").get(KEY) is None
    assert "corrupt" in capsys.readouterr().err


def test_a_file_changed_while_hashed_is_not_remembered(tmp_path, monkeypatch):
    real = digests.file_sha256

    def touching(path):
        digest = real(path)
        os.utime(path, ns=(1, 1))  # a writer still at work while the commit hashed it
        return digest

    monkeypatch.setattr(digests, "file_sha256", touching)
    commit(tmp_path / "c")
    memo = digests.DigestMemo(tmp_path / "c" / "digests.json")
    assert not any("objects" in path for path in memo._load())
