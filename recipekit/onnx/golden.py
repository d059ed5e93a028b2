"""Golden cases: preprocessed inputs with the PyTorch source's outputs, computed once per source.

Stored as golden.npz + golden.json in the golden step's cache entry. Gates, the Jetson bundle and
`device-check` compare artifacts against these, so torch is imported only by the golden step.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np


@dataclass
class Case:
    """One batch-1 input at one shape, and the source's outputs for it."""

    shape: tuple[int, int]
    sample: str
    input: np.ndarray
    outputs: list[np.ndarray]


PROBES: tuple[tuple[str, int, int, int], ...] = (
    ("blank(0)", 0, 0, 0),
    ("blank(114)", 114, 0, 0),
    ("blank(255)", 255, 0, 0),
    ("blank(32)", 32, 0, 0),
    ("blank(200)", 200, 0, 0),
    ("noise(114+-4)", 114, 4, 0),
    ("noise(0+8)", 0, 8, 1),
)
"""Blank-ish inputs for empty-input, (name, grey level, noise amplitude, seed): constant colours (black,
the letterbox grey, white, dark and light grey) and low uniform noise around grey and above black. The
gate looks among these for one whose reference output has zero detections. The golden step computes them
at the export size."""
PROBES_VERSION = "1"


def probe_inputs(hw: tuple[int, int], pre: Any, dtype: str = "float32") -> list[tuple[str, np.ndarray]]:
    """The PROBES at (H, W), preprocessed as the recipe says."""
    import numpy as np

    from recipekit.onnx.preprocess import to_tensor

    out = []
    for name, level, amp, seed in PROBES:
        noise = np.random.default_rng(seed).integers(-amp, amp + 1, size=(*hw, 3)) if amp else 0
        img = np.clip(level + noise, 0, 255).astype(np.uint8) if amp else np.full((*hw, 3), level, np.uint8)
        out.append((name, to_tensor(img, pre, dtype)))
    return out


@dataclass
class Golden:
    """Golden cases (the recipe's samples at every shape) and probes (PROBES, for empty-input)."""

    output_names: list[str]
    cases: list[Case] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    probes: list[Case] = field(default_factory=list)

    def at(self, shape: tuple[int, int]) -> list[Case]:
        return [c for c in self.cases if tuple(c.shape) == tuple(shape)]

    def save(self, folder: Path) -> None:
        import numpy as np

        arrays: dict[str, np.ndarray] = {}
        index: dict[str, list[dict[str, Any]]] = {"c": [], "p": []}
        for prefix, cases in (("c", self.cases), ("p", self.probes)):
            for i, case in enumerate(cases):
                arrays[f"{prefix}{i}_in"] = case.input
                for j, out in enumerate(case.outputs):
                    arrays[f"{prefix}{i}_out{j}"] = out
                index[prefix].append({"shape": list(case.shape), "sample": case.sample, "outputs": len(case.outputs)})
        with open(folder / "golden.npz", "wb") as fh:
            np.savez(fh, **arrays)
        doc = {"output_names": self.output_names, "cases": index["c"], "probes": index["p"], "meta": self.meta}
        (folder / "golden.json").write_text(json.dumps(doc, indent=1, sort_keys=True))

    @classmethod
    def load(cls, folder: Path) -> Golden:
        import numpy as np

        doc = json.loads((folder / "golden.json").read_text())

        def read(z: Any, prefix: str, rows: list[dict[str, Any]]) -> list[Case]:
            return [
                Case(
                    tuple(c["shape"]),
                    c["sample"],
                    z[f"{prefix}{i}_in"],
                    [z[f"{prefix}{i}_out{j}"] for j in range(c["outputs"])],
                )
                for i, c in enumerate(rows)
            ]

        with np.load(folder / "golden.npz", allow_pickle=False) as z:
            cases, probes = read(z, "c", doc["cases"]), read(z, "p", doc.get("probes", []))
        return cls(doc["output_names"], cases, doc.get("meta", {}), probes)
