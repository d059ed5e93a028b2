"""jetson-device: the trt-jetson bundle's own check, run with TensorRT on the Jetson itself.

Opt-in (`gates: {jetson-device: {}}`): it declares the `jetson` resource, so on a Dask cluster
(`recipekit matrix --scheduler`) it runs only on a worker started with `--resources "jetson=1"`,
and a cluster with no such worker reports the cell `unavailable` naming the resource. Where it
runs, it does what a person would do on the device: build the engines with the bundle's trtexec
plan (`check.py --trtexec`), then compare them with the bundle's golden outputs (`check.py --backend
trt`). On a machine without TensorRT or that is not a Jetson it reports `unavailable` with the
reason; it never passes without an engine having run.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import ClassVar

from pydantic import Field

from recipekit.gates.base import Gate, GateConfig, GateContext, GateResult

TEGRA_RELEASE = Path("/etc/nv_tegra_release")  # present on every L4T / JetPack image


class JetsonDeviceConfig(GateConfig):
    build_engines: bool = Field(True, description="build the engines with the bundle's trtexec plan first")
    timeout_s: float = Field(3600.0, gt=0, description="time allowed for the engine builds and the check")


def why_not_here() -> str | None:
    """Why the on-device check cannot run on this machine (None: it can)."""
    if not TEGRA_RELEASE.is_file():
        return (
            f"not a Jetson ({TEGRA_RELEASE} is missing): the on-device check runs on the device, e.g. on a Dask "
            'worker started there with --resources "jetson=1" (recipekit matrix --scheduler)'
        )
    if importlib.util.find_spec("tensorrt") is None:
        return "TensorRT's Python bindings are not installed on this Jetson (JetPack ships them: python3-libnvinfer)"
    return None


class JetsonDevice(Gate):
    name: ClassVar[str] = "jetson-device"
    version: ClassVar[str] = "2"
    Config = JetsonDeviceConfig
    targets: ClassVar[tuple[str, ...] | None] = ("trt-jetson",)
    uses_golden: ClassVar[bool] = False  # the bundle carries its own golden outputs
    resources: ClassVar[dict[str, float]] = {"jetson": 1}
    imports: ClassVar[tuple[str, ...]] = ()

    def check(self, ctx: GateContext) -> GateResult:
        reason = why_not_here()
        if reason:
            return GateResult("unavailable", message=reason, failures=[reason])
        bundle = ctx.artifact_dir
        with tempfile.TemporaryDirectory(prefix="recipekit-jetson-") as tmp:
            rows_file = Path(tmp) / "rows.json"
            if self.config.build_engines:
                built = self._run(bundle, ["--trtexec"])
                if built.returncode != 0:
                    return _failed("engine build (check.py --trtexec)", built)
            run = self._run(bundle, ["--backend", "trt", "--json", str(rows_file)])
            doc = json.loads(rows_file.read_text()) if rows_file.is_file() else {}
        return verdict(run, doc)

    def _run(self, bundle: Path, args: list[str]) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, str(bundle / "check.py"), *args]
        return subprocess.run(
            cmd, cwd=bundle, capture_output=True, text=True, timeout=self.config.timeout_s, check=False
        )


def verdict(run: subprocess.CompletedProcess[str], doc: dict) -> GateResult:
    """The gate's result from check.py's exit status (0 ok, 1 mismatch, 2 damaged, 3 no backend) and rows."""
    from recipekit.targets.trt.check import DAMAGED, MISMATCH, NO_BACKEND, OK

    rows = doc.get("rows") or []
    figures = {
        "tensorrt": doc.get("tensorrt"),
        "generation": doc.get("generation"),
        "plan": doc.get("plan"),
        "rows": rows,
    }
    if run.returncode == OK and rows:
        return GateResult("passed", figures, message=f"{len(rows)} comparisons within tolerance on the device")
    if run.returncode == NO_BACKEND:
        why = _tail(run.stderr) or "check.py found no TensorRT backend"
        return GateResult("unavailable", figures, [why], why)
    if run.returncode in (MISMATCH, DAMAGED) or run.returncode == OK:
        bad = [r for r in rows if not r.get("passed")]
        failures = [
            f"{r.get('shape')} batch {r.get('batch')} {r.get('output')}: {r.get('reason', 'beyond tolerance')}"
            for r in bad[:10]
        ] or [_tail(run.stderr) or "no comparison ran"]
        return GateResult("failed", figures, failures, f"{len(bad)} of {len(rows)} comparisons beyond tolerance")
    return _failed("check.py --backend trt", run)


def _failed(what: str, run: subprocess.CompletedProcess[str]) -> GateResult:
    msg = f"{what} exited {run.returncode}: {_tail(run.stderr or run.stdout)}"
    return GateResult("failed", {}, [msg], msg)


def _tail(text: str, limit: int = 400) -> str:
    return " | ".join(text.strip().splitlines()[-3:])[-limit:]
