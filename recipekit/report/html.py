"""matrix.html: a self-contained page from a Jinja2 template (templates/matrix.html), plots inline SVG.

Error plot: one horizontal bar per (cell, output, figure), one panel per unit (tensor |diff|,
pixels, score). A cell that passed shows its parity figures against its reference (PyTorch, or the
source ONNX for an ONNX source); a cell that failed shows, in red, the figures of the gate(s) that
failed it (e.g. webgpu-browser against ONNX Runtime CPU), or says that gate left no figure. The axis
is symmetric-log so an error of exactly zero is drawn as zero. Latency plot: median ms per batch
size per cell (browser runs marked as the SwiftShader software adapter), one distinct colour per
series, the legend below the axes.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from recipekit.report.matrix import Cell, failing_gates

# figure key -> (panel, how it is written)
METRICS = {
    "max_abs": ("tensor |diff|", "max |diff|"),
    "box_px_max": ("pixels", "box px"),
    "keypoints_px_max": ("pixels", "keypoints px"),
    "score_abs_max": ("score", "score |diff|"),
}
PANELS = ("tensor |diff|", "pixels", "score")
# What each comparing gate compares against; parity's reference is the cell's source (Cell.reference).
GATE_REFERENCE = {
    "webgpu-browser": "ONNX Runtime CPU, same file",
    "batch-consistency": "the same artifact, one image at a time",
    "shape-sweep": "the cell's reference at each shape",
}


@dataclass
class Bar:
    label: str
    panel: str
    value: float | None  # None: the gate failed and left no figure
    failed: bool
    reference: str


def gate_reference(c: Cell, gate: str) -> str:
    return c.reference if gate == "parity" else GATE_REFERENCE.get(gate, f"{gate}'s own reference")


def _failing(item: dict[str, Any]) -> bool:
    return bool(item.get("failed_rows")) or item.get("passed") is False


def worst_figures(record: dict[str, Any], only_failing: bool = False) -> dict[str, dict[str, float]]:
    """A gate's worst figure per output (and per browser EP): label -> {figure key: value}.
    `only_failing`: just the outputs (comparison rows) that failed."""
    figs = record.get("figures") or {}
    out: dict[str, dict[str, float]] = {}
    items = [(n, f) for n, f in (figs.get("outputs") or {}).items() if isinstance(f, dict)]
    for row in figs.get("comparisons") or []:  # webgpu-browser: one row per (EP, case, output)
        items.append((f"{row.get('output', '?')} on {row['ep']}" if row.get("ep") else str(row.get("output")), row))
    for label, item in items:
        if only_failing and not _failing(item):
            continue
        seen = out.setdefault(label, {})
        for k in METRICS:
            v = item.get(k)
            if isinstance(v, (int, float)):
                seen[k] = max(seen.get(k, float("-inf")), float(v)) if v == v else float("nan")
    return {k: v for k, v in out.items() if v}


def error_bars(cells: list[Cell]) -> list[Bar]:
    bars = []
    for c in cells:
        failing = failing_gates(c)
        shown = failing or ([("parity", c.gates["parity"])] if "parity" in c.gates else [])
        for gate, record in shown:
            ref, failed = gate_reference(c, gate), bool(failing)
            figs = worst_figures(record, only_failing=failed)
            if failed and not figs:
                why = "; ".join((record.get("failures") or [])[:2]) or record.get("message", "")
                bars.append(Bar(f"{c.recipe}/{c.target} [{gate}]: {why}", "", None, True, ref))
            for output, values in figs.items():
                for key, value in values.items():
                    panel, what = METRICS[key]
                    label = f"{c.recipe}/{c.target}:{output} {what} [{gate} vs {ref}]"
                    bars.append(Bar(label, panel, value, failed, ref))
    return bars


def _svg(fig: Any) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    text = buf.getvalue()
    return text[text.index("<svg") :]


def _fmt(v: float) -> str:
    return "0" if v == 0 else f"{v:.3g}"


def error_plot(bars: list[Bar]) -> Any:
    """The figure (one panel per unit present); None when there is nothing to draw."""
    import matplotlib.pyplot as plt

    panels = [p for p in PANELS if any(b.panel == p for b in bars)]
    if not panels:
        return None
    rows = [[b for b in bars if b.panel == p] for p in panels]
    fig, axes = plt.subplots(
        len(panels),
        1,
        figsize=(9, 0.32 * sum(map(len, rows)) + 1.2 * len(panels)),
        squeeze=False,
        gridspec_kw={"height_ratios": [max(1, len(r)) for r in rows]},
    )
    for ax, panel, group in zip(axes[:, 0], panels, rows, strict=True):
        values = [b.value or 0.0 for b in group]
        ax.barh(range(len(group)), values, color=["#c0392b" if b.failed else "#3a8a5c" for b in group])
        ax.set_yticks(range(len(group)), [b.label for b in group], fontsize=7)
        ax.invert_yaxis()
        positive = [v for v in values if v > 0]
        ax.set_xscale("symlog", linthresh=min(positive) if positive else 1.0)
        ax.set_xlim(0, (max(positive) if positive else 1.0) * 30)
        for i, b in enumerate(group):
            ax.annotate(
                _fmt(b.value or 0.0),
                (b.value or 0.0, i),
                xytext=(3, 0),
                textcoords="offset points",
                va="center",
                fontsize=7,
            )
        refs = sorted({b.reference for b in group})
        against = refs[0] if len(refs) == 1 else "the reference named in each row"
        ax.set_xlabel(f"{panel}: worst error against {against} (symmetric log scale: 0 is drawn as 0)", fontsize=8)
    return fig


def distinct_colours(n: int) -> list[tuple[float, float, float]]:
    """n colours no two alike: tab10 up to 10, else evenly spaced hues in alternating lightness."""
    import colorsys

    if n <= 10:
        import matplotlib

        return [tuple(matplotlib.colormaps["tab10"](i)[:3]) for i in range(n)]
    return [colorsys.hls_to_rgb(i / n, 0.35 if i % 2 else 0.55, 0.75) for i in range(n)]


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


def latency_series(cells: list[Cell]) -> list[tuple[str, list[int], list[float]]]:
    series = []
    for c in cells:
        fig = c.gates.get("latency", {}).get("figures", {})
        per = fig.get("per_batch") or {}
        if per:
            xs = sorted(per, key=int)
            label = f"{c.recipe}/{c.target} ({fig.get('runner', '?')})"
            series.append((label, [int(x) for x in xs], [per[x]["median_ms"] for x in xs]))
        series += _browser_series(c)
    return series


def latency_plot(series: list[tuple[str, list[int], list[float]]]) -> Any:
    if not series:
        return None
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4))
    markers = "osD^vP*Xh<>p"
    for i, ((label, xs, ys), colour) in enumerate(zip(series, distinct_colours(len(series)), strict=True)):
        ax.plot(xs, ys, marker=markers[i % len(markers)], color=colour, label=label)
    ax.set_xticks(sorted({x for _, xs, _ in series for x in xs}))
    ax.set_xlabel("batch size")
    ax.set_ylabel("median latency (ms, log scale)")
    ax.set_yscale("log")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2, frameon=False)
    return fig


def _svg_or_none(fig: Any) -> str | None:
    if fig is None:
        return None
    import matplotlib.pyplot as plt

    svg = _svg(fig)
    plt.close(fig)
    return svg


def int8_placements(cells: list[Cell], rows: int = 10) -> list[dict[str, Any]]:
    """Per published INT8 cell, from its manifest: the sensitivity table's costliest blocks and the search."""
    import json
    from pathlib import Path

    out = []
    for c in cells:
        doc = Path(c.artifact["path"]).parent / "manifest.json" if c.artifact else None
        prec = json.loads(doc.read_text()).get("precision", {}) if doc and doc.is_file() else {}
        table = prec.get("sensitivity") or {}
        if table.get("measured"):
            out.append({"cell": f"{c.recipe}/{c.target}", "table": table, "rows": table["blocks"][:rows], **prec})
    return out


def render(cells: list[Cell], meta: dict[str, Any]) -> str:
    import jinja2
    import matplotlib

    matplotlib.use("Agg")
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("recipekit.report", "templates"), autoescape=True, undefined=jinja2.StrictUndefined
    )
    bars = error_bars(cells)
    plots = [
        ("Worst error per output", _svg_or_none(error_plot(bars))),
        ("Latency per batch size", _svg_or_none(latency_plot(latency_series(cells)))),
    ]
    no_figure = [b for b in bars if b.value is None]
    page = env.get_template("matrix.html")
    return page.render(
        cells=cells, plots=[p for p in plots if p[1]], meta=meta, no_figure=no_figure, int8=int8_placements(cells)
    )
