"""Real servers on 127.0.0.1 for the tests: moto's S3 server and a Dask scheduler with workers.

Each is its own process group, started here and always killed here (no process is left behind).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

BIN = Path(sys.executable).parent
S3_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


def start(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    with open(log, "ab") as fh:
        return subprocess.Popen(
            cmd, stdout=fh, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}, start_new_session=True
        )


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    """Stop `proc` and everything it started (its process group); SIGKILL after 10 s."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


@contextlib.contextmanager
def moto_s3(folder: Path) -> Iterator[str]:
    """A moto_server on a free port; yields its endpoint URL (give it as AWS_ENDPOINT_URL)."""
    port = free_port()
    proc = start([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], folder / "moto.log")
    try:
        wait_port(port, proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)


class DaskCluster:
    """A `dask scheduler` and `dask worker` processes, each worker with its own cache folder."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self.folder, self.env = folder, env
        self.port = free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.scheduler: subprocess.Popen | None = None
        self.workers: dict[str, subprocess.Popen] = {}

    def start_scheduler(self) -> None:
        cmd = [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(self.port), "--no-dashboard"]
        self.scheduler = start(cmd, self.folder / "scheduler.log", self.env)
        wait_port(self.port, self.scheduler)

    def start_worker(self, name: str, resources: str | None = None) -> None:
        cache = self.folder / f"cache-{name}"
        cmd = [
            str(BIN / "dask"),
            "worker",
            self.address,
            "--host",
            "127.0.0.1",
            "--nthreads",
            "1",
            "--no-dashboard",
            "--name",
            name,
            "--no-nanny",
        ]
        if resources:
            cmd += ["--resources", resources]
        env = {**self.env, "RECIPEKIT_CACHE": str(cache), "RECIPEKIT_THREADS": "1"}
        self.workers[name] = start(cmd, self.folder / f"worker-{name}.log", env)

    def wait_workers(self, n: int, timeout: float = 90.0) -> None:
        from distributed import Client

        with Client(self.address, timeout=30) as client:
            client.wait_for_workers(n, timeout=timeout)

    def kill_worker(self, name: str, timeout: float = 30.0) -> None:
        """SIGKILL worker `name`, then wait until the scheduler has noticed it is gone."""
        from distributed import Client

        stop(self.workers.pop(name), signal.SIGKILL)
        with Client(self.address, timeout=30) as client:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                names = {w.get("name") for w in client.scheduler_info(n_workers=-1)["workers"].values()}
                if name not in names:
                    return
                time.sleep(0.2)

    def close(self) -> None:
        for proc in self.workers.values():
            stop(proc)
        if self.scheduler:
            stop(self.scheduler)
