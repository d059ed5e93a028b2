"""A release folder: artifacts, manifests, resolved recipes, gate reports, a tool lock, SHA256SUMS.

Everything written is deterministic (sorted keys, no timestamps, archive entries with mtime 0 and
no owner), so two clean builds with the same tools give identical SHA256SUMS.
"""

from __future__ import annotations

import gzip
import io
import json
import shutil
import tarfile
from pathlib import Path
from typing import Any

from recipekit.cache.digests import file_sha256 as sha256

SUMS = "SHA256SUMS"


def dump(path: Path, doc: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")


def add_cell(dest: Path, published: Path, recipe: str, target: str) -> dict[str, Any]:
    """Copy build/<recipe>/<target>/ into the release; write its gate report."""
    manifest = json.loads((published / "manifest.json").read_text())
    cell = dest / recipe / target
    cell.mkdir(parents=True, exist_ok=True)
    for name in [*manifest["files"], "manifest.json"]:
        (cell / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(published / name, cell / name)
    dump(
        dest / "reports" / f"{recipe}.{target}.json",
        {"recipe": recipe, "target": target, "gates": manifest["gates"], "fixes": manifest["fixes"]},
    )
    return {
        "recipe": recipe,
        "target": target,
        "artifact": f"{recipe}/{target}/{manifest['artifact']['path']}",
        "sha256": manifest["artifact"]["sha256"],
    }


def add_recipe(dest: Path, raw: dict[str, Any]) -> None:
    import yaml

    path = dest / "recipes" / f"{raw['name']}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(raw, sort_keys=False))


def write_sums(dest: Path) -> str:
    files = sorted(p for p in dest.rglob("*") if p.is_file() and p.name != SUMS)
    text = "".join(f"{sha256(p)}  {p.relative_to(dest).as_posix()}\n" for p in files)
    (dest / SUMS).write_text(text)
    return text


def archive(dest: Path) -> Path:
    """dest.tar.gz with sorted entries, mtime 0, no owner: same content, same bytes."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for p in sorted(dest.rglob("*")):
            if p.is_file():
                info = tarfile.TarInfo(f"{dest.name}/{p.relative_to(dest).as_posix()}")
                info.size, info.mtime, info.mode = p.stat().st_size, 0, 0o644
                with open(p, "rb") as fh:
                    tar.addfile(info, fh)
    out = dest.parent / f"{dest.name}.tar.gz"
    with open(out, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
        gz.write(buf.getvalue())
    return out


def read_sums(dest: Path) -> dict[str, str]:
    sums = {}
    for line in (dest / SUMS).read_text().splitlines():
        digest, _, name = line.partition("  ")
        sums[name] = digest
    return sums


def check_files(dest: Path) -> list[str]:
    """Problems with the release's files: missing, altered or unlisted (each names the file)."""
    if not (dest / SUMS).is_file():
        return [f"{SUMS}: missing"]
    sums, problems = read_sums(dest), []
    for name, digest in sorted(sums.items()):
        path = dest / name
        if not path.is_file():
            problems.append(f"{name}: missing")
        elif sha256(path) != digest:
            problems.append(f"{name}: sha256 differs from {SUMS} (altered)")
    listed = set(sums) | {SUMS}
    problems += [
        f"{p.relative_to(dest).as_posix()}: not listed in {SUMS}"
        for p in sorted(dest.rglob("*"))
        if p.is_file() and p.relative_to(dest).as_posix() not in listed
    ]
    return problems


def check_manifests(dest: Path) -> list[str]:
    """Each manifest's artifact digest against the artifact file beside it."""
    problems = []
    for m in sorted(dest.glob("*/*/manifest.json")):
        doc = json.loads(m.read_text())
        art = m.parent / doc["artifact"]["path"]
        if art.is_file() and sha256(art) != doc["artifact"]["sha256"]:
            problems.append(f"{art.relative_to(dest).as_posix()}: differs from its manifest's sha256")
    return problems
