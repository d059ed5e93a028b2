"""Browser runs: serve models and their inputs on 127.0.0.1, let one Chromium page run them in
onnxruntime-web job after job, collect each POSTed report, and always tear everything down.

`BrowserSession` keeps one Chromium and one page (onnxruntime-web imported once, its wasm compiled
once) for every job of one bundle: the gate's cases, then a localization's probes. `run_in_browser`
is the one-job form.
"""

from __future__ import annotations

import base64
import json
import os
import re
import tempfile
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recipekit.core.errors import Unavailable
from recipekit.targets.webgpu.web.chromium import Chromium, chromium_version, find_chromium, sigterm_as_interrupt
from recipekit.targets.webgpu.web.gpucache import GpuCache
from recipekit.targets.webgpu.web.ortweb import BUNDLES, OrtWeb, find_ortweb
from recipekit.targets.webgpu.web.server import LoopbackServer

if TYPE_CHECKING:
    import numpy as np

DTYPES = {
    "float32": "float32",
    "float16": "float16",
    "int64": "int64",
    "int32": "int32",
    "uint8": "uint8",
    "bool": "bool",
}
PLACED = re.compile(r"(?:All nodes|Node\(s\)) placed on \[(\w+)\]\. Number of nodes: (\d+)")
NO_KERNEL = re.compile(r"kernel not found in registries for Op type: (\w+) node name: (.*)$")


@dataclass
class CaseRun:
    name: str
    outputs: dict[str, np.ndarray] = field(default_factory=dict)
    error: str = ""
    run_ms: float | None = None


@dataclass
class EpRun:
    """One execution provider's session: its error, per-case results and its node placement."""

    ep: str
    error: str = ""
    create_ms: float | None = None
    cases: list[CaseRun] = field(default_factory=list)
    placement: dict[str, list[str]] = field(default_factory=dict)
    no_kernel: list[str] = field(default_factory=list)  # nodes ORT left to the CPU for want of a kernel


@dataclass
class BrowserReport:
    ort_version: str
    bundle: str
    adapter: dict[str, Any]
    runs: list[EpRun]
    error: str = ""
    seconds: float = 0.0
    console: list[str] = field(default_factory=list)


def require_tools() -> tuple[str, OrtWeb]:
    """Chromium and the pinned onnxruntime-web, or Unavailable naming exactly what is missing."""
    chromium, why = find_chromium()
    ortweb, why_ort = find_ortweb()
    reasons = [r for r in (why, why_ort) if r]
    if reasons:
        raise Unavailable("; ".join(reasons))
    return chromium, ortweb  # type: ignore[return-value]


class BrowserSession:
    """One headless Chromium page running jobs one after another; use as a context manager.

    `cache_root`: where Chromium's GPU caches are kept between runs (gpucache.py); None keeps none.
    `dawn_features`: Dawn toggles to enable (Chromium's --enable-dawn-features), e.g. the gate's fast ones."""

    def __init__(self, cache_root: Path | None = None, dawn_features: tuple[str, ...] = ()) -> None:
        self.chromium, self.ortweb = require_tools()
        self.cache = GpuCache(cache_root, chromium_version()) if cache_root is not None else None
        self.flags = dawn_flags(dawn_features) + extra_flags()
        self._jobs = 0
        self._stack: list[Any] = []

    def __enter__(self) -> BrowserSession:
        assets = resources.files("recipekit.targets.webgpu.web") / "assets"
        self.tmp = Path(tempfile.mkdtemp(prefix=f"recipekit-web-{os.getpid()}-"))  # swept if SIGKILLed
        files = {"/runner.html": Path(str(assets / "runner.html")), "/runner.js": Path(str(assets / "runner.js"))}
        port = self.cache.preferred_port() if self.cache else 0
        try:
            self._stack.append(sigterm_as_interrupt())
            self._stack[-1].__enter__()
            self.server = LoopbackServer(files, {"/ort/": self.ortweb.dist}, port).__enter__()
            self._stack.append(self.server)
            self.browser = Chromium(self.chromium, f"{self.server.url}/runner.html", self.flags, self.cache)
            self._stack.append(self.browser)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, kind: object = None, *exc: object) -> None:
        """Our folder first (it is ours alone), then Chromium (at once when interrupted), the server."""
        import shutil

        shutil.rmtree(self.tmp, ignore_errors=True)
        while self._stack:
            self._stack.pop().__exit__(kind, None, None)

    def run(
        self,
        model: Path,
        cases: list[tuple[str, dict[str, np.ndarray]]],
        bundle: str,
        eps: tuple[str, ...] = ("webgpu", "wasm"),
        timeout: float = 180.0,
    ) -> BrowserReport:
        """Run `model` on every case with every EP; a report always comes back (errors inside it)."""
        start = time.monotonic()
        self._jobs += 1
        job = _stage(self.tmp, self._jobs, model, cases, bundle, eps, timeout, self.server)
        self.server.inbox.queue(job)
        raw = _wait(self.server, self.browser, timeout, job["id"])
        report = _decode(raw, self.ortweb.version, bundle)
        report.seconds = time.monotonic() - start
        return report


