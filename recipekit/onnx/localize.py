"""Localization: the first node whose output makes a backend disagree with ONNX Runtime on the CPU.

A tool, not a gate. The webgpu-browser gate calls it when a browser run disagrees with ORT CPU,
`recipekit localize` runs it on any artifact, and any runtime can use it: a *backend* is a function
that runs an ONNX file on named inputs and returns its outputs, or the error text (the browser's EPs
here; TensorRT's device check and INT8 sensitivity later).

How, for one input case:
1. ORT CPU runs the reference model once with every tensor exposed (the reference values).
2. The backend runs the subject; its outputs are compared with the reference values.
3. Value disagreement: the tensors on the failing output's ancestry, in topological order, are exposed
   `chunk` at a time (each backend run cut to the ancestors of its probes), evenly spaced between the
   last tensor known to agree and the first known to disagree, so each run shrinks the interval by
   chunk + 1. The candidate is confirmed by one more run exposing its inputs and outputs: every input
   agrees and an output does not. A disagreeing input restarts the search from that input.
4. Run error: ORT names the kernel that failed (`[WebGPU] Kernel "[Pad] /Pad" failed`); without a
   name, graphs cut after the first k nodes are run, halving k's interval until the first failing node.
5. The node is named (op type, attributes, input shapes, worst element with both values) and cut out
   as a single-node model with its inputs (ONNX test-data layout: model.onnx + test_data_set_0/
   input_N.pb, output_N.pb hold the reference outputs) and run alone on the backend: `repro_fails`
   says whether the defect shows without the rest of the graph.

Intermediate tensors have no declared units, so each is compared in its own scale: an element
disagrees when |got - ref| > atol + rtol * |ref|, atol = scale * max|ref| (the tensor's range); NaN
disagrees; integer and bool tensors must be equal; a different shape disagrees.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

from recipekit.onnx.cut import Graph

# How ORT names the node a run failed in: JSEP ('Kernel "[Pad] /Pad" failed') and every other EP
# ("Non-zero status code returned while running Softmax node. Name:'/roi_heads/Softmax'").
KERNEL_FAILED = re.compile(r'Kernel "\[(\w+)\] ([^"]+)" failed|running (\w+) node\. Name:\'([^\']+)\'')


@dataclass
class Probe:
    """One backend run: the outputs it returned by name, or the error that stopped it."""

    outputs: dict[str, Any] = field(default_factory=dict)
    error: str = ""


Backend = Callable[[Path, dict[str, "np.ndarray"]], Probe]


@dataclass(frozen=True)
class Tolerance:
    """Element-wise rule for tensors without declared units (see the module docstring)."""

    rtol: float = 1e-3
    scale: float = 1e-3
    floor: float = 1e-6

    def check(self, ref: np.ndarray, got: Any) -> dict[str, Any]:
        """{"ok", "max_err", "allowed", "index", "ref", "got"} (the worst element), or a shape/NaN reason."""
        import numpy as np

        got = np.asarray(got)
        if got.shape != ref.shape:
            return {"ok": False, "reason": f"shape {list(got.shape)} instead of {list(ref.shape)}"}
        if ref.size == 0:
            return {"ok": True, "max_err": 0.0}
        exact = not (np.issubdtype(ref.dtype, np.floating) or np.issubdtype(got.dtype, np.floating))
        r, g = ref.astype(np.float64), got.astype(np.float64)
        err = np.abs(g - r)
        bad_nan = np.isnan(g) & ~np.isnan(r)
        err = np.where(bad_nan, np.inf, np.nan_to_num(err, nan=0.0))
        atol = 0.0 if exact else max(self.floor, self.scale * float(np.nanmax(np.abs(r))))
        allowed = atol + (0.0 if exact else self.rtol) * np.abs(np.nan_to_num(r))
        excess = err - allowed
        i = int(np.argmax(excess))
        idx = [int(v) for v in np.unravel_index(i, ref.shape)]
        return {
            "ok": bool(excess.flat[i] <= 0),
            "max_err": float(err.flat[i]),
            "allowed": float(allowed.flat[i]),
            "index": idx,
            "ref": float(r.flat[i]),
            "got": float(g.flat[i]),
        }


@dataclass
class Localization:
    """What the search found. status: localized | not-localized | agrees (nothing to find)."""

    status: str
    message: str
    node: dict[str, Any] | None = None
    runs: int = 0
    probes: list[dict[str, Any]] = field(default_factory=list)
    repro: str | None = None
    repro_fails: bool | None = None
    repro_detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def reference_values(path: Path, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every tensor of `path` on ORT CPU for `feeds` (the inputs included)."""
    from recipekit.onnx.runtime import ort_with_all_outputs

    runner = ort_with_all_outputs(path)
    names = [o.name for o in runner.session.get_outputs()]
    return {**feeds, **dict(zip(names, runner.session.run(names, feeds), strict=True))}


