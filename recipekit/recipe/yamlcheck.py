"""Check a recipe's YAML text before Hydra/OmegaConf parses it: limits, duplicates, one clear line.

Hydra and OmegaConf recurse over nesting, expand aliases into copies and raise their own errors
(tracebacks) on duplicate keys; a hostile or broken file must not reach them. Every check here runs
on bounded input: the size is checked from `stat` before reading, the depth and the expanded size
of aliases from PyYAML's event stream (which does not recurse) before any node tree is built.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from recipekit.core.errors import RecipeError

MAX_BYTES = 1 << 20
"""A recipe (or fragment) larger than 1 MiB is refused before it is read: real ones are ~1 KiB."""
MAX_DEPTH = 32
"""Nesting of mappings/lists; recipes need about 5."""
MAX_NODES = 100_000
"""Values after expanding aliases (`*name` counts the size of what it names): stops alias bombs."""
MAX_SCALAR = 10_000
"""Characters in one value (a path, a name, a number)."""
ALLOWED_CONTROL = "\t\n\r"


def _where(mark: Any) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "unknown position"


def read_text(path: Path) -> str:
    """The file's text, after the size limit (from stat) and the encoding check."""
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise RecipeError(str(path), "", f"recipe is {size} bytes; expected at most {MAX_BYTES} (1 MiB)")
        with open(path, "rb") as fh:
            raw = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise RecipeError(str(path), "", f"cannot read recipe: {exc.strerror or exc}") from None
    if len(raw) > MAX_BYTES:
        raise RecipeError(str(path), "", f"recipe is over {MAX_BYTES} bytes (1 MiB); expected at most that")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise RecipeError(str(path), "", f"expected UTF-8 text; byte {exc.start} (line {line}) is not") from None


def _control_char(text: str) -> int | None:
    for i, ch in enumerate(text):
        code = ord(ch)
        if (code < 32 and ch not in ALLOWED_CONTROL) or 0x7F <= code <= 0x9F or 0xD800 <= code <= 0xDFFF:
            return i
    return None


def _line_col(text: str, index: int) -> str:
    line = text.count("\n", 0, index) + 1
    return f"line {line}, column {index - (text.rfind(chr(10), 0, index) + 1) + 1}"