def run_in_browser(
    model: Path,
    cases: list[tuple[str, dict[str, np.ndarray]]],
    bundle: str,
    eps: tuple[str, ...] = ("webgpu", "wasm"),
    timeout: float = 180.0,
    cache_root: Path | None = None,
    dawn_features: tuple[str, ...] = (),
) -> BrowserReport:
    """Run `model` on every case with every EP in one headless Chromium page; never leaves processes behind."""
    start = time.monotonic()
    with BrowserSession(cache_root, dawn_features) as session:
        report = session.run(model, cases, bundle, eps, timeout)
    report.seconds = time.monotonic() - start
    return report


def dawn_flags(features: tuple[str, ...]) -> tuple[str, ...]:
    return (f"--enable-dawn-features={','.join(features)}",) if features else ()


def extra_flags() -> tuple[str, ...]:
    """More Chromium flags from RECIPEKIT_CHROMIUM_FLAGS (space-separated), e.g. Dawn toggles."""
    return tuple(os.environ.get("RECIPEKIT_CHROMIUM_FLAGS", "").split())


def _stage(
    tmp: Path, n: int, model: Path, cases: list, bundle: str, eps: tuple[str, ...], timeout: float, server: Any
) -> dict[str, Any]:
    """Write inputs as raw little-endian bytes, serve them and the model under /files/<n>/; the job."""
    folder = tmp / str(n)
    folder.mkdir()
    base = f"/files/{n}"
    server.files[f"{base}/model.onnx"] = model
    external = _external_data(model)
    server.files.update({f"{base}/{rel}": model.parent / rel for rel in external})
    job_cases = []
    for i, (name, feeds) in enumerate(cases):
        job_feeds = {}
        for j, (input_name, arr) in enumerate(feeds.items()):
            path = folder / f"c{i}_{j}.bin"
            path.write_bytes(arr.astype(arr.dtype.newbyteorder("<")).tobytes())
            server.files[f"{base}/{path.name}"] = path
            job_feeds[input_name] = {"url": f"{base}/{path.name}", "dims": list(arr.shape), "type": str(arr.dtype)}
        job_cases.append({"name": name, "feeds": job_feeds})
    return {
        "id": n,
        "ort": f"/ort/{BUNDLES[bundle][0]}",
        "wasm_paths": "/ort/",
        "model": f"{base}/model.onnx",
        "external_data": [{"path": rel, "data": f"{base}/{rel}"} for rel in external],
        "eps": list(eps),
        "cases": job_cases,
        "timeout_ms": int(timeout * 1000),
        "ep_options": json.loads(os.environ.get("RECIPEKIT_EP_OPTIONS", "{}")),
    }


