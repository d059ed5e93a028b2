"""The plots' rules on cells as the gates record them: colours, legend, failed cells without figures."""

from __future__ import annotations

import pytest

from recipekit.report.matrix import Cell


def test_distinct_colours_for_any_number_of_series():
    from recipekit.report.html import distinct_colours

    for n in (1, 3, 10, 12, 40):
        colours = distinct_colours(n)
        assert len({tuple(round(v, 3) for v in c) for c in colours}) == n


def _latency_cell(i: int) -> Cell:
    per = {str(b): {"median_ms": (i + 1) * b * 1.5} for b in (1, 2, 4)}
    return Cell(
        f"r{i}",
        "ort",
        "passed",
        gates={"latency": {"status": "passed", "figures": {"runner": "ort", "per_batch": per}}},
    )


def test_latency_legend_does_not_cover_the_data():
    import matplotlib

    matplotlib.use("Agg")
    from recipekit.report.html import latency_plot, latency_series

    fig = latency_plot(latency_series([_latency_cell(i) for i in range(12)]))
    fig.canvas.draw()
    ax = fig.axes[0]
    legend, area = ax.get_legend().get_window_extent(), ax.get_window_extent()
    assert not legend.overlaps(area)
    assert (
        len(
            {
                tuple(line.get_color()) if not isinstance(line.get_color(), str) else line.get_color()
                for line in ax.get_lines()
            }
        )
        == 12
    )


def test_a_cell_failed_by_a_gate_without_figures_is_listed_as_failed():
    from recipekit.report.html import error_bars

    parity = {"status": "passed", "figures": {"outputs": {"out": {"max_abs": 1e-4, "failed_rows": 0}}}}
    lint = {"status": "failed", "message": "1 problem", "failures": ["Pad: zero-sized input on JSEP"], "figures": {}}
    bars = error_bars([Cell("r", "webgpu", "failed", gates={"parity": parity, "webgpu-lint": lint})])
    assert [(b.value, b.failed) for b in bars] == [(None, True)]
    assert "[webgpu-lint]: Pad: zero-sized input on JSEP" in bars[0].label


@pytest.mark.parametrize(
    ("kind", "reference"), [("onnx", "the source ONNX (ONNX Runtime CPU)"), ("ultralytics", "PyTorch")]
)
def test_reference_follows_the_source(kind, reference):
    from recipekit.report.matrix import source_reference

    assert source_reference([f"m:export:{kind}", "m:fix:chain"]) == reference
