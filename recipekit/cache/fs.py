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


RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _renameat2() -> object | None:
    """glibc's renameat2 (2.28+), looked up once; None elsewhere."""
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None


_RENAMEAT2 = _renameat2()


def exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths in one step (Linux renameat2 RENAME_EXCHANGE): a reader of either path
    sees the one folder or the other, never neither. False where the kernel, the C library or the file
    system cannot (NFS, CIFS, not Linux): nothing was changed then."""
    import ctypes
    import errno

    if _RENAMEAT2 is None:
        return False
    if _RENAMEAT2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE) == 0:  # type: ignore[operator]
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(a), None, str(b))