def ort_backend(path: Path, feeds: dict[str, np.ndarray]) -> Probe:
    """ONNX Runtime on the CPU as a backend (tests, and the reference for a perturbed subject)."""
    from recipekit.onnx.runtime import OrtRunner

    try:
        runner = OrtRunner(path)
        return Probe(dict(zip(runner.output_names, runner.run(feeds), strict=True)))
    except Exception as exc:  # noqa: BLE001 - the backend's error is the finding
        return Probe(error=str(exc))


class Search:
    """One localization: the subject's graph, the reference values, the backend and a run budget."""

    def __init__(self, subject: Path, ref: dict[str, Any], backend: Backend, work: Path, tol: Tolerance) -> None:
        import onnx

        self.graph = Graph(onnx.load(str(subject)))
        self.ref, self.backend, self.work, self.tol = ref, backend, work, tol
        self.feeds = {n: ref[n] for n in self.graph.inputs}
        self.runs, self.probes = 0, []

    def run(self, outputs: list[str], nodes: list[int] | None = None) -> Probe:
        """The backend on the cut model exposing `outputs`."""
        import onnx

        self.runs += 1
        path = self.work / f"probe{self.runs}.onnx"
        model = self.graph.cut(outputs, self.ref, nodes)
        onnx.save(model, str(path))
        used = {i.name for i in model.graph.input}
        out = self.backend(path, {k: v for k, v in self.feeds.items() if k in used})
        path.unlink(missing_ok=True)
        return out

    def judge(self, probe: Probe, tensors: list[str]) -> dict[str, dict[str, Any]]:
        out = {}
        for t in tensors:
            v = self.tol.check(self.ref[t], probe.outputs[t]) if t in probe.outputs else {"ok": False}
            if t not in probe.outputs:
                v["reason"] = "missing from the backend's outputs"
            out[t] = v
            self.probes.append({"tensor": t, **v})
        return out

    def first_bad(self, target: str, max_runs: int, chunk: int) -> tuple[int | None, str]:
        """The node whose inputs agree and whose output disagrees, searching up `target`'s ancestry."""
        tried: set[str] = set()
        while target not in tried and self.runs < max_runs:
            tried.add(target)
            chain = self.graph.chain(target)
            lo, hi = -1, len(chain) - 1
            while hi - lo > 1 and self.runs < max_runs:
                idxs = _spread(lo, hi, chunk, [self.ref[t].nbytes for t in chain])
                probe = self.run([chain[i] for i in idxs])
                if probe.error:
                    return None, f"a cut of the graph failed to run: {probe.error[:300]}"
                verdict = self.judge(probe, [chain[i] for i in idxs])
                bad = [i for i in idxs if not verdict[chain[i]]["ok"]]
                if bad and len(idxs) > 1 and self._agrees_alone(chain[bad[0]]):
                    lo = bad[0]  # later nodes of that cut corrupted it (an out-of-bounds write): it is sound
                elif bad:
                    lo = max([i for i in idxs if i < bad[0]], default=lo)
                    hi = bad[0]
                else:
                    lo = max(idxs)
            node = self.graph.producer[chain[hi]]
            inputs = [
                t
                for t in dict.fromkeys(self.graph.nodes[node].input)
                if t in self.graph.dynamic and t in self.graph.producer
            ]
            verdict = self._confirm(inputs, chain[hi])
            if isinstance(verdict, str):
                return None, verdict
            wrong = [t for t in inputs if not verdict[t]["ok"]]
            if not wrong:
                return node, ""
            target = wrong[0]
        return None, f"no node found within {max_runs} backend runs"

    def _agrees_alone(self, tensor: str) -> bool:
        """Does `tensor` agree in a cut that runs nothing but its ancestors?"""
        probe = self.run([tensor])
        return not probe.error and self.judge(probe, [tensor])[tensor]["ok"]

    def _confirm(self, inputs: list[str], output: str) -> dict[str, dict[str, Any]] | str:
        """The candidate's inputs computed without it, then its output: verdicts, or why it is no culprit.

        Inputs are judged in a run that stops before the candidate: a kernel that writes out of bounds
        (JSEP's Split into 9) also corrupts its own input buffers, which a run exposing both would show."""
        verdict: dict[str, dict[str, Any]] = {}
        if inputs:
            probe = self.run(inputs)
            if probe.error:
                return f"the candidate's inputs failed to run: {probe.error[:300]}"
            verdict = self.judge(probe, inputs)
            if not all(v["ok"] for v in verdict.values()):
                return verdict
        probe = self.run([output])
        if probe.error:
            return f"the candidate failed to run: {probe.error[:300]}"
        verdict.update(self.judge(probe, [output]))
        if verdict[output]["ok"]:
            return (
                f"{output!r} agrees when exposed on its own: the disagreement may come from a fusion of nodes "
                "that exposing intermediate tensors prevents"
            )
        return verdict

    def first_failing(self, error: str, max_runs: int) -> tuple[int | None, str]:
        """The node a run error comes from: named by ORT's message, else the first failing prefix (halving)."""
        named = KERNEL_FAILED.search(error)
        if named:
            op, name = (named.group(1), named.group(2)) if named.group(1) else (named.group(3), named.group(4))
            for i, n in enumerate(self.graph.nodes):
                if n.name == name and n.op_type == op:
                    return i, ""
        lo, hi = 0, len(self.graph.nodes)  # the first `lo` nodes run; all `hi` nodes fail
        while hi - lo > 1 and self.runs < max_runs:
            mid = (lo + hi) // 2
            keep = list(range(mid))
            leaves = _leaves(self.graph, keep)
            probe = self.run(leaves, keep) if leaves else Probe()
            lo, hi = (lo, mid) if probe.error else (mid, hi)
        if hi - lo > 1:
            return None, f"no failing node found within {max_runs} backend runs"
        return hi - 1, ""

    def describe(self, index: int, error: str = "") -> dict[str, Any]:
        """Op type, name, attributes, input shapes and, for a value disagreement, the worst element."""
        from onnx import helper

        node = self.graph.nodes[index]
        out = {
            "node": f"{node.op_type} ({node.name or node.output[0]})",
            "op_type": node.op_type,
            "name": node.name,
            "domain": node.domain,
            "attributes": {a.name: _attr(helper.get_attribute_value(a)) for a in node.attribute},
            "inputs": [
                {
                    "name": t,
                    "shape": _shape(self.ref.get(t, self.graph.initializers.get(t))),
                    "constant": t not in self.graph.dynamic,
                }
                for t in node.input
                if t
            ],
            "outputs": [t for t in node.output if t],
        }
        if error:
            out["error"] = error
        else:
            worst = [p for p in self.probes if p["tensor"] in out["outputs"] and not p["ok"]]
            out["worst"] = {k: v for k, v in worst[-1].items() if k != "ok"} if worst else None
        return out

    def repro(self, index: int, folder: Path, error: str) -> tuple[bool, str]:
        """Write node `index` alone with its inputs and the reference outputs; run it on the backend."""
        import onnx
        from onnx import numpy_helper

        model, feeds = self.graph.single(index, self.ref)
        data = folder / "test_data_set_0"
        data.mkdir(parents=True, exist_ok=True)
        onnx.save(model, str(folder / "model.onnx"))
        outs = [o.name for o in model.graph.output]
        for i, t in enumerate(feeds):
            (data / f"input_{i}.pb").write_bytes(numpy_helper.from_array(self.ref[t], t).SerializeToString())
        for i, t in enumerate(outs):
            (data / f"output_{i}.pb").write_bytes(numpy_helper.from_array(self.ref[t], t).SerializeToString())
        self.runs += 1
        probe = self.backend(folder / "model.onnx", {t: self.ref[t] for t in feeds})
        if probe.error:
            return True, f"fails alone: {probe.error[:300]}"
        if error:
            return False, "runs alone without the error: it needs the rest of the graph"
        verdict = {t: self.tol.check(self.ref[t], probe.outputs.get(t)) for t in outs if t in probe.outputs}
        bad = [t for t, v in verdict.items() if not v["ok"]]
        if bad:
            v = verdict[bad[0]]
            off = v.get("reason") or f"off by {v['max_err']:.4g} (allowed {v['allowed']:.3g})"
            return True, f"fails alone: {bad[0]} {off}"
        return False, "agrees when run alone: it needs the rest of the graph (a fusion, or its placement)"


