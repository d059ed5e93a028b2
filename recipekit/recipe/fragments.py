"""The files a recipe is composed from: its Hydra defaults list, resolved recursively on a search path.

Search path: the recipe's own folder, its parent (the project folder holding recipes/), then the
folders in RECIPEKIT_RECIPE_PATH (os.pathsep-separated). A `defaults:` entry that resolves outside
it (e.g. `../../outside` from recipes/x.yaml) is refused, naming the file, the key path and the
search path. Knowing every fragment lets the remembered composition be keyed by all the bytes it
was made of, and by the values of the environment variables the texts interpolate.
"""

from __future__ import annotations

import os
import posixpath
import re
from pathlib import Path
from typing import Any, NamedTuple

from recipekit.core.errors import RecipeError

PATH_VAR = "RECIPEKIT_RECIPE_PATH"
ENV_RE = re.compile(r"\$\{\s*oc\.env\s*:\s*([A-Za-z_][A-Za-z0-9_]*)")
KEYWORDS = ("optional ", "override ")


class Composition(NamedTuple):  # not a dataclass: read before a build's workers start, dataclasses costs 7 ms
    """The recipe file, every fragment it loads (in load order) and the env vars their texts read.

    `exact` is False when the defaults list has a form this resolver does not follow (an
    interpolated entry, a group chosen by an override): the composition is then not remembered."""

    recipe: Path
    fragments: tuple[Path, ...]
    env_vars: tuple[str, ...]
    search_path: tuple[Path, ...]
    exact: bool = True


def search_path(recipe: Path) -> list[Path]:
    dirs = [recipe.parent, recipe.parent.parent]
    dirs += [Path(p) for p in os.environ.get(PATH_VAR, "").split(os.pathsep) if p]
    out: list[Path] = []
    for d in dirs:
        d = d.resolve()
        if d not in out:
            out.append(d)
    return out


def _entries(data: Any) -> list[tuple[int, str | None]]:
    """(index, config path or None when not followable) for each defaults entry except _self_."""
    out: list[tuple[int, str | None]] = []
    for i, item in enumerate(data.get("defaults") or [] if isinstance(data, dict) else []):
        if item == "_self_":
            continue
        if isinstance(item, dict) and len(item) == 1:
            ((group, option),) = item.items()
            if not isinstance(group, str) or not isinstance(option, str) or option is None:
                out.append((i, None))
                continue
            group = group.split("@", 1)[0]
            if group.startswith(KEYWORDS):
                out.append((i, None))
                continue
            out.append((i, f"{group}/{option}"))
        elif isinstance(item, str) and "${" not in item and not item.startswith(KEYWORDS):
            out.append((i, item.split("@", 1)[0]))
        else:
            out.append((i, None))
    return out


def _inside(path: Path, roots: list[Path]) -> bool:
    return any(path == r or r in path.parents for r in roots)


def _find(entry: str, group: str, roots: list[Path]) -> Path | None:
    rel = entry[1:] if entry.startswith("/") else posixpath.join(group, entry)
    rel = posixpath.normpath(rel)
    name = rel if rel.endswith((".yaml", ".yml")) else rel + ".yaml"
    for root in roots:
        cand = (root / name).resolve()
        if cand.is_file():
            return cand
    return None


def _defaults_of(file: Path, known: dict[str, Any]) -> list[tuple[int, str | None]]:
    """The defaults entries of `file`, remembered by the sha256 of its bytes (a no-op build parses no YAML)."""
    import hashlib

    from recipekit.recipe.yamlcheck import check_file

    digest = hashlib.sha256(file.read_bytes()).hexdigest()
    if digest not in known:
        data = check_file(file)  # hostile YAML refused (size, depth, aliases...), a syntax error names its line
        known[digest] = [list(e) for e in _entries(data)]
    return [(int(i), e) for i, e in known[digest]]


def _walk(file: Path, group: str, roots: list[Path], seen: list[Path], known: dict[str, Any], depth: int = 0) -> bool:
    """Append `file`'s fragments to `seen` (depth first, Hydra's order); False if not followable."""
    if depth > 32:
        raise RecipeError(str(file), "defaults", "defaults lists nest more than 32 levels (a cycle?)")
    exact = True
    for index, entry in _defaults_of(file, known):
        if entry is None:
            exact = False
            continue
        found = _find(entry, group, roots)
        where = ", ".join(str(r) for r in roots)
        if found is None or not _inside(found, roots):
            what = "resolves outside the recipe search path" if found else "not found on the recipe search path"
            raise RecipeError(str(file), f"defaults[{index}]", f"{entry!r} {what} ({where}; extend it with {PATH_VAR})")
        if found not in seen:
            seen.append(found)
            root = next(r for r in roots if r in found.parents)
            sub = posixpath.dirname(found.relative_to(root).as_posix())
            exact = _walk(found, sub, roots, seen, known, depth + 1) and exact
    return exact


