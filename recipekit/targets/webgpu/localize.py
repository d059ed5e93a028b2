"""The browser as a localization backend (recipekit.onnx.localize): each probe is one job of a running
BrowserSession, so a search costs one Chromium and one onnxruntime-web import, whatever its length."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from recipekit.onnx.localize import Backend, Localization, Tolerance
    from recipekit.targets.webgpu.web.run import BrowserSession


def browser_backend(session: BrowserSession, bundle: str, ep: str = "webgpu", timeout: float = 600.0) -> Backend:
    """Run a (cut) model on `ep` of `bundle` in `session`; its outputs, or the error it stopped with."""
    from recipekit.onnx.localize import Probe

    def run(path: Path, feeds: dict[str, np.ndarray]) -> Probe:
        report = session.run(path, [("probe", feeds)], bundle, (ep,), timeout)
        if report.error:
            return Probe(error=report.error)
        if not report.runs or report.runs[0].error:
            return Probe(error=report.runs[0].error if report.runs else "no session ran")
        case = report.runs[0].cases[0]
        return Probe(case.outputs, case.error)

    return run


def localize_in_browser(
    session: BrowserSession,
    subject: Path,
    feeds: dict[str, np.ndarray],
    bundle: str,
    work: Path,
    reference: Path | None = None,
    suspects: list[str] | None = None,
    error: str = "",
    tol: Tolerance | None = None,
    ep: str = "webgpu",
    max_runs: int = 16,
    timeout: float = 600.0,
) -> Localization:
    """recipekit.onnx.localize.localize with the browser backend (same bundle, EP and Dawn toggles); `timeout`:
    per backend run."""
    from recipekit.onnx.localize import localize

    backend = browser_backend(session, bundle, ep, timeout)
    return localize(subject, feeds, backend, work, reference, suspects, tol=tol, max_runs=max_runs, known_error=error)


def summary(loc: Any) -> str:
    """One line for a gate's failures: the node, its worst element or error, the repro and its verdict."""
    if loc.status != "localized":
        return f"localization: {loc.message} ({loc.runs} backend runs)"
    node = loc.node
    shapes = ", ".join(str(i["shape"]) for i in node["inputs"] if not i["constant"])
    attrs = ", ".join(f"{k}={v}" for k, v in node["attributes"].items() if not isinstance(v, (dict, list)))
    what = node.get("error") or _worst(node.get("worst") or {})
    return (
        f"localized ({loc.runs} backend runs): first disagreeing node {node['node']}"
        + (f" [{attrs}]" if attrs else "")
        + f", inputs {shapes}: {what}; single-node repro {loc.repro} "
        + ("fails alone" if loc.repro_fails else "passes alone")
        + f" ({loc.repro_detail})"
    )


def _worst(w: dict[str, Any]) -> str:
    if not w:
        return "outputs disagree"
    if "reason" in w:
        return f"{w['tensor']}: {w['reason']}"
    return (
        f"worst element {w['tensor']}{w['index']}: ORT CPU {w['ref']:.6g}, browser {w['got']:.6g} "
        f"(|diff| {w['max_err']:.4g} > allowed {w['allowed']:.3g})"
    )
