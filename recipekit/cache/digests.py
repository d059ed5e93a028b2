"""File digests. Large weight files are hashed once and remembered by (path, size, mtime_ns, inode)."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

_LOCK = threading.Lock()


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class DigestMemo:
    """sha256 of files, remembered in a JSON file keyed by the file's identity and stat."""

    def __init__(self, memo_file: Path) -> None:
        self.memo_file = memo_file

    def _load(self) -> dict[str, list]:
        try:
            return json.loads(self.memo_file.read_text())
        except (OSError, ValueError):
            return {}

    def digest(self, path: Path) -> str:
        path = path.resolve()
        st = os.stat(path)
        ident = [st.st_size, st.st_mtime_ns, st.st_ino]
        with _LOCK:
            memo = self._load()
            known = memo.get(str(path))
            if known and known[:3] == ident:
                return known[3]
            digest = file_sha256(path)
            memo[str(path)] = [*ident, digest]
            self.memo_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.memo_file.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(memo, sort_keys=True))
            os.replace(tmp, self.memo_file)
            return digest