def composition(recipe: Path, overrides: list[str] = (), known: dict[str, Any] | None = None) -> Composition:  # type: ignore[assignment]
    """Every file composing `recipe` and the env vars they (and the overrides) interpolate.

    `known`: defaults entries already read, by file digest (updated in place)."""
    recipe = recipe.resolve()
    roots = search_path(recipe)
    seen: list[Path] = []
    exact = _walk(recipe, "", roots, seen, {} if known is None else known)
    texts = [recipe.read_text(), *(f.read_text() for f in seen), *overrides]
    env_vars = sorted({m for t in texts for m in ENV_RE.findall(t)})
    return Composition(recipe, tuple(seen), tuple(env_vars), tuple(roots), exact)


def memo_key(comp: Composition, overrides: list[str]) -> str:
    """A digest of everything the composed recipe is made of."""
    import hashlib
    import json

    h = hashlib.sha256(json.dumps({"overrides": overrides, "search": [str(p) for p in comp.search_path]}).encode())
    for f in (comp.recipe, *comp.fragments):
        h.update(str(f).encode() + b"\0" + f.read_bytes() + b"\0")
    for var in comp.env_vars:
        h.update(json.dumps([var, os.environ.get(var)]).encode())
    return h.hexdigest()


def read_json(path: Path | None) -> Any:
    """A JSON file's data, or None when it is missing or unreadable (a memo, never an input)."""
    import json

    try:
        return json.loads(path.read_text()) if path else None
    except (OSError, ValueError):
        return None


def compose_key(path: Path, overrides: list[str], known: dict[str, Any] | None = None) -> str | None:
    """A digest of the recipe, every fragment its defaults list loads (wherever it lives), the
    overrides and the env vars they interpolate; None when composing cannot be remembered safely
    (an override choosing a config group, a defaults entry the resolver does not follow)."""
    comp = composition(path, overrides, known)
    groups = [o for o in overrides if (path.resolve().parent / o.split("=", 1)[0].lstrip("+~")).is_dir()]
    if not comp.exact or groups:
        return None
    try:
        return memo_key(comp, overrides)
    except OSError:
        return None


def remembered(path: str | Path, overrides: list[str], cache_dir: Path | None) -> bool:
    """True when `cache_dir` holds this composition (recipe bytes, fragments, overrides): the recipe
    was built before as it is now, so a build of it is likely a no-op. Never raises: a recipe that
    cannot be read is simply not remembered (composing it reports why)."""
    path = Path(path).resolve()
    if cache_dir is None or not path.is_file() or not (cache_dir / "resolved").is_dir():
        return False
    try:
        key = compose_key(path, list(overrides), read_json(cache_dir / "resolved" / "defaults.json") or {})
    except (RecipeError, OSError, ValueError):
        return False
    return bool(key) and (cache_dir / "resolved" / f"{key}.json").is_file()


def source_kind_hint(path: str | Path, overrides: list[str]) -> str | None:
    """The recipe's `source.kind` as its texts say (the last `source.kind=` override, else the recipe's
    own, else its fragments'), read without composing; None when none says. A hint for what to load
    ahead (graph.executors.workers), never the recipe's meaning: that is Hydra's composition."""
    from recipekit.recipe.yamlcheck import check_file

    for text in reversed(overrides):
        key, _, value = text.lstrip("+").partition("=")
        if key == "source.kind" and value:
            return value.strip()

    def kind_in(file: Path) -> str | None:
        data = check_file(file)
        kind = (data.get("source") or {}).get("kind") if isinstance(data, dict) else None
        return kind if isinstance(kind, str) else None

    try:  # the recipe's own word first: its fragments are read (and composed) only when it says nothing
        path = Path(path)
        return kind_in(path) or next(
            filter(None, map(kind_in, reversed(composition(path, list(overrides)).fragments))), None
        )
    except (RecipeError, OSError, ValueError, AttributeError):
        return None
