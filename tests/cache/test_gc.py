"""`recipekit cache gc` never removes an entry a running build holds; stale temp folders go."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from recipekit.cache.store import Store

HOLDER = """
import sys, time
from recipekit.cache.store import Store
with Store(sys.argv[1]).hold([sys.argv[2]]):
    print("holding", flush=True)
    time.sleep(60)
"""


def fake_entry(store: Store, key: str, task: str, size: int = 1000, age_s: float = 0) -> Path:
    with store.writer(key) as work:
        (work / "model.onnx").write_bytes(os.urandom(size))
    entry = store.commit(key, work, {"task": task, "kind": task.split(":")[1]})
    t = time.time() - age_s
    os.utime(entry.path, (t, t))
    return entry.path


def test_gc_spares_held_entries_and_removes_old_and_oversized(tmp_path, cli):
    store = Store(tmp_path / "c")
    keys = [f"{i:x}" * 64 for i in range(1, 5)]
    paths = [fake_entry(store, k, f"r:export:x{i}", age_s=86400 * (10 + i)) for i, k in enumerate(keys)]
    fresh = fake_entry(store, "f" * 64, "r:fix:chain", size=5000)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(store.root), keys[0]], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        code, out, _ = cli("cache", "--cache", store.root, "gc", "--older-than", "7d")
        assert code == 0 and "1 held" in out, out
        assert paths[0].exists() and not any(p.exists() for p in paths[1:]) and fresh.exists()
        code, out, _ = cli("cache", "--cache", store.root, "gc", "--max-size", "2K")
        assert paths[0].exists() and not fresh.exists(), out  # over the size: least recently used first, never held
    finally:
        holder.kill()
        holder.wait()
    code, out, _ = cli("cache", "--cache", store.root, "gc", "--older-than", "7d")
    assert code == 0 and not paths[0].exists(), out


def test_gc_needs_a_limit_and_bad_values_are_usage_errors(tmp_path, cli):
    Store(tmp_path / "c").objects.mkdir(parents=True)
    assert cli("cache", "--cache", tmp_path / "c", "gc")[0] == 2
    code, _, err = cli("cache", "--cache", tmp_path / "c", "gc", "--max-size", "lots")
    assert code == 2 and "expected a size like 20G" in err
    assert cli("cache", "--cache", tmp_path / "nope", "ls")[0] == 2


def test_clean_tmp_keeps_folders_of_keys_being_built(tmp_path):
    store = Store(tmp_path / "c")
    busy, dead = "b" * 64, "d" * 64
    with store.lock(busy):
        with store.writer(busy) as work_busy:
            (store.tmp / f"{dead}.zz").mkdir()
            assert store.clean_tmp() == 1
            assert work_busy.exists() and not (store.tmp / f"{dead}.zz").exists()
            (work_busy / "x").write_text("1")
            store.commit(busy, work_busy, {"task": "r:export:x", "kind": "export"})
    assert store.get(busy) is not None
