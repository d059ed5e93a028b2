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


@dataclass
class Golden:
    output_names: list[str]
    cases: list[Case] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def at(self, shape: tuple[int, int]) -> list[Case]:
        return [c for c in self.cases if tuple(c.shape) == tuple(shape)]

    def save(self, folder: Path) -> None:
        import numpy as np

        arrays: dict[str, np.ndarray] = {}
        index = []
        for i, case in enumerate(self.cases):
            arrays[f"c{i}_in"] = case.input
            for j, out in enumerate(case.outputs):
                arrays[f"c{i}_out{j}"] = out
            index.append({"shape": list(case.shape), "sample": case.sample, "outputs": len(case.outputs)})
        with open(folder / "golden.npz", "wb") as fh:
            np.savez(fh, **arrays)
        doc = {"output_names": self.output_names, "cases": index, "meta": self.meta}
        (folder / "golden.json").write_text(json.dumps(doc, indent=1, sort_keys=True))

    @classmethod
    def load(cls, folder: Path) -> Golden:
        import numpy as np

        doc = json.loads((folder / "golden.json").read_text())
        with np.load(folder / "golden.npz") as z:
            cases = [
                Case(tuple(c["shape"]), c["sample"], z[f"c{i}_in"], [z[f"c{i}_out{j}"] for j in range(c["outputs"])])
                for i, c in enumerate(doc["cases"])
            ]
        return cls(doc["output_names"], cases, doc.get("meta", {}))