def _spread(lo: int, hi: int, chunk: int, sizes: list[int], budget: int = 64 << 20) -> list[int]:
    """Up to `chunk` indexes evenly spread strictly between lo and hi, their tensors within `budget` bytes."""
    n = max(1, min(chunk, hi - lo - 1))
    picks = sorted({lo + round(k * (hi - lo) / (n + 1)) for k in range(1, n + 1)})
    out, total = [], 0
    for i in picks:
        if out and total + sizes[i] > budget:
            break
        out.append(i)
        total += sizes[i]
    return out


def _shape(value: Any) -> list[int] | None:
    if value is None:
        return None
    return [int(d) for d in (value.dims if hasattr(value, "dims") else getattr(value, "shape", ()))]


def _leaves(graph: Graph, keep: list[int]) -> list[str]:
    """Dynamic outputs of the kept nodes that no kept node consumes (what a prefix cut exposes)."""
    consumed = {t for i in keep for t in graph.nodes[i].input}
    return [o for i in keep for o in graph.nodes[i].output if o in graph.dynamic and o not in consumed]


def _attr(value: Any) -> Any:
    """An attribute as JSON: tensors and graphs summarized."""
    if hasattr(value, "dims"):
        return {"tensor": list(value.dims)}
    if hasattr(value, "node"):
        return {"graph": len(value.node)}
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, list):
        return [_attr(v) for v in value]
    return value


