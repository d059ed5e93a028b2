"""ort: the fixed ONNX for ONNX Runtime, checked by onnx.checker, with its validated session options."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field

from recipekit.core.plugin import Strict
from recipekit.targets.base import BuildResult, Target, TargetContext


class OrtConfig(Strict):
    providers: list[str] = Field(
        default_factory=lambda: ["CPUExecutionProvider"],
        description="execution providers the gates validate under (CPU here)",
    )


class OrtTarget(Target):
    name: ClassVar[str] = "ort"
    version: ClassVar[str] = "1"
    Config = OrtConfig
    default_gates: ClassVar[tuple[str, ...]] = ("parity",)

    def build(self, onnx_path: Path, out: Path, ctx: TargetContext) -> BuildResult:
        import onnx

        from recipekit.onnx.runtime import session_options

        onnx.checker.check_model(str(onnx_path), full_check=True)
        from recipekit.onnx.external import copy_model

        copy_model(onnx_path, out / "model.onnx")  # with its external data files, if any
        return BuildResult(
            "model.onnx",
            {
                "runtime": "onnxruntime",
                "session_options": session_options(),
                "checker": "onnx.checker.check_model(full_check=True) passed",
            },
        )
