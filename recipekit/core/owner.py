"""Which process a temporary or staging folder belongs to, and whether that process is gone.

A folder's name carries its owner's tag, `<pid>-<start>`: the process id and the process's start
time in clock ticks since boot (field 22 of /proc/<pid>/stat). The owner is gone when no process
has that pid, when that process is a zombie (it has exited and only waits for its parent, or for
init, to collect its status: a build's workers killed with their parent stay zombies until init
reaps them, and `os.kill(pid, 0)` still succeeds on them), or when the process that has the pid now
started at another time (the pid was reused). The start time comes from the kernel, in the same
unit on both sides: no clock conversion, no margin. Where /proc does not show the process (not
Linux, or mounted with hidepid) a process that exists counts as the owner.
"""

from __future__ import annotations

import os
import re

TAG = re.compile(r"(?P<pid>\d+)-(?P<start>\d+)")


def _stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start time in clock ticks) of process `pid`; None if there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            text = fh.read().decode("ascii", "replace")
    except OSError:  # no such process, or /proc not mounted (or hiding other users' processes)
        return None
    fields = text.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces and ')'
    return fields[0], int(fields[19])


def tag(pid: int | None = None) -> str:
    """`<pid>-<start>` of this process (or of `pid`); `<pid>-0` where /proc cannot tell."""
    pid = os.getpid() if pid is None else pid
    stat = _stat(pid)
    return f"{pid}-{stat[1] if stat else 0}"


def gone(pid: int, start: int | None = None) -> bool:
    """True when process `pid` (started at `start` ticks, if known; 0 = unknown) no longer runs."""
    stat = _stat(pid)
    if stat is None:  # no /proc entry: ask the kernel (a process /proc hides from us still exists)
        return not _exists(pid)
    state, started = stat
    return state in "ZX" or bool(start) and started != start


def tag_gone(text: str) -> bool:
    """`gone` for a `<pid>-<start>` tag as `tag()` wrote it."""
    m = TAG.fullmatch(text)
    if m is None:
        raise ValueError(f"not an owner tag: {text!r}")
    return gone(int(m["pid"]), int(m["start"]))


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