def _external_data(model: Path) -> list[str]:
    """The model's external data files (relative names): onnxruntime-web takes them as session options."""
    from recipekit.onnx.external import data_files

    return [p.relative_to(model.parent).as_posix() for p in data_files(model)]


def _wait(server: LoopbackServer, browser: Chromium, timeout: float, job: int) -> dict[str, Any]:
    """The page's report for `job`; an error report if Chromium exits or the time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = server.inbox.wait(0.25, job)
        if got is not None:
            return got
        if not browser.alive():
            return {
                "error": f"Chromium exited with code {browser.proc.returncode} before the page "
                f"reported:\n{browser.log_tail()}"
            }
    mine = [p for p in server.inbox.progress if p.startswith(f"{job} ")]
    last = mine[-1].split(" ", 1)[1] if mine else "page never reported progress"
    return {
        "error": f"no report from the page within {timeout:.0f} s (last step: {last}); Chromium "
        f"said:\n{browser.log_tail(2000)}"
    }


def _decode(raw: dict[str, Any], version: str, bundle: str) -> BrowserReport:
    lines = [str(x) for x in raw.get("console", [])]
    runs = [_decode_run(r, lines) for r in raw.get("runs", [])]
    return BrowserReport(
        ort_version=raw.get("ort_version") or version,
        bundle=bundle,
        adapter=raw.get("adapter", {}),
        runs=runs,
        error=str(raw.get("error", "")),
        console=lines,
    )


def _decode_run(r: dict[str, Any], lines: list[str]) -> EpRun:
    run = EpRun(
        ep=r["ep"],
        error=str(r.get("error", "")),
        create_ms=r.get("create_ms"),
        placement=placement(lines, r["ep"]),
        no_kernel=no_kernel(lines, r["ep"]),
    )
    for c in r.get("cases", []):
        outs = {name: _array(o) for name, o in (c.get("outputs") or {}).items()}
        run.cases.append(CaseRun(c["name"], outs, str(c.get("error", "")), c.get("run_ms")))
    return run


def _array(o: dict[str, Any]) -> np.ndarray:
    import numpy as np

    dtype = np.dtype(DTYPES.get(o["type"], o["type"])).newbyteorder("<")
    return np.frombuffer(base64.b64decode(o["data"]), dtype=dtype).reshape(o["dims"]).astype(dtype.newbyteorder("="))


def _session_lines(lines: list[str], ep: str) -> list[str]:
    """The log lines of `ep`'s session creation (between the page's begin and end markers)."""
    begin, end = f"[recipekit] session {ep} begin", f"[recipekit] session {ep} end"
    inside, out = False, []
    for line in lines:
        if line.startswith(begin):
            inside, out = True, []
        elif line.startswith(end):
            break
        elif inside:
            out.append(line)
    return out


def placement(lines: list[str], ep: str) -> dict[str, list[str]]:
    """ORT's verbose node placement for `ep`'s session: provider -> ["OpType (node name)", ...] (an empty
    list where ORT only logs that all N nodes went to one provider)."""
    current, out = None, {}
    for line in _session_lines(lines, ep):
        m = PLACED.search(line)
        if m:
            current = m.group(1)
            out.setdefault(current, [])
        elif current and re.search(r"\]\s+\S+ \(.*\)\s*$", line):
            out[current].append(line.rsplit("]", 1)[-1].strip())
        else:
            current = None
    return out


def no_kernel(lines: list[str], ep: str) -> list[str]:
    """The nodes `ep` has no kernel for ("OpType (node name)"), from ORT's "kernel not found in registries"
    lines: what webgpu-lint's CPU fallbacks predict (ORT also keeps small shape computations on the CPU)."""
    out: list[str] = []
    for line in _session_lines(lines, ep):
        gap = NO_KERNEL.search(line)
        if gap and f"{gap.group(1)} ({gap.group(2).strip()})" not in out:
            out.append(f"{gap.group(1)} ({gap.group(2).strip()})")
    return out
