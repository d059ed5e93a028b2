"""Publish: copy a target's artifact and write manifest.json, only when every gate passed.

`build/<name>/<target>/` is replaced as a whole: the new folder is written and checked beside it
(`.<target>.<pid>-<start>.*`, named by its owner process, core.owner), then the two are swapped in
one step (renameat2 RENAME_EXCHANGE, cache.fs.exchange) and the old one, now under the staging name,
is removed. A reader finds the old complete target or the new complete one at every instant. Where
the file system cannot exchange (NFS, CIFS), the swap is two renames and a reader can find no
target for that moment. A staging or old folder whose build is gone (killed anywhere in publish) is
removed by the next publish into `build/<name>/`.

An unchanged manifest whose published files still match its digests means nothing is rewritten; a
published file that differs from its manifest (edited, truncated, missing) is republished and
reported (the file, the digest its manifest records and the one found), and `--force` always
republishes. The copied bytes are checked against the manifest before the folder is swapped in.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import signal
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recipekit.core import owner, tools
from recipekit.core.errors import StepFailed
from recipekit.graph.stages.common import KeyParts

if TYPE_CHECKING:
    from collections.abc import Iterator

    from recipekit.cache.digests import DigestMemo
    from recipekit.graph.context import Output, StepContext
    from recipekit.graph.plan import Step
    from recipekit.recipe.schema import Recipe

KILL_AT = "RECIPEKIT_TEST_KILL_AT"
"""For tests: SIGKILL this process at a point of the swap: `publish-staged` (the new folder complete,
nothing swapped), `publish-swapped` (swapped, the old folder not yet removed), `publish-between`
(the two-rename swap, between its renames)."""
PUBLISHED_OK = ("passed", "skipped", "not applicable")
"""Gate statuses a target is published with; `skipped` ones make it `unverified` (with their reasons)."""
VOLATILE = ("timings_ms", "per_batch")
"""Gate figures that are measurements of time: they differ run to run, so they go to timings.json
beside the manifest (not part of the artifact's files, nor of a release), keeping manifest.json
byte-identical across clean builds."""


def key_parts(step: Step, recipe: Recipe) -> KeyParts:
    return KeyParts("2", tools.versions())


def split_volatile(gates: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    stable, volatile = {}, {}
    for name, result in gates.items():
        figures = dict(result.get("figures") or {})
        moved = {k: figures.pop(k) for k in VOLATILE if k in figures}
        stable[name] = {**result, "figures": figures}
        if moved:
            volatile[name] = moved
    return stable, volatile


def _gates(ctx: StepContext) -> dict[str, dict[str, Any]]:
    return {r.split(".", 1)[1]: up.result.to_json() for r, up in sorted(ctx.upstream.items()) if r.startswith("gate.")}  # type: ignore[union-attr]


def manifest(ctx: StepContext) -> dict[str, Any]:
    """Everything a user of the artifact needs to know, deterministic (no timestamps)."""
    from recipekit.recipe.dump import to_raw

    comp, fixr, exp = ctx.up("compile"), ctx.up("fix").result, ctx.up("export").result
    files = dict(comp.files)
    artifact = comp.result.artifact  # type: ignore[union-attr]
    facts = comp.result.manifest  # type: ignore[union-attr]
    gates, _ = split_volatile(_gates(ctx))
    io = facts.get("io") or fixr.io.to_json()  # type: ignore[union-attr]
    recipe = ctx.recipe
    reasons = unverified(gates)
    verdict = "unverified" if reasons else "passed"
    return {
        "name": recipe.name,
        "target": ctx.step.target,
        "status": verdict,
        "verdict": verdict,
        "unverified": reasons,
        "artifact": {"path": artifact, "sha256": files[artifact]},
        "files": files,
        "inputs": io["inputs"],
        "outputs": io["outputs"],
        "output_kinds": exp.output_kinds,  # type: ignore[union-attr]
        "preprocess": recipe.input.preprocess.model_dump(mode="json"),
        "source": {"kind": recipe.source.kind, "init": exp.init, "notes": exp.notes},  # type: ignore[attr-defined,union-attr]
        "fixes": [f.to_json() for f in fixr.fixes],  # type: ignore[union-attr]
        "precision": _precision(ctx),
        "gates": gates,
        "target_facts": facts,
        "steps": {up.task: up.key for up in ctx.upstream.values() if up.key},
        "tools": tools.versions(),
        "recipe": to_raw(recipe),
    }


def unverified(gates: dict[str, dict[str, Any]]) -> list[str]:
    """'<gate>: <reason>' for every gate that was skipped (turned off, or its case could not be exercised):
    a target published with any is `unverified`, never a plain pass."""
    return [f"{name}: {g.get('message') or 'skipped'}" for name, g in gates.items() if g.get("status") == "skipped"]


def _precision(ctx: StepContext) -> dict[str, Any]:
    """What the precision step made (Q/DQ counts or fp16 weights, calibration images); fp32: no step."""
    if "precision" not in ctx.upstream:
        return {"precision": "fp32"}
    return ctx.up("precision").result.to_json()  # type: ignore[union-attr]


def _mismatch(dest: Path, files: dict[str, str], memo: DigestMemo | None) -> str | None:
    """Why the folder's files are not exactly `files` (name -> sha256), or None."""
    for name, _, found in _differences(dest, files, memo):
        return f"{name} missing" if found is None else f"{name} differs from the manifest"
    return None


def _differences(dest: Path, files: dict[str, str], memo: DigestMemo | None) -> Iterator[tuple[str, str, str | None]]:
    """(name, sha256 `files` records, sha256 found or None if missing) for each file that differs."""
    from recipekit.cache.digests import file_sha256

    for name, digest in files.items():
        path = dest / name
        if not path.is_file():
            yield name, digest, None
            continue
        found = memo.digest(path) if memo else file_sha256(path)
        if found != digest:
            yield name, digest, found


def _same(dest: Path, doc: dict[str, Any], memo: DigestMemo) -> bool:
    try:
        return json.loads((dest / "manifest.json").read_text()) == doc and _mismatch(dest, doc["files"], memo) is None
    except (OSError, ValueError):
        return False


def edits(dest: Path, memo: DigestMemo | None = None) -> str:
    """What differs in a published folder from its own manifest.json, on one line ("" if nothing, or
    no folder): each file with the sha256 the manifest records and the one found."""
    if not dest.is_dir():
        return ""
    try:
        files = json.loads((dest / "manifest.json").read_text())["files"]
    except FileNotFoundError:
        return "manifest.json: no file"
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"manifest.json: unreadable ({type(exc).__name__}: {exc})"
    return "; ".join(
        f"{name}: manifest sha256 {expected}, found {found or 'no file'}"
        for name, expected, found in _differences(dest, files, memo)
    )


LEFTOVER = re.compile(r"\.(?P<target>[\w-]+)\.(?:(?P<owner>\d+-\d+)\.\w+|(?P<legacy>old|\w{8}))")
"""Staging and old folders beside the targets: ours name their owner; `.<target>.old` and
`.<target>.XXXXXXXX` are what publish left before it named them."""


def sweep(folder: Path, target: str) -> int:
    """Remove the staging and old folders in `folder` whose publish is gone (killed at any point)."""
    removed = 0
    for path in folder.glob(".*.*"):
        m = LEFTOVER.fullmatch(path.name)
        if m is None or not path.is_dir() or path.is_symlink():
            continue
        if m["owner"] and owner.tag_gone(m["owner"]) or m["legacy"] and m["target"] == target:
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
    return removed


def _kill_point(name: str) -> None:
    if os.environ.get(KILL_AT) == name:
        os.kill(os.getpid(), signal.SIGKILL)


def _stage(ctx: StepContext, src_dir: Path, doc: dict[str, Any], dest: Path) -> Path:
    """The new target, complete and checked, in a staging folder beside `dest`."""
    from recipekit.cache.fs import share

    work = Path(tempfile.mkdtemp(prefix=f".{dest.name}.{owner.tag()}.", dir=dest.parent))
    try:
        for name in doc["files"]:
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src_dir / name, work / name)
        problem = _mismatch(work, doc["files"], None)
        if problem:
            raise StepFailed(ctx.task, f"refusing to publish: the copy of the cache entry does not match: {problem}")
        (work / "manifest.json").write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
        _, timings = split_volatile(_gates(ctx))
        if timings:
            (work / "timings.json").write_text(json.dumps(timings, indent=1, sort_keys=True) + "\n")
        share(work)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return work