def check_text(text: str, file: str) -> Any:
    """The plain data of one recipe document, or RecipeError naming the file, the key path and the limit."""
    import yaml

    bad = _control_char(text)
    if bad is not None:
        clean = text[:bad] + " " + text[bad + 1 :]
        raise RecipeError(
            file,
            key_path_at(clean, bad),
            f"control character U+{ord(text[bad]):04X} at {_line_col(text, bad)}; expected printable text "
            "(tabs and line breaks are the only control characters YAML allows)",
        )
    try:
        _check_events(text, file)
        return _compose(text, file)
    except yaml.constructor.ConstructorError as exc:
        mark = exc.problem_mark
        key = key_path_at(text, mark.index) if mark is not None else ""
        raise RecipeError(file, key, f"YAML error at {_where(mark)}: {exc.problem}; expected plain values") from None
    except yaml.MarkedYAMLError as exc:
        where = _where(exc.problem_mark)
        raise RecipeError(file, "", f"YAML syntax error at {where}: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise RecipeError(file, "", f"YAML error: {str(exc).splitlines()[0]}") from None


def _check_events(text: str, file: str) -> None:
    """Depth, expanded size and value length from the event stream; one document only."""
    import yaml

    walk = _EventWalk(file)
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        walk.step(event)


class _EventWalk:
    """The running totals of `_check_events`: open collections' expanded sizes, anchors' sizes."""

    def __init__(self, file: str) -> None:
        self.file, self.docs, self.total = file, 0, 0
        self.sizes: list[int] = []  # expanded size of each open collection
        self.open_anchors: list[str | None] = []
        self.anchors: dict[str, int] = {}

    def step(self, event: Any) -> None:
        from yaml import events as ev

        if isinstance(event, ev.DocumentStartEvent):
            self.docs += 1
            if self.docs > 1:
                raise RecipeError(self.file, "", f"a second YAML document at {_where(event.start_mark)}; expected one")
        elif isinstance(event, ev.CollectionStartEvent):
            if len(self.sizes) >= MAX_DEPTH:
                where = _where(event.start_mark)
                raise RecipeError(
                    self.file, "", f"nesting deeper than {MAX_DEPTH} levels at {where}; expected at most that"
                )
            self.sizes.append(1)
            self.open_anchors.append(event.anchor)
        elif isinstance(event, ev.CollectionEndEvent):
            size, anchor = self.sizes.pop(), self.open_anchors.pop()
            if anchor:
                self.anchors[anchor] = size
            self._add_to_parent(size)
        elif isinstance(event, (ev.ScalarEvent, ev.AliasEvent)):
            size = _node_size(event, self.anchors, self.file)
            if isinstance(event, ev.ScalarEvent) and event.anchor:
                self.anchors[event.anchor] = size
            self.total += size
            if self.total > MAX_NODES:
                raise RecipeError(
                    self.file,
                    "",
                    f"more than {MAX_NODES} values once aliases are expanded (at {_where(event.start_mark)}); "
                    "expected a recipe, not an alias bomb",
                )
            self._add_to_parent(size)

    def _add_to_parent(self, size: int) -> None:
        if self.sizes:
            self.sizes[-1] += size


def _node_size(event: Any, anchors: dict[str, int], file: str) -> int:
    from yaml import events as ev

    if isinstance(event, ev.AliasEvent):
        if event.anchor not in anchors:
            raise RecipeError(file, "", f"alias *{event.anchor} at {_where(event.start_mark)} names no anchor")
        return anchors[event.anchor]
    if isinstance(event, ev.ScalarEvent) and len(event.value) > MAX_SCALAR:
        raise RecipeError(
            file,
            "",
            f"a value of {len(event.value)} characters at {_where(event.start_mark)}; expected at most {MAX_SCALAR}",
        )
    return 1 if isinstance(event, ev.ScalarEvent) else 0


class _Duplicate(Exception):
    def __init__(self, key: Any, first: Any, second: Any) -> None:
        self.key, self.first, self.second = key, first, second


class _NoDuplicatesLoader:
    """Mixin for SafeLoader: a key given twice in one mapping is an error (YAML forbids it; PyYAML keeps the last)."""

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            key = key_node.value if key_node.tag.endswith(":str") else self.construct_object(key_node, deep=True)
            try:
                if key in seen and key != "<<":
                    raise _Duplicate(key, seen[key], key_node.start_mark)
            except TypeError:
                continue  # an unhashable key: the constructor reports it
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


def _compose(text: str, file: str) -> Any:
    import yaml

    loader = type("Loader", (_NoDuplicatesLoader, yaml.SafeLoader), {})
    try:
        return yaml.load(text, Loader=loader)  # noqa: S506 - a SafeLoader subclass
    except _Duplicate as dup:
        raise RecipeError(
            file,
            key_path_at(text, dup.second.index) or str(dup.key),
            f"key given twice in one mapping (line {dup.first.line + 1} and line {dup.second.line + 1}); "
            "expected each key once",
        ) from None


def key_path_at(text: str, index: int) -> str:
    """The key path (`export.batch.max`, `fixes[2]`) of the value at character `index` ('' if none).

    Walks the composed node tree (no Python objects built): used after the depth check, or on text
    the caller made parseable."""
    import yaml

    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return ""
    path: list[Any] = []
    while node is not None:
        node = _child_at(node, index, path)
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _child_at(node: Any, index: int, path: list[Any]) -> Any:
    import yaml

    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if key.start_mark.index <= index < max(value.end_mark.index, key.end_mark.index + 1):
                path.append(key.value if isinstance(key, yaml.ScalarNode) else "?")
                return value
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            if item.start_mark.index <= index < max(item.end_mark.index, item.start_mark.index + 1):
                path.append(i)
                return item
    return None


def check_file(path: Path) -> Any:
    """`read_text` then `check_text`: the file's data, checked."""
    return check_text(read_text(path), str(path))
