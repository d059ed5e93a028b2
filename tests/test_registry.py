"""Every registry entry loads, carries the name it is registered under, and documents its options."""

from __future__ import annotations

import pytest

from recipekit.core.plugin import Strict
from recipekit.fixes import FIXES
from recipekit.gates import GATES
from recipekit.sources import SOURCES
from recipekit.targets import TARGETS

ENTRIES = [(reg, name) for reg in (SOURCES, FIXES, TARGETS, GATES) for name in reg.names()]


@pytest.mark.parametrize(("registry", "name"), ENTRIES, ids=[f"{r.role}:{n}" for r, n in ENTRIES])
def test_entry_loads_with_its_name_and_a_documented_config(registry, name):
    cls = registry.get(name)
    assert cls.name == name
    assert issubclass(cls.Config, Strict)
    undocumented = [f for f, info in cls.Config.model_fields.items() if not info.description and f != "kind"]
    assert not undocumented, f"{name}: fields without description: {undocumented}"


def test_names_are_kebab_case():
    for _registry, name in ENTRIES:
        assert name == name.lower() and "_" not in name, name


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(KeyError, match="did you mean 'parity'"):
        GATES.get("parit")


def test_importing_every_plugin_imports_nothing_heavy():
    import subprocess
    import sys

    code = (
        "import sys\nfrom recipekit.fixes import FIXES\nfrom recipekit.gates import GATES\n"
        "from recipekit.sources import SOURCES\nfrom recipekit.targets import TARGETS\n"
        "for r in (FIXES, GATES, SOURCES, TARGETS):\n    [r.get(n) for n in r.names()]\n"
        "print(','.join(m for m in ('torch', 'onnxruntime', 'ultralytics', 'tensorrt', 'mmpose', 'onnx') if m in "
        "sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""
