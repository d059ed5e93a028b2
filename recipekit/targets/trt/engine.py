"""trt: a TensorRT engine built with TensorRT's Python API, then gated against the PyTorch source.

The `.engine` file is the plain serialized engine (trtexec and DeepStream load it as is: peers that
prepend JSON metadata break both); profiles, precision and environment go into the manifest. An
engine is tied to the GPU and TensorRT version it was built on, so `environment_key()` is part of
the step key. Without tensorrt or a CUDA GPU the build raises Unavailable (status `unavailable`).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field, model_validator

from recipekit.core.plugin import Strict
from recipekit.recipe.schema import Batch
from recipekit.targets.base import BuildResult, Target, TargetContext

if TYPE_CHECKING:
    from recipekit.onnx.runtime import Runner

ENGINE = "model.engine"


RETIRED = {
    "fp16": "set export.precision: fp16 (TensorRT takes precision from the ONNX)",
    "int8": "set export.precision: int8 (a QDQ ONNX; TensorRT 11 has no implicit INT8 calibration)",
    "calibration": "set input.calibration (the precision step calibrates the QDQ ONNX)",
}


class TrtConfig(Strict):
    workspace_mib: int = Field(1024, ge=16, description="builder workspace memory pool limit, MiB")
    profiles: list[Batch] = Field(
        default_factory=list,
        description="batch optimization profiles {min, opt, max} (opt independent of max); default: one from "
        "export.batch",
    )

    @model_validator(mode="before")
    @classmethod
    def _retired(cls, data: Any) -> Any:
        for key in RETIRED if isinstance(data, dict) else ():
            if key in data:
                raise ValueError(f"{key} was removed: {RETIRED[key]}")
        return data


class TrtTarget(Target):
    name: ClassVar[str] = "trt"
    version: ClassVar[str] = "1"
    Config = TrtConfig
    default_gates: ClassVar[tuple[str, ...]] = ("trt-lint", "parity", "batch-consistency", "shape-sweep")
    reads_gates: ClassVar[tuple[str, ...]] = ("trt-lint", "parity")
    resources: ClassVar[dict[str, float]] = {"trt": 1}  # the engine is built and run on a TensorRT GPU
    int8_activations: ClassVar[str | None] = "int8"  # explicit quantization takes symmetric QDQ only

    @classmethod
    def environment_key(cls) -> dict[str, Any]:
        """TensorRT and CUDA versions, GPU name and compute capability; or {"unavailable": reason}."""
        from recipekit.targets.trt.build import probe

        return dict(probe())

    def build(self, onnx_path: Path, out: Path, ctx: TargetContext) -> BuildResult:
        import onnx

        from recipekit.precision import graph_precision
        from recipekit.targets.trt import build as _trt_build
        from recipekit.targets.trt.lint import require_lint
        from recipekit.targets.trt.profiles import generation, shape_profiles, shell_line, trtexec_command

        lint = require_lint(onnx_path, ctx.recipe, self.name)
        env = _trt_build.require()
        cfg = self.config
        model = onnx.load(str(onnx_path), load_external_data=False)
        profiles, precision = shape_profiles(model, ctx.recipe, cfg.profiles), graph_precision(model)
        cache = ctx.state_dir / f"timing-{_env_digest(env)}.cache"
        engine = _trt_build.build_engine(
            onnx_path, profiles, precision=precision, workspace_mib=cfg.workspace_mib, timing_cache=cache
        )
        (out / ENGINE).write_bytes(engine)
        common = {
            "trtexec": "trtexec",
            "onnx": "model.onnx",
            "precision": precision,
            "workspace_mib": cfg.workspace_mib,
        }
        argv = trtexec_command(
            profiles, engine=ENGINE, timing_cache="timing.cache", gen=generation(env["tensorrt"]), **common
        )
        manifest = {
            "engine": {
                "file": ENGINE,
                "format": "plain serialized TensorRT engine (nothing prepended)",
                "sha256": hashlib.sha256(engine).hexdigest(),
                "bytes": len(engine),
            },
            "profiles": [p.to_json() for p in profiles],
            "precision": precision,
            "strongly_typed": _trt_build.strongly_typed(env["tensorrt"], precision),
            "workspace_mib": cfg.workspace_mib,
            "environment": env,
            "trtexec_equivalent": shell_line(argv),
            "trt_lint": lint.status,
        }
        return BuildResult(ENGINE, manifest)

    def runner(self, artifact_dir: Path, result: BuildResult, ctx: TargetContext) -> Runner:
        from recipekit.targets.trt.build import TrtRunner, require

        require()
        return TrtRunner(artifact_dir / result.artifact, result.manifest.get("profiles", []))


def _env_digest(env: dict[str, Any]) -> str:
    """The timing cache is only valid for one TensorRT version and GPU: one file per environment."""
    keys = ("tensorrt", "gpu", "compute_capability", "cuda_driver")
    return hashlib.sha256(repr([env.get(k) for k in keys]).encode()).hexdigest()