def _swap_in(work: Path, dest: Path) -> None:
    """Put the folder `work` at `dest` in one step, then remove the folder it replaced (interrupted
    before the swap: the staging folder goes instead)."""
    from recipekit.cache.fs import exchange

    try:
        _kill_point("publish-staged")
        if _rename_new(work, dest) or exchange(work, dest):
            _kill_point("publish-swapped")
        else:
            _two_renames(work, dest)
    finally:
        _remove(work)  # the old target swapped out, or a staging folder never swapped in


def _rename_new(work: Path, dest: Path) -> bool:
    """One rename where there is no target yet; False if there is one (made meanwhile, too)."""
    if dest.exists() or dest.is_symlink():
        return False
    try:
        os.rename(work, dest)
    except OSError as exc:
        if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
            raise
        return False
    return True


def _two_renames(work: Path, dest: Path) -> None:
    """Without RENAME_EXCHANGE: the old target aside, the new one in; the old one is back if that fails."""
    old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.{owner.tag()}.", dir=dest.parent))
    os.replace(dest, old)  # onto an empty folder: allowed, and the old target keeps an owner's name
    try:
        _kill_point("publish-between")
        os.replace(work, dest)
    except BaseException:
        os.replace(old, dest)
        raise
    finally:
        _remove(old)


