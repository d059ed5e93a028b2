"""A self-contained matrix.html: the table, and plots drawn with matplotlib as inline SVG.

Plots: worst parity error per output (one bar per cell and output), and latency per batch size
per target from the `latency` gate. Browser timings of a WebGPU run are marked as a software
adapter (SwiftShader): they say nothing about a real GPU.
"""

from __future__ import annotations

import html
import io
from typing import Any

from recipekit.report.matrix import Cell

STYLE = (
    "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px}"
    ".passed{background:#dfd}.failed,.error{background:#fdd}.unavailable,.n\\/a{background:#eee}"
)


def _svg(fig: Any) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    text = buf.getvalue()
    return text[text.index("<svg") :]


PARITY_METRICS = (("max_abs", "max |diff|"), ("box_px_max", "box px"), ("keypoints_px_max", "keypoints px"))


def parity_bars(cells: list[Cell]) -> list[tuple[str, float]]:
    """(label, worst error) per cell, output and metric: tensors' max |diff|, detections' pixels."""
    bars = []
    for c in cells:
        for out, fig in (c.gates.get("parity", {}).get("figures", {}).get("outputs", {}) or {}).items():
            for key, unit in PARITY_METRICS:
                value = fig.get(key) if isinstance(fig, dict) else None
                if isinstance(value, (int, float)):
                    bars.append((f"{c.recipe}/{c.target}:{out} ({unit})", float(value)))
    return bars


def parity_plot(cells: list[Cell]) -> str | None:
    bars = parity_bars(cells)
    if not bars:
        return None
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 0.3 * len(bars) + 1))
    ax.barh([b[0] for b in bars], [max(b[1], 1e-9) for b in bars], color="#4a7")
    ax.set_xscale("log")
    ax.set_xlabel("parity: worst error of the artifact against PyTorch (tensors: |diff|; detections: pixels)")
    ax.tick_params(axis="y", labelsize=7)
    svg = _svg(fig)
    plt.close(fig)
    return svg


def _browser_series(c: Cell) -> list[tuple[str, list[int], list[float]]]:
    """Batch-1 run times the webgpu-browser gate measured, per EP (first real image)."""
    fig = c.gates.get("webgpu-browser", {}).get("figures", {})
    out = []
    for ep, runs in (fig.get("timings_ms") or {}).items():
        times = [v for k, v in runs.items() if k != "create" and isinstance(v, (int, float))]
        if times:
            adapter = "SwiftShader software adapter" if ep == "webgpu" else "wasm"
            out.append((f"{c.recipe}/{c.target} browser {ep} ({adapter})", [1], [min(times)]))
    return out


def latency_plot(cells: list[Cell]) -> str | None:
    series = []
    for c in cells:
        fig = c.gates.get("latency", {}).get("figures", {})
        per = fig.get("per_batch") or {}
        if per:
            xs = sorted(per, key=int)
            series.append(
                (
                    f"{c.recipe}/{c.target} ({fig.get('runner', '?')})",
                    [int(x) for x in xs],
                    [per[x]["median_ms"] for x in xs],
                )
            )
        series += _browser_series(c)
    if not series:
        return None
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    for label, xs, ys in series:
        ax.plot(xs, ys, marker="o", label=label)
    ax.set_xlabel("batch size")
    ax.set_ylabel("median latency (ms, log scale)")
    ax.set_yscale("log")
    ax.legend(fontsize=7)
    svg = _svg(fig)
    plt.close(fig)
    return svg


def render(cells: list[Cell], meta: dict[str, Any]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    rows = "".join(
        f"<tr class='{html.escape(c.status)}'><td>{html.escape(c.recipe)}</td><td>{html.escape(c.target)}</td>"
        f"<td>{html.escape(c.status)}</td><td>{c.seconds:.1f} s</td><td>{'cached' if c.cached else 'built'}</td>"
        f"<td>{html.escape(c.reason)}</td></tr>"
        for c in cells
    )
    plots = [("Parity error per output", parity_plot(cells)), ("Latency per batch size", latency_plot(cells))]
    figs = "".join(f"<h2>{t}</h2><div class='plot'>{svg}</div>" for t, svg in plots if svg)
    head = f"<title>recipekit matrix</title><style>{STYLE}</style>"
    info = html.escape(
        f"targets: {', '.join(meta.get('targets', []))}; overrides: {' '.join(meta.get('overrides', [])) or 'none'}"
    )
    table = (
        "<table id='matrix'><tr><th>recipe</th><th>target</th><th>status</th><th>time</th><th>cache</th><th>why</th></tr>"
        + rows
        + "</table>"
    )
    return f"<!doctype html><html><head><meta charset='utf-8'>{head}</head><body><h1>recipekit matrix</h1><p>{info}</p>{table}{figs}</body></html>\n"
