"""File-system helpers for the cache and published folders: atomic writes, normal permissions.

`tempfile.mkdtemp` makes folders 0700; a cache entry or a published target renamed from one
would stay unreadable to other users. `share` gives them the modes a plain `mkdir`/`open` would
(0777 / 0666 minus the umask).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

_LOCK = threading.Lock()


def umask() -> int:
    """The process umask (read by setting and restoring it; there is no getter)."""
    with _LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def share(root: Path) -> None:
    """Give `root` and everything under it the default modes (dirs 0777 &~umask, files 0666 &~umask,
    executables keep their x bits)."""
    mask = umask()
    for dirpath, _dirs, filenames in os.walk(root):
        os.chmod(dirpath, 0o777 & ~mask)
        for name in filenames:
            p = os.path.join(dirpath, name)
            if os.path.islink(p):
                continue
            mode = 0o777 if os.stat(p).st_mode & 0o100 else 0o666
            os.chmod(p, mode & ~mask)


def atomic_write_text(path: Path, text: str) -> None:
    """Write beside `path`, then rename: readers see the old or the new file, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(text)
    os.chmod(tmp, 0o666 & ~umask())
    os.replace(tmp, path)
