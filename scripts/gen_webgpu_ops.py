#!/usr/bin/env python3
"""Regenerate recipekit/targets/webgpu/ops.json: the opsets onnxruntime-web's JSEP WebGPU kernels run.

Source: docs/webgpu-operators.md inside the pinned npm package (web/node_modules/onnxruntime-web),
the same file as microsoft/onnxruntime js/web/docs/webgpu-operators.md at that release, generated
there from the JSEP kernel registrations. Run after changing the pin:
    python scripts/gen_webgpu_ops.py [path/to/webgpu-operators.md]
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MD = ROOT / "web" / "node_modules" / "onnxruntime-web" / "docs" / "webgpu-operators.md"
OUT = ROOT / "recipekit" / "targets" / "webgpu" / "ops.json"
DOMAINS = {"ai.onnx": "", "com.microsoft": "com.microsoft", "com.ms.internal.nhwc": "com.ms.internal.nhwc"}


def ranges(text: str) -> list[list[int | None]]:
    """'7-12,13,14+' -> [[7, 12], [13, 13], [14, None]] (None: no upper bound)."""
    out: list[list[int | None]] = []
    for part in text.split(","):
        part = part.strip()
        if part.endswith("+"):
            out.append([int(part[:-1]), None])
        elif "-" in part:
            lo, hi = part.split("-")
            out.append([int(lo), int(hi)])
        else:
            out.append([int(part), int(part)])
    return out


def parse(md: str) -> tuple[dict[str, dict[str, list]], dict[str, str]]:
    ops: dict[str, dict[str, list]] = {}
    comments: dict[str, str] = {}
    for line in md.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2 or not re.fullmatch(r"[A-Za-z0-9_]+", cells[0]) or cells[0] == "Operator":
            continue
        for dom, spec in re.findall(r"([\w.]+)\(([^)]*)\)", cells[1]):
            ops.setdefault(DOMAINS.get(dom, dom), {})[cells[0]] = ranges(spec)
        if len(cells) > 2 and cells[2]:
            comments[cells[0]] = cells[2]
    return ops, comments


def main() -> int:
    md_path = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_MD
    pkg = md_path.parents[1] / "package.json"
    version = json.loads(pkg.read_text())["version"] if pkg.is_file() else "unknown"
    ops, comments = parse(md_path.read_text())
    doc = {
        "source": f"onnxruntime-web@{version} docs/webgpu-operators.md (microsoft/onnxruntime "
        "js/web/docs/webgpu-operators.md)",
        "generated_by": "scripts/gen_webgpu_ops.py",
        "onnxruntime_web": version,
        "kernels": "jsep",
        "domains": ops,
        "comments": comments,
    }
    OUT.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    print(f"wrote {OUT} ({sum(len(v) for v in ops.values())} entries from {md_path})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
