"""Load a recipe: Hydra compose (defaults list + overrides) -> plain dict -> validated Recipe."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from recipekit.core.errors import RecipeError
from recipekit.core.plugin import Strict
from recipekit.recipe.errors import from_validation, key_path
from recipekit.recipe.fragments import compose_key, read_json
from recipekit.recipe.schema import MAX_NAME, NAME_RE, Export, FixEntry, Input, Recipe, TargetEntry


class RawRecipe(BaseModel):
    """First pass: the fixed sections strictly; plugin sections as plain mappings."""

    model_config = ConfigDict(extra="forbid")
    name: str
    source: dict[str, Any]
    input: Input = Field(default_factory=Input)
    export: Export = Field(default_factory=Export)
    fixes: list[Any] = Field(default_factory=list)  # each item checked by _fix_entry, with its own message
    targets: dict[str, dict[str, Any] | None]
    gates: dict[str, dict[str, Any] | None] = Field(default_factory=dict)


MAX_OVERRIDE = 10_000
"""Characters in one command-line override (values are checked like the recipe's: depth, length)."""


def _fragment_files(path: Path, data: Any) -> list[Path]:
    """The recipe folder's files a `defaults:` list names (`_base/yolo`, `{group: option}`), where they exist."""
    entries = data.get("defaults") if isinstance(data, dict) else None
    out = []
    for entry in entries if isinstance(entries, list) else []:
        names = (
            [entry]
            if isinstance(entry, str)
            else [f"{k}/{v}" for k, v in entry.items()]
            if isinstance(entry, dict)
            else []
        )
        for name in names:
            name = str(name).lstrip("/").removeprefix("override ").strip()
            candidate = path.parent / f"{name}.yaml"
            if name != "_self_" and candidate.is_file():
                out.append(candidate)
    return out


def check_yaml(path: Path, seen: set[Path] | None = None) -> None:
    """The recipe and every fragment it pulls in, checked as YAML before Hydra reads them
    (size, encoding, control characters, nesting, aliases, duplicate keys): RecipeError names file and key."""
    from recipekit.recipe.yamlcheck import check_file

    seen = seen if seen is not None else set()
    if path in seen:
        return
    seen.add(path)
    data = check_file(path)
    if not isinstance(data, dict):
        what = "an empty file" if data is None else f"a {type(data).__name__}"
        raise RecipeError(str(path), "", f"found {what}; expected a mapping (name:, source:, targets:, ...)")
    for fragment in _fragment_files(path, data):
        check_yaml(fragment.resolve(), seen)


def _check_override(path: Path, text: str) -> None:
    from recipekit.recipe.yamlcheck import MAX_DEPTH, _control_char

    depth = peak = 0
    for ch in text:
        depth += 1 if ch in "[{" else -1 if ch in "]}" else 0
        peak = max(peak, depth)
    why = (
        f"{len(text)} characters; expected at most {MAX_OVERRIDE}"
        if len(text) > MAX_OVERRIDE
        else f"nested {peak} levels deep; expected at most {MAX_DEPTH}"
        if peak > MAX_DEPTH
        else "a control character; expected printable text"
        if _control_char(text) is not None
        else ""
    )
    if why:
        raise RecipeError(str(path), text.partition("=")[0][:80].lstrip("+~"), f"override is {why}")


def _hydra_overrides(path: Path, overrides: list[str]) -> list[str]:
    """Check override grammar; let plain `a.b=v` set keys the recipe leaves to defaults (`++`).

    Unknown keys are still rejected afterwards by the schema, with a did-you-mean hint.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    out = []
    for text in overrides:
        _check_override(path, text)
        try:
            (parsed,) = OverridesParser.create().parse_overrides([text])
        except (HydraException, RecursionError) as exc:
            raise RecipeError(str(path), "", f"bad override '{text}': {str(exc).splitlines()[0]}") from None
        group_dir = path.parent / parsed.key_or_group.replace(".", "/")
        plain = not text.startswith(("+", "~")) and parsed.package is None and not group_dir.is_dir()
        out.append("++" + text if plain else text)
    return out


def compose(path: Path, overrides: list[str]) -> dict[str, Any]:
    """Hydra's compose API on the recipe's folder: `defaults:` fragments, then the overrides."""
    path = path.resolve()
    if not path.is_file():
        raise RecipeError(
            str(path), "", "recipe file not found" if not path.exists() else "expected a file, found a folder"
        )
    if path.suffix != ".yaml":
        raise RecipeError(
            str(path),
            "",
            "expected a .yaml file: recipes are composed by Hydra, which reads <name>.yaml; "
            f"rename it {path.stem}.yaml",
        )
    check_yaml(path)
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from recipekit.recipe.fragments import search_path

    hydra_overrides = _hydra_overrides(path, overrides)
    extra = ",".join(repr(f"file://{d}") for d in search_path(path)[1:])
    hydra_overrides.append(f"hydra.searchpath=[{extra}]")
    try:
        with initialize_config_dir(config_dir=str(path.parent), version_base=None):
            cfg = hydra_compose(config_name=path.stem, overrides=hydra_overrides)
        data = OmegaConf.to_container(cfg, resolve=True)
    except (HydraException, OmegaConfBaseException, ValueError, TypeError, KeyError, RecursionError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        key = str(getattr(exc, "full_key", "") or ("defaults" if "Could not load" in msg else ""))
        with_overrides = f" (with overrides {' '.join(overrides)})" if overrides else ""
        raise RecipeError(str(path), key, f"cannot compose recipe{with_overrides}: {msg}") from None
    if not isinstance(data, dict):
        raise RecipeError(str(path), "", "expected a mapping at the top level")
    data.pop("defaults", None)
    return data


def _plugin_config(file: str, registry: Any, name: str, data: Any, loc: tuple[Any, ...]) -> Strict:
    if name not in registry:
        raise RecipeError(file, key_path(loc), registry.unknown_message(name))
    cls = registry.get(name).Config
    try:
        return cls.model_validate(data or {})
    except ValidationError as exc:
        raise from_validation(file, exc, cls, loc) from None


def _fix_entry(file: str, item: str | dict[str, Any], index: int) -> FixEntry:
    from recipekit.fixes import FIXES, RETIRED

    if isinstance(item, str):
        name, options = item, {}
    elif isinstance(item, dict) and len(item) == 1 and isinstance(next(iter(item)), str):
        ((name, options),) = item.items()
    else:
        shown = repr(item) if len(repr(item)) < 80 else type(item).__name__
        raise RecipeError(file, f"fixes[{index}]", f"expected a fix name or {{name: {{options}}}}, got {shown}")
    if name not in FIXES:
        raise RecipeError(file, f"fixes[{index}]", RETIRED.get(name) or FIXES.unknown_message(name))
    return FixEntry(name=name, config=_plugin_config(file, FIXES, name, options, ("fixes", index, name)))


def _gates(file: str, data: dict[str, Any], loc: tuple[Any, ...]) -> dict[str, Strict]:
    from recipekit.gates import GATES

    return {name: _plugin_config(file, GATES, name, opts, (*loc, name)) for name, opts in data.items()}


def _target_entry(file: str, name: str, data: dict[str, Any] | None) -> TargetEntry:
    from recipekit.targets import TARGETS

    options = dict(data or {})
    gates = options.pop("gates", None) or {}
    if not isinstance(gates, dict):
        raise RecipeError(
            file, f"targets.{name}.gates", f"expected a mapping of gate name -> options, got {gates!r:.80}"
        )
    config = _plugin_config(file, TARGETS, name, options, ("targets", name))
    return TargetEntry(config=config, gates=_gates(file, gates, ("targets", name, "gates")))


def validate(data: dict[str, Any], file: str, base_dir: str = "") -> Recipe:
    """Both passes of validation; every failure is a RecipeError naming file and key path."""
    from recipekit.sources import SOURCES

    try:
        raw = RawRecipe.model_validate(data)
    except ValidationError as exc:
        raise from_validation(file, exc, RawRecipe) from None
    if len(raw.name) > MAX_NAME:
        raise RecipeError(
            file, "name", f"{len(raw.name)} characters; expected at most {MAX_NAME} (it names folders and files)"
        )
    if not NAME_RE.match(raw.name) or ".." in raw.name:
        raise RecipeError(
            file,
            "name",
            f"expected a plain file name (letters, digits, . _ -; no path separators or '..'), got {raw.name!r}",
        )
    if not raw.targets:
        raise RecipeError(file, "targets", "expected at least one target (e.g. ort: {})")
    kind = raw.source.get("kind")
    if not isinstance(kind, str):
        raise RecipeError(file, "source.kind", f"required; expected one of: {', '.join(SOURCES.names())}")
    return Recipe(
        name=raw.name,
        source=_plugin_config(file, SOURCES, kind, raw.source, ("source",)),
        input=raw.input,
        export=raw.export,
        fixes=[_fix_entry(file, item, i) for i, item in enumerate(raw.fixes)],
        targets={name: _target_entry(file, name, opts) for name, opts in raw.targets.items()},
        gates=_gates(file, raw.gates, ("gates",)),
        base_dir=base_dir,
        origin=file,
    )


def compose_cached(
    path: Path, overrides: list[str], cache_dir: Path | None
) -> tuple[dict[str, Any], Callable[[], None]]:
    """`compose`, remembered in the cache by everything it is made of: a no-op build skips Hydra.

    Returns the composed data and `remember()`, which writes the memo: call it only once the data
    validated (a rejected recipe writes nothing)."""
    from recipekit.cache.fs import atomic_write_text

    path = path.resolve()
    if not path.is_file():
        raise RecipeError(str(path), "", "recipe file not found")
    defaults_memo = cache_dir / "resolved" / "defaults.json" if cache_dir else None
    known = read_json(defaults_memo) or {}
    before = len(known)
    key = compose_key(path, overrides, known)
    memo = cache_dir / "resolved" / f"{key}.json" if cache_dir and key else None
    data = read_json(memo)
    if not isinstance(data, dict):
        data = compose(path, overrides)

    def remember() -> None:
        if memo and not memo.is_file():
            atomic_write_text(memo, json.dumps(data))
        if defaults_memo and len(known) != before:
            atomic_write_text(defaults_memo, json.dumps(known))

    return data, remember


def load_pending(
    path: str | Path, overrides: list[str] | tuple[str, ...] = (), cache_dir: Path | None = None
) -> tuple[Recipe, Callable[[], None]]:
    """The resolved recipe, and `remember()`, which writes its composition memo into `cache_dir`:
    call it once nothing else can reject the recipe (a rejected recipe writes nothing)."""
    path = Path(path)
    where = str(path) + (f" (with {' '.join(overrides)})" if overrides else "")
    data, save = compose_cached(path, list(overrides), cache_dir)
    return validate(data, where, str(path.resolve().parent)), save


def load(
    path: str | Path,
    overrides: list[str] | tuple[str, ...] = (),
    cache_dir: Path | None = None,
    remember: bool = True,
) -> Recipe:
    """The resolved recipe at `path` with Hydra-grammar `overrides` applied.

    With `cache_dir` the composition is remembered there (unless `remember` is False: `plan`)."""
    recipe, save = load_pending(path, overrides, cache_dir)
    if remember:
        save()
    return recipe
