"""Latency on ONNX Runtime's CPU: models timed side by side, and each node's share of a model's time.

`medians` runs every model in one process with the same session options (all graph optimizations,
`threads` intra-op threads, sequential), the same input, warm-up first, then round robin so noise
from other processes hits every model alike. `node_shares` profiles the fp32 model with only the
basic graph optimizations (they keep node names; the fusions of the full level rename them) and
gives each node its fraction of the summed kernel time: the most that quantizing it can save.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np


def threads() -> int:
    """The intra-op threads the gates' runner uses (RECIPEKIT_THREADS, else every core)."""
    return int(os.environ.get("RECIPEKIT_THREADS", "0")) or os.cpu_count() or 1


def session(path: Path, n_threads: int, level: str = "ORT_ENABLE_ALL", profile: str | None = None) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
    opts.intra_op_num_threads, opts.inter_op_num_threads = n_threads, 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3
    if profile:
        opts.enable_profiling, opts.profile_file_prefix = True, profile
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def medians(models: dict[str, Path], x: np.ndarray, runs: int = 15, n_threads: int | None = None) -> dict[str, float]:
    """Median milliseconds per run of each model on input `x`."""
    n = n_threads or threads()
    sessions = {k: session(p, n) for k, p in models.items()}
    feeds = {k: {s.get_inputs()[0].name: x} for k, s in sessions.items()}
    for k, s in sessions.items():
        for _ in range(3):
            s.run(None, feeds[k])
    times: dict[str, list[float]] = {k: [] for k in sessions}
    for _ in range(runs):
        for k, s in sessions.items():
            t0 = time.perf_counter()
            s.run(None, feeds[k])
            times[k].append((time.perf_counter() - t0) * 1000)
    return {k: round(statistics.median(v), 3) for k, v in times.items()}


def node_shares(model: Path, x: np.ndarray, runs: int = 5) -> dict[str, float]:
    """node name -> fraction of the model's summed kernel time (fp32, basic optimizations)."""
    with tempfile.TemporaryDirectory(prefix="recipekit-profile-") as tmp:
        s = session(model, threads(), "ORT_ENABLE_BASIC", profile=str(Path(tmp) / "p"))
        feed = {s.get_inputs()[0].name: x}
        for _ in range(runs + 1):
            s.run(None, feed)
        events = json.loads(Path(s.end_profiling()).read_text())
    per: dict[str, float] = {}
    for e in events:
        name = e.get("name", "")
        if e.get("cat") == "Node" and name.endswith("_kernel_time"):
            node = name[: -len("_kernel_time")]
            per[node] = per.get(node, 0.0) + float(e.get("dur", 0))
    total = sum(per.values()) or 1.0
    return {k: v / total for k, v in per.items()}
