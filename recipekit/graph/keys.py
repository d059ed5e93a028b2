"""Step keys: sha256 of canonical JSON of everything that can change a step's output. Full hashes."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical(obj: Any) -> str:
    """Canonical JSON: sorted keys, no whitespace, tuples as lists."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def digest_of(obj: Any) -> str:
    return hashlib.sha256(canonical(obj).encode()).hexdigest()


def step_key(kind: str, plugin: str, version: str, config: Any, inputs: dict[str, Any], tools: dict[str, Any]) -> str:
    """The cache key of one step.

    `config`: the recipe section the step reads; `inputs`: digests of input artifacts (upstream
    entries' file digests, weight files); `tools`: versions of every tool that shapes the output.
    """
    return digest_of(
        {"kind": kind, "plugin": plugin, "version": version, "config": config, "inputs": inputs, "tools": tools}
    )
