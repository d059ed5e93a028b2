"""Reports for CI systems: JUnit XML (one test case per recipe/target cell) and a Markdown step summary.

JUnit: a cell that passed is a plain test case; failed -> <failure> whose message is the failing
gate's own message (its failures in the body); error -> <error>; unavailable, unverified and n/a ->
<skipped> with the reason (the build could not check it here, which is not a pass).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from recipekit.report.matrix import Cell, failing_gates, to_markdown

SKIPPED = {"unavailable", "unverified", "n/a"}


def junit_xml(cells: list[Cell], suite: str) -> str:
    root = ET.Element("testsuites", name=suite)
    ts = ET.SubElement(
        root,
        "testsuite",
        name=suite,
        tests=str(len(cells)),
        failures=str(sum(c.status == "failed" for c in cells)),
        errors=str(sum(c.status == "error" for c in cells)),
        skipped=str(sum(c.status in SKIPPED for c in cells)),
        time=f"{sum(c.seconds for c in cells):.3f}",
    )
    for c in cells:
        case = ET.SubElement(ts, "testcase", classname=c.recipe, name=c.target, time=f"{c.seconds:.3f}")
        if c.status == "failed":
            gates = failing_gates(c)
            message = "; ".join(f"{name}: {g.get('message') or 'failed'}" for name, g in gates) or c.reason
            body = "\n".join(f"{name}: {f}" for name, g in gates for f in g.get("failures") or []) or c.reason
            ET.SubElement(case, "failure", message=message, type="gate").text = body
        elif c.status == "error":
            ET.SubElement(case, "error", message=c.reason.splitlines()[0] if c.reason else "error").text = c.reason
        elif c.status in SKIPPED:
            ET.SubElement(case, "skipped", message=f"{c.status}: {c.reason}")
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(path: Path, cells: list[Cell], suite: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(junit_xml(cells, suite), encoding="utf-8")


def step_summary(cells: list[Cell], title: str) -> str:
    counts: dict[str, int] = {}
    for c in cells:
        counts[c.status] = counts.get(c.status, 0) + 1
    tally = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    return f"## {title}\n\n{tally}\n\n{to_markdown(cells)}\n"


def append_step_summary(path: Path, cells: list[Cell], title: str) -> None:
    """GitHub Actions shows what is appended to $GITHUB_STEP_SUMMARY on the run's page."""
    with path.open("a", encoding="utf-8") as f:
        f.write(step_summary(cells, title))
