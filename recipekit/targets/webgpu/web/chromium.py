"""Headless Chromium as a child process that always goes away: on success, error, Ctrl-C or SIGTERM.

Chromium runs in its own process group (it forks a zygote, GPU and renderer processes), so closing
it signals that group, the ids this module started, and nothing else. Everything Chromium writes
lives in one folder of ours, `recipekit-chromium-<pid>-*`: the fresh profile (runs stay independent),
its log, and its TMPDIR, where Chromium would otherwise leave `org.chromium.Chromium.XXXXXX`
(SingletonSocket, SingletonCookie) behind in the user's $TMPDIR on every run. The folder is deleted on
close, whether the run passed, failed or was interrupted (after the GPU caches are kept, see
gpucache.py); the next build sweeps it if this process was SIGKILLed (core/lifetime.py).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from recipekit.core.lifetime import make_tempdir, preexec_die_with_parent
from recipekit.targets.webgpu.web.gpucache import GpuCache

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "chrome")
# Flags measured on this machine: WebGPU on SwiftShader headless; no background connections (the
# closed network refuses them, many at a time, and that slows start-up).
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--enable-unsafe-webgpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--mute-audio",
    "--no-default-browser-check",
)


def find_chromium() -> tuple[str | None, str]:
    """The Chromium executable (RECIPEKIT_CHROMIUM, else PATH), or None with the exact reason."""
    env = os.environ.get("RECIPEKIT_CHROMIUM")
    if env:
        return (env, "") if os.access(env, os.X_OK) else (None, f"RECIPEKIT_CHROMIUM={env} is not an executable file")
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found, ""
    return (
        None,
        "Chromium is not installed (no chromium on PATH): run scripts/install-web.sh (apt-get install chromium)",
    )


class Chromium:
    """One headless Chromium showing one URL. Use as a context manager; `close` is idempotent."""

    def __init__(
        self, executable: str, url: str, extra_flags: tuple[str, ...] = (), cache: GpuCache | None = None
    ) -> None:
        self._lock = threading.Lock()
        self.root = make_tempdir("chromium")  # swept by the next build if this process is SIGKILLed
        self.tmp = self.root / "t"
        self.proc: subprocess.Popen | None = None
        self.cache = cache
        atexit.register(self.close)  # from here on, whatever interrupts the start, close removes it all
        try:
            self.profile = self.root / "profile"
            self.profile.mkdir()
            self.tmp = _singleton_dir(self.root)
            if cache is not None:
                cache.seed(self.profile)
            self._log = open(self.root / "chromium.log", "w+b")  # noqa: SIM115
            args = [executable, *FLAGS, *extra_flags, f"--user-data-dir={self.profile}", url]
            self.proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "TMPDIR": str(self.tmp)},  # its singleton socket folder and temp files stay ours
                start_new_session=True,  # Ctrl-C reaches the build, which closes Chromium in order
                preexec_fn=preexec_die_with_parent,  # SIGKILL of the build kills Chromium (and so its helpers)
            )
        except BaseException:  # Ctrl-C while starting: nothing half-started is left
            self.close()
            raise

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, limit: int = 4000) -> str:
        """The end of Chromium's own output (for error messages)."""
        self._log.flush()
        self._log.seek(0)
        return self._log.read().decode("utf-8", "replace")[-limit:]

    def close(self, hurry: bool = False) -> None:
        """SIGTERM Chromium's process group, SIGKILL it after 5 s (at once when `hurry`: an interrupted build
        has a few seconds to clean up), and delete its folder (profile, log, TMPDIR)."""
        with self._lock:
            try:
                if self.proc is not None:
                    self._stop(hurry)
                    if self.cache is not None and self.profile.is_dir():
                        self.cache.keep(self.profile)
            finally:  # a second Ctrl-C while stopping still leaves nothing behind
                log = getattr(self, "_log", None)
                if log is not None and not log.closed:
                    log.close()
                shutil.rmtree(self.root, ignore_errors=True)
                shutil.rmtree(self.tmp, ignore_errors=True)
        atexit.unregister(self.close)

    def _stop(self, hurry: bool) -> None:
        if self.proc.returncode is None and not hurry:
            _signal_group(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                _signal_group(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        _signal_group(self.proc.pid, signal.SIGKILL)  # helpers that outlived the browser process
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)  # reaped: no zombie left in the group
        _wait_group_gone(self.proc.pid, 5.0)

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, kind: object, *exc: object) -> None:
        self.close(hurry=kind is not None)


SOCKET_PATH_MAX = 107  # sun_path: Chromium aborts ("Socket path too long") when its singleton socket's is longer


def _singleton_dir(root: Path) -> Path:
    """Chromium's TMPDIR: `root`/t, where it puts org.chromium.Chromium.XXXXXX/SingletonSocket. Where that
    path would not fit a Unix socket address (a long $TMPDIR), a folder of the same name pattern in /tmp
    instead (deleted on close like the rest; the next build's sweep only looks in $TMPDIR)."""
    import tempfile

    tmp = root / "t"
    if len(str(tmp)) + len("/org.chromium.Chromium.XXXXXX/SingletonSocket") > SOCKET_PATH_MAX:
        return Path(tempfile.mkdtemp(prefix=f"recipekit-chromium-{os.getpid()}-", dir="/tmp"))
    tmp.mkdir()
    return tmp


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _wait_group_gone(pgid: int, timeout: float) -> None:
    """Wait until every process of the group has exited and been reaped (they were sent SIGKILL)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(0.05)


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While inside, SIGTERM raises KeyboardInterrupt (main thread only), so `with` blocks clean up.

    A handler already in place (a build's, see core/lifetime.py: it also bounds the cleanup) is kept."""
    installed = signal.getsignal(signal.SIGTERM)
    if threading.current_thread() is not threading.main_thread() or callable(installed):
        yield
        return

    def _raise(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def chromium_version() -> str | None:
    """`chromium --version`, remembered per executable (path, size, mtime): a no-op build runs nothing.

    The memo lives in the user's cache folder ($XDG_CACHE_HOME/recipekit, else ~/.cache/recipekit), not in
    $TMPDIR, which a build leaves as it found it."""
    import json
    import subprocess

    exe, _ = find_chromium()
    if exe is None:
        return None
    st = os.stat(exe)
    memo = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "recipekit" / "chromium-version.json"
    ident = f"{os.path.realpath(exe)}:{st.st_size}:{st.st_mtime_ns}"
    try:
        known = json.loads(memo.read_text())
        if known.get("ident") == ident:
            return known["version"]
    except (OSError, ValueError):
        pass
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30, check=False).stdout.strip()
    with contextlib.suppress(OSError):  # an unwritable home only costs the next build a `--version`
        memo.parent.mkdir(parents=True, exist_ok=True)
        memo.write_text(json.dumps({"ident": ident, "version": out}))
    return out
