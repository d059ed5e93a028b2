"""The processes of a build under test: every one carries RECIPEKIT_TEST_TAG=<tag> in its environment
(children inherit it), so a test finds them all, also those reparented after their parent died."""

from __future__ import annotations

import os
import signal
import subprocess
import time

TAG = "RECIPEKIT_TEST_TAG"


def tagged(tag: str) -> list[int]:
    """The live processes carrying `tag`."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as fh:
                if f"{TAG}={tag}".encode() in fh.read().split(b"\0"):
                    out.append(int(entry))
        except OSError:
            continue
    return out


def left_after(tag: str, seconds: float) -> list[int]:
    """The processes carrying `tag` still there after up to `seconds`; SIGKILLed (never left to the next test)."""
    deadline = time.monotonic() + seconds
    while tagged(tag) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = tagged(tag)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return left


def ended(proc: subprocess.Popen, seconds: float) -> tuple[str, str] | None:
    """`proc`'s (stdout, stderr) if it ends within `seconds`, else None (its process group SIGKILLed)."""
    try:
        out, err = proc.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return None
    return _text(out), _text(err)


def _text(data: str | bytes | None) -> str:
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else data or ""
