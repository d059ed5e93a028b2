"""The layout, checked on every test run: the layers and no-import-circle contracts (import-linter),
no private module or name used across packages, test helpers as a package on pytest's pythonpath
(no sys.path edits), ruff's rules (the line limit among them)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from helpers.common import ROOT

PACKAGE = ROOT / "recipekit"


def _tool(name: str) -> str:
    exe = Path(sys.executable).with_name(name)
    assert exe.is_file(), f"{name} is not installed next to {sys.executable}: run scripts/setup.sh"
    return str(exe)


def test_layers_and_no_circle_contracts_are_kept():
    import tomllib

    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    assert {"layers", "acyclic_siblings"} <= {c["type"] for c in contracts}
    acyclic = next(c for c in contracts if c["type"] == "acyclic_siblings")
    assert acyclic["ancestors"] == ["recipekit"] and acyclic["depth"] >= 5  # every package, all the way down
    done = subprocess.run([_tool("lint-imports"), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


def _module(path: Path) -> tuple[str, str]:
    """(module name, its package) for a file under recipekit/."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    if parts[-1] == "__init__":
        name = ".".join(parts[:-1])
        return name, name
    return ".".join(parts), ".".join(parts[:-1])


def _imports(tree: ast.AST, package: str) -> list[tuple[str, str | None, int]]:
    """(imported module, imported name or None, line) for every recipekit import, relative ones resolved."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, None, node.lineno) for a in node.names if a.name.startswith("recipekit")]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            if base.startswith("recipekit"):
                out += [(base, a.name, node.lineno) for a in node.names]
    return out


def _owner(module: str) -> str:
    """The package that owns `module` (itself if it is a package)."""
    path = ROOT.joinpath(*module.split("."))
    return module if (path / "__init__.py").is_file() else module.rsplit(".", 1)[0]


def test_no_private_module_or_name_is_imported_from_another_package():
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name, package = _module(path)
        for module, what, line in _imports(ast.parse(path.read_text()), package):
            private = [p for p in module.split(".") if p.startswith("_") and p not in {"__init__", "__main__"}]
            owner = _owner(module) if not private else module.rsplit(".", 1)[0]
            inside = package == owner or package.startswith(owner + ".")
            if (private or (what and what.startswith("_") and what != "__version__")) and not inside:
                bad.append(f"{path.relative_to(ROOT)}:{line}: {module}{'.' + what if what else ''}")
    assert not bad, "private modules or names used outside their package:\n" + "\n".join(bad)


def test_test_helpers_are_a_package_on_pytests_pythonpath():
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert "tests" in config["pythonpath"] and (ROOT / "tests" / "helpers" / "__init__.py").is_file()
    edits = [
        f"{p.relative_to(ROOT)}:{i}"
        for p in sorted((ROOT / "tests").rglob("*.py"))
        if p.name != "test_layout.py"
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if "sys.path" in line
    ]
    assert not edits, f"tests edit sys.path instead of importing from helpers: {edits}"


def test_ruff_check_is_clean():
    """ruff's rules as pyproject.toml configures them, the 120-column line limit among them."""
    done = subprocess.run(
        [_tool("ruff"), "check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
