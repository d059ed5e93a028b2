"""One browser run: serve a model and its inputs on 127.0.0.1, let Chromium's page run them in
onnxruntime-web, collect the POSTed report, and always tear both down."""

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
PLACED = re.compile(r"Node\(s\) placed on \[(\w+)\]\. Number of nodes: (\d+)")


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


def run_in_browser(
    model: Path,
    cases: list[tuple[str, dict[str, np.ndarray]]],
    bundle: str,
    eps: tuple[str, ...] = ("webgpu", "wasm"),
    timeout: float = 180.0,
    cache_root: Path | None = None,
    dawn_features: tuple[str, ...] = (),
) -> BrowserReport:
    """Run `model` on every case with every EP in one headless Chromium page; never leaves processes behind.

    `cache_root`: where Chromium's GPU caches are kept between runs (gpucache.py); None keeps none.
    `dawn_features`: Dawn toggles to enable (Chromium's --enable-dawn-features), e.g. the gate's fast ones."""
    chromium, ortweb = require_tools()
    cache = GpuCache(cache_root, chromium_version()) if cache_root is not None else None
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"recipekit-web-{os.getpid()}-") as tmp:  # swept if SIGKILLed
        files = _stage(Path(tmp), model, cases, bundle, eps, ortweb, timeout)
        with (
            sigterm_as_interrupt(),
            LoopbackServer(files, {"/ort/": ortweb.dist}, cache.preferred_port() if cache else 0) as server,
            Chromium(
                chromium, f"{server.url}/runner.html", dawn_flags(dawn_features) + extra_flags(), cache
            ) as browser,
        ):
            raw = _wait(server, browser, timeout)
    report = _decode(raw, ortweb.version, bundle)
    report.seconds = time.monotonic() - start
    return report


def dawn_flags(features: tuple[str, ...]) -> tuple[str, ...]:
    return (f"--enable-dawn-features={','.join(features)}",) if features else ()


def extra_flags() -> tuple[str, ...]:
    """More Chromium flags from RECIPEKIT_CHROMIUM_FLAGS (space-separated), e.g. Dawn toggles."""
    return tuple(os.environ.get("RECIPEKIT_CHROMIUM_FLAGS", "").split())


def _stage(
    tmp: Path, model: Path, cases: list, bundle: str, eps: tuple[str, ...], ortweb: OrtWeb, timeout: float
) -> dict[str, Path]:
    """Write inputs as raw little-endian bytes and the job description; return the URL map."""
    assets = resources.files("recipekit.targets.webgpu.web") / "assets"
    files = {
        "/runner.html": Path(str(assets / "runner.html")),
        "/runner.js": Path(str(assets / "runner.js")),
        "/files/model.onnx": model,
    }
    external = _external_data(model)
    files.update({f"/files/{rel}": model.parent / rel for rel in external})
    job_cases = []
    for i, (name, feeds) in enumerate(cases):
        job_feeds = {}
        for j, (input_name, arr) in enumerate(feeds.items()):
            path = tmp / f"c{i}_{j}.bin"
            path.write_bytes(arr.astype(arr.dtype.newbyteorder("<")).tobytes())
            files[f"/files/{path.name}"] = path
            job_feeds[input_name] = {"url": f"/files/{path.name}", "dims": list(arr.shape), "type": str(arr.dtype)}
        job_cases.append({"name": name, "feeds": job_feeds})
    job = {
        "ort": f"/ort/{BUNDLES[bundle][0]}",
        "wasm_paths": "/ort/",
        "model": "/files/model.onnx",
        "external_data": [{"path": rel, "data": f"/files/{rel}"} for rel in external],
        "eps": list(eps),
        "cases": job_cases,
        "timeout_ms": int(timeout * 1000),
    }
    (tmp / "job.json").write_text(json.dumps(job))
    files["/job.json"] = tmp / "job.json"
    return files


def _external_data(model: Path) -> list[str]:
    """The model's external data files (relative names): onnxruntime-web takes them as session options."""
    from recipekit.onnx.external import data_files

    return [p.relative_to(model.parent).as_posix() for p in data_files(model)]


def _wait(server: LoopbackServer, browser: Chromium, timeout: float) -> dict[str, Any]:
    """The page's report; an error report if Chromium exits or the time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = server.inbox.wait(0.25)
        if got is not None:
            return got
        if not browser.alive():
            return {
                "error": f"Chromium exited with code {browser.proc.returncode} before the page "
                f"reported:\n{browser.log_tail()}"
            }
    last = server.inbox.progress[-1] if server.inbox.progress else "page never reported progress"
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
        ep=r["ep"], error=str(r.get("error", "")), create_ms=r.get("create_ms"), placement=placement(lines, r["ep"])
    )
    for c in r.get("cases", []):
        outs = {name: _array(o) for name, o in (c.get("outputs") or {}).items()}
        run.cases.append(CaseRun(c["name"], outs, str(c.get("error", "")), c.get("run_ms")))
    return run


def _array(o: dict[str, Any]) -> np.ndarray:
    import numpy as np

    dtype = np.dtype(DTYPES.get(o["type"], o["type"])).newbyteorder("<")
    return np.frombuffer(base64.b64decode(o["data"]), dtype=dtype).reshape(o["dims"]).astype(dtype.newbyteorder("="))


def placement(lines: list[str], ep: str) -> dict[str, list[str]]:
    """ORT's verbose node placement for `ep`'s session: provider -> ["OpType (node name)", ...]."""
    begin, end = f"[recipekit] session {ep} begin", f"[recipekit] session {ep} end"
    inside, current, out = False, None, {}
    for line in lines:
        if line.startswith(begin):
            inside, out = True, {}
        elif line.startswith(end):
            break
        elif inside:
            m = PLACED.search(line)
            if m:
                current = m.group(1)
                out.setdefault(current, [])
            elif current and re.search(r"\]\s+\S+ \(.*\)\s*$", line):
                out[current].append(line.rsplit("]", 1)[-1].strip())
            else:
                current = None
    return out
