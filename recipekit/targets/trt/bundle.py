"""Writing the Jetson bundle: golden cases per (shape, batch), the command lines, README and checksums.

A Jetson engine must be built on the Jetson (an engine is tied to its GPU and TensorRT version), so
the bundle carries everything the device needs to build it and to prove it right: the fixed ONNX,
the profiles, the exact trtexec lines, golden inputs with the PyTorch source's outputs at every
batch size and shape the profiles allow, and a check program with recipekit's own comparison.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from recipekit.onnx.golden import Golden

README = """# {name}: TensorRT bundle for {target}

Built by recipekit without a GPU. The engine is built on the device itself: TensorRT engines are
tied to the GPU and the TensorRT version they were built with. One bundle serves every JetPack it
plans, and check.py picks the plan from the TensorRT it finds on the device:

{plans}
(8.x: one optimization profile per engine, --fp16/--int8 flags; 10.x: one engine, strongly typed
when the ONNX is fp16 or INT8 QDQ, and from 10.12 always; 11.x: always strongly typed, no
precision flags.) `RECIPEKIT_TENSORRT_VERSION=10.16.1 python3 check.py ...` overrides the probe.

## On the device (JetPack with TensorRT, numpy; cuda-python for the Python check)

    sha256sum -c SHA256SUMS          # the bundle arrived intact
    sh trtexec.sh                    # builds the plan's engines with trtexec (timing cache: {cache})
    python3 check.py --backend trt   # runs every golden case on those engines (built with the Python API if absent)

`check.py` prints the TensorRT version and engine plan, then one row per (shape, batch, output),
and exits 0 only if every case is within the recipe's tolerances (1: a mismatch, 2: a damaged
bundle, 3: backend not installed or TensorRT version not supported). Without TensorRT,
`python3 check.py --backend ort` runs the same cases with ONNX Runtime (what
`recipekit device-check BUNDLE --backend ort` does on the build machine).

## Contents

- model.onnx: the {precision} ONNX graph; profiles.json: optimization profiles (min/opt/max per input)
- commands-<plan>.txt: the exact trtexec lines per plan ({n_profiles} profile{plural})
- golden/: one .npz per (shape, batch): `input` and `out0..` ({golden})
- bundle.json: output names and kinds, tolerances, cases, engine plans; check.py + compare/ (package): the check
"""


def stack(golden: Golden, shape: tuple[int, int], batch: int) -> tuple[np.ndarray, list[np.ndarray]] | None:
    """A batch of `batch` golden cases at `shape` (cases repeated cyclically), outputs the same way."""
    import numpy as np

    cases = golden.at(shape)
    if not cases:
        return None
    picked = [cases[i % len(cases)] for i in range(batch)]
    x = np.concatenate([c.input for c in picked], axis=0)
    outs = [np.concatenate([c.outputs[j] for c in picked], axis=0) for j in range(len(golden.output_names))]
    return x, outs


def write_golden(
    out: Path, golden: Golden, cases: list[tuple[tuple[int, int], int, int]]
) -> tuple[list[dict], list[str]]:
    """golden/<H>x<W>_b<N>.npz for every case; returns the case index and the shapes lacking golden data."""
    import numpy as np

    (out / "golden").mkdir()
    index, missing = [], []
    for shape, batch, profile in cases:
        got = stack(golden, shape, batch)
        if got is None:
            missing.append(f"{shape[0]}x{shape[1]}")
            continue
        rel = f"golden/{shape[0]}x{shape[1]}_b{batch}.npz"
        with open(out / rel, "wb") as fh:
            np.savez(fh, input=got[0], **{f"out{j}": o for j, o in enumerate(got[1])})
        samples = [c.sample for c in golden.at(shape)]
        index.append(
            {
                "file": rel,
                "shape": list(shape),
                "batch": batch,
                "profile": profile,
                "samples": [samples[i % len(samples)] for i in range(batch)],
            }
        )
    return index, sorted(set(missing))


def write_json(path: Path, doc: dict[str, Any]) -> None:
    path.write_text(json.dumps(doc, indent=1, sort_keys=True, default=str) + "\n")


def write_commands(out: Path, plans: list[dict[str, Any]]) -> None:
    """commands-<plan>.txt: the exact lines per plan; trtexec.sh runs the device's plan (check.py --trtexec)."""
    for plan in plans:
        (out / plan["commands"]).write_text("".join(item["trtexec"] + "\n" for item in plan["engines"]))
    script = (
        "#!/bin/sh\n# Build the engines on the device with trtexec: check.py picks the lines of the plan for the\n"
        '# installed TensorRT (README.md lists the plans).\nset -e\ncd "$(dirname "$0")"\n'
        "exec python3 check.py --trtexec\n"
    )
    (out / "trtexec.sh").write_text(script)
    (out / "trtexec.sh").chmod(0o755)


def plan_lines(plans: list[dict[str, Any]]) -> str:
    """The README's list of plans: which TensorRT versions take each, and its commands file."""

    def version(parts: list[int]) -> str:
        return ".".join(map(str, parts))

    return "".join(
        f"- {p['title']}: TensorRT >= {version(p['first'])}, < {version(p['below'])}: {p['commands']}\n" for p in plans
    )


def write_readme(out: Path, **fields: Any) -> None:
    (out / "README.md").write_text(README.format(**fields))


def write_sums(out: Path) -> dict[str, str]:
    """SHA256SUMS over every file (sha256sum -c format); returns path -> digest."""
    sums = {}
    for path in sorted(p for p in out.rglob("*") if p.is_file() and p.name != "SHA256SUMS"):
        sums[path.relative_to(out).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    (out / "SHA256SUMS").write_text("".join(f"{d}  {p}\n" for p, d in sums.items()))
    return sums
