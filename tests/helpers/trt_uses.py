"""Every TensorRT name a module uses, per TensorRT release, read from its source with `ast`.

Tracks what holds TensorRT objects: the module (`import tensorrt as trt`, a parameter or attribute
named `trt`), objects made by its classes (`trt.Builder(...)`) and what their methods return
(RETURNS), and records each attribute read on them as (class, name). Branches on the TensorRT
version (`gen == "8"`, `major >= 11`, `int(trt.__version__.split(".")[0]) >= 10`) are followed only
where they can run on the release checked, so version-specific calls are checked against the
releases that take that branch.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

RETURNS = {
    "create_network": "INetworkDefinition",
    "create_builder_config": "IBuilderConfig",
    "create_optimization_profile": "IOptimizationProfile",
    "build_serialized_network": "IHostMemory",
    "create_timing_cache": "ITimingCache",
    "get_timing_cache": "ITimingCache",
    "deserialize_cuda_engine": "ICudaEngine",
    "create_execution_context": "IExecutionContext",
}
"""What the TensorRT methods the code calls return (their pybind11 signatures)."""
NAMED = {
    "builder": "Builder",
    "network": "INetworkDefinition",
    "parser": "OnnxParser",
    "profile": "IOptimizationProfile",
    "engine": "ICudaEngine",
    "context": "IExecutionContext",
    "ctx": "IExecutionContext",
}
"""The TensorRT modules' naming convention: a plain name (or self.<name>) of these holds that class
(e.g. what a helper returns, or a parameter), so the calls on it are checked too."""


@dataclass(frozen=True)
class Use:
    where: str
    owner: str  # "tensorrt" (the module), a class name, or "?" (a TensorRT object of unknown class)
    name: str


def _is_major(node: ast.AST) -> bool:
    """int(trt.__version__.split(".")[0]) or a name `major`."""
    if isinstance(node, ast.Name):
        return node.id == "major"
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "int"
        and ("__version__" in ast.unparse(node))
    )


def _const(node: ast.AST, major: int) -> object:
    if isinstance(node, ast.Constant):
        return node.value
    if _is_major(node):
        return major
    if isinstance(node, ast.Name) and node.id == "gen":
        return str(major)
    return None


def truth(test: ast.AST, major: int) -> bool | None:
    """True/False when the test only depends on the TensorRT version, else None (either way)."""
    if isinstance(test, ast.BoolOp):
        vals = [truth(v, major) for v in test.values]
        if isinstance(test.op, ast.And):
            return False if False in vals else (True if all(v is True for v in vals) else None)
        return True if True in vals else (False if all(v is False for v in vals) else None)
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        v = truth(test.operand, major)
        return None if v is None else not v
    if isinstance(test, ast.Compare) and len(test.ops) == 1:
        a, b = _const(test.left, major), _const(test.comparators[0], major)
        if a is None or b is None:
            return None
        op = test.ops[0]
        if isinstance(op, ast.In | ast.NotIn) and isinstance(test.comparators[0], ast.Tuple):
            items = [_const(e, major) for e in test.comparators[0].elts]
            return (a in items) == isinstance(op, ast.In)
        ops = {ast.Eq: a == b, ast.NotEq: a != b, ast.Lt: a < b, ast.LtE: a <= b, ast.Gt: a > b, ast.GtE: a >= b}
        return ops.get(type(op))
    return None


class _Walker:
    def __init__(self, file: str, major: int) -> None:
        self.file, self.major, self.uses = file, major, []
        self.types: dict[str, str] = {}

    def kind(self, node: ast.AST) -> str | None:
        """The TensorRT owner an expression holds: "tensorrt", a class, "?" or None (not TensorRT)."""
        if isinstance(node, ast.Name | ast.Attribute) and ast.unparse(node) in self.types:
            return self.types[ast.unparse(node)]
        if isinstance(node, ast.Name) and node.id == "trt" or ast.unparse(node) == "self.trt":
            return "tensorrt"
        name = node.id if isinstance(node, ast.Name) else ast.unparse(node).removeprefix("self.")
        if isinstance(node, ast.Name | ast.Attribute) and name in NAMED:
            return NAMED[name]
        if isinstance(node, ast.Call):
            func = node.func
            owner = self.kind(func.value) if isinstance(func, ast.Attribute) else None
            if owner == "tensorrt":
                return func.attr
            if owner is not None:
                return RETURNS.get(func.attr, "?")
        if isinstance(node, ast.Attribute):
            owner = self.kind(node.value)
            if owner == "tensorrt":
                return None if node.attr == "__version__" else node.attr
            if owner is not None:
                return "?"
        return None

    def record(self, node: ast.Attribute) -> None:
        owner = self.kind(node.value)
        if owner is not None and not node.attr.startswith("__") or node.attr == "__version__" and owner:
            self.uses.append(Use(f"{self.file}:{node.lineno}", owner, node.attr))

    def expr(self, node: ast.AST) -> None:
        for sub in ast.walk(node):
            if isinstance(sub, ast.Attribute):
                self.record(sub)

    def assign(self, node: ast.Assign | ast.AnnAssign) -> None:
        value = node.value
        if value is None:
            return
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        held = self.kind(value)
        for t in targets:
            names = t.elts if isinstance(t, ast.Tuple | ast.List) else [t]
            for n in names:  # a tuple target holds no single TensorRT object: forget what it held
                key = ast.unparse(n)
                if held is not None and n is t:
                    self.types[key] = held
                else:
                    self.types.pop(key, None)

    def body(self, stmts: list[ast.stmt]) -> bool:
        """Walk statements; True when the block always returns (the code after it is dead)."""
        for stmt in stmts:
            if self.stmt(stmt):
                return True
        return False

    def stmt(self, stmt: ast.stmt) -> bool:  # noqa: C901 - one branch per statement kind
        if isinstance(stmt, ast.If):
            live = truth(stmt.test, self.major)
            self.expr(stmt.test)
            ends_a = self.body(stmt.body) if live is not False else False
            ends_b = self.body(stmt.orelse) if live is not True else False
            return (live is True and ends_a) or (live is False and ends_b) or (ends_a and ends_b and bool(stmt.orelse))
        if isinstance(stmt, ast.Import | ast.ImportFrom):
            for alias in stmt.names:
                if (getattr(stmt, "module", None) or alias.name) == "tensorrt" or alias.name == "tensorrt":
                    self.types[alias.asname or alias.name] = "tensorrt"
            return False
        if isinstance(stmt, ast.FunctionDef | ast.ClassDef):
            for base in getattr(stmt, "bases", []):
                self.expr(base)
            self.body(stmt.body)
            return False
        if isinstance(stmt, ast.Assign | ast.AnnAssign | ast.AugAssign):
            for part in [stmt.value, *getattr(stmt, "targets", [getattr(stmt, "target", None)])]:
                self.expr(part) if part is not None else None  # attributes written are checked too
            self.assign(stmt) if not isinstance(stmt, ast.AugAssign) else None
            return False
        for field in ("body", "orelse", "finalbody", "handlers"):
            for block in [getattr(stmt, field, None)]:
                if block:
                    for sub in block:
                        self.stmt(sub) if isinstance(sub, ast.stmt) else self.body(sub.body)
        heads = [getattr(stmt, f) for f in ("value", "test", "iter", "items", "exc") if getattr(stmt, f, None)]
        for h in heads:
            for part in h if isinstance(h, list) else [h]:
                self.expr(part)
        return isinstance(stmt, ast.Return | ast.Raise)


def uses(path: Path, major: int) -> list[Use]:
    """Every TensorRT name `path` reads on a release with this major version."""
    tree = ast.parse(path.read_text())
    walker = _Walker(path.name, major)
    walker.body(tree.body)
    return sorted(set(walker.uses), key=lambda u: (u.where, u.owner, u.name))