def _remove(path: Path) -> None:
    if path.is_symlink():  # a target the user had made a symlink, swapped out
        path.unlink()
    else:
        shutil.rmtree(path, ignore_errors=True)


def _blocked(ctx: StepContext) -> Output | None:
    from recipekit.graph.context import Output

    comp = ctx.up("compile")
    if comp.status == "unavailable":
        return Output(ctx.task, "publish", "unavailable", reason=comp.reason)
    gates = {r.split(".", 1)[1]: up.result for r, up in ctx.upstream.items() if r.startswith("gate.")}
    not_run = [g for g, res in gates.items() if res.status not in PUBLISHED_OK]  # type: ignore[union-attr]
    if not not_run:
        return None
    why = "; ".join(f"{g}: {gates[g].message}" for g in not_run)  # type: ignore[union-attr]
    if ctx.settings.get("require"):
        return Output(ctx.task, "publish", "failed", error=f"required gates did not run: {why}")
    return Output(ctx.task, "publish", "unverified", reason=f"not published, gates did not run here: {why}")


def unchanged(ctx: StepContext) -> Output | None:
    """The step's output when the published folder already holds exactly what it would publish
    (nothing to do: doit's up-to-date check asks this), else None. Either way the staging and old
    folders a killed publish left beside it are swept first."""
    from recipekit.graph.context import Output

    dest = Path(ctx.settings["out"]) / ctx.recipe.name / (ctx.step.target or "")
    if dest.parent.is_dir():
        sweep(dest.parent, dest.name)
    if ctx.settings.get("force") or _blocked(ctx) is not None:
        return None
    doc = manifest(ctx)
    if not _same(dest, doc, ctx.store.memo):
        return None
    return Output(ctx.task, "publish", "cached", path=dest, reason=unverified_reason(doc))


def unverified_reason(doc: dict[str, Any]) -> str:
    """Why a published target is unverified ("" when every gate passed or cannot apply): the reason
    travels with the publish step's result to the summary and the reports."""
    return "; ".join(doc["unverified"])


def run(ctx: StepContext) -> Output:
    from recipekit.graph.context import Output

    dest = Path(ctx.settings["out"]) / ctx.recipe.name / (ctx.step.target or "")
    if dest.parent.is_dir():
        sweep(dest.parent, dest.name)
    blocked = _blocked(ctx)
    if blocked is not None:  # built, but a gate could not run here (no browser): never a silent pass
        return blocked
    done = unchanged(ctx)
    if done is not None:
        return done
    doc = manifest(ctx)
    edited = edits(dest, ctx.store.memo)
    dest.parent.mkdir(parents=True, exist_ok=True)
    _swap_in(_stage(ctx, ctx.up("compile").path, doc, dest), dest)  # type: ignore[arg-type]
    note = f"republished: {dest} differed from its manifest: {edited}" if edited else ""
    return Output(ctx.task, "publish", "ran", path=dest, reason=unverified_reason(doc), note=note)