def localize(
    subject: Path,
    feeds: dict[str, np.ndarray],
    backend: Backend,
    work: Path,
    reference: Path | None = None,
    suspects: list[str] | None = None,
    tol: Tolerance | None = None,
    max_runs: int = 16,
    chunk: int = 8,
    known_error: str = "",
) -> Localization:
    """Find and cut out the first node of `subject` whose result on `backend` disagrees with ORT CPU running
    `reference` (default: the subject itself) on `feeds`. `suspects` (outputs known to disagree) or
    `known_error` (the error the full run stopped with) skip the full run. The repro goes to
    `work`/repro/<op>_<name>/."""
    work.mkdir(parents=True, exist_ok=True)
    ref = reference_values(reference or subject, feeds)
    if reference is not None and Path(reference) != Path(subject):  # tensors only the subject has (an edit)
        ref = {**reference_values(subject, feeds), **ref}
    search = Search(subject, ref, backend, work, tol or Tolerance())
    outputs = [o.name for o in search.graph.model.graph.output]
    error = known_error
    if not suspects and not error:
        probe = search.run(outputs)
        error = probe.error
        suspects = [] if error else [t for t, v in search.judge(probe, outputs).items() if not v["ok"]]
        if not error and not suspects:
            return Localization("agrees", "every output agrees with ORT CPU", runs=search.runs, probes=search.probes)
    if error:
        index, why = search.first_failing(error, max_runs)
    else:
        index, why = search.first_bad(suspects[0], max_runs, chunk)
    if index is None:
        return Localization("not-localized", why, runs=search.runs, probes=search.probes)
    node = search.describe(index, error)
    folder = work / "repro" / re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{node['op_type']}_{node['name'] or index}").strip("_")
    fails, detail = search.repro(index, folder, error)
    (folder / "finding.json").write_text(json.dumps(node, indent=1, default=str))
    return Localization(
        "localized",
        f"first disagreeing node: {node['node']}" + (f" ({error.splitlines()[0][:200]})" if error else ""),
        node=node,
        runs=search.runs,
        probes=search.probes,
        repro=str(folder),
        repro_fails=fails,
        repro_detail=detail,
    )
