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

from pydantic import Field

from recipekit.core.plugin import Strict
from recipekit.recipe.schema import Batch
from recipekit.targets.base import BuildResult, Target, TargetContext

if TYPE_CHECKING:
    import numpy as np

    from recipekit.onnx.runtime import Runner

ENGINE = "model.engine"


class TrtConfig(Strict):
    fp16: bool = Field(False, description="allow FP16 kernels (BuilderFlag.FP16 / trtexec --fp16)")
    int8: bool = Field(
        False, description="allow INT8 kernels, calibrated on `calibration` images (entropy calibrator 2)"
    )
    workspace_mib: int = Field(1024, ge=16, description="builder workspace memory pool limit, MiB")
    profiles: list[Batch] = Field(
        default_factory=list,
        description="batch optimization profiles {min, opt, max} (opt independent of max); default: one from export.batch",
    )
    calibration: list[str] = Field(
        default_factory=list,
        description="INT8 calibration images (paths relative to the recipe or 'package:file'); default: input.samples",
    )


class TrtTarget(Target):
    name: ClassVar[str] = "trt"
    version: ClassVar[str] = "1"
    Config = TrtConfig
    default_gates: ClassVar[tuple[str, ...]] = ("trt-lint", "parity", "batch-consistency", "shape-sweep")
    reads_samples: ClassVar[bool] = True  # INT8 calibration images
    reads_gates: ClassVar[tuple[str, ...]] = ("trt-lint", "parity")
    resources: ClassVar[dict[str, float]] = {"trt": 1}  # the engine is built and run on a TensorRT GPU

    @classmethod
    def environment_key(cls) -> dict[str, Any]:
        """TensorRT and CUDA versions, GPU name and compute capability; or {"unavailable": reason}."""
        from recipekit.targets.trt.build import probe

        return dict(probe())

    def build(self, onnx_path: Path, out: Path, ctx: TargetContext) -> BuildResult:
        import onnx

        from recipekit.targets.trt import build as _trt_build
        from recipekit.targets.trt.lint import require_lint
        from recipekit.targets.trt.profiles import shape_profiles, shell_line, trtexec_command

        lint = require_lint(onnx_path, ctx.recipe, self.name)
        env = _trt_build.require()
        cfg = self.config
        profiles = shape_profiles(onnx.load(str(onnx_path), load_external_data=False), ctx.recipe, cfg.profiles)
        cache = ctx.state_dir / f"timing-{_env_digest(env)}.cache"
        calib = calibration_batches(ctx, profiles[0].opt, cfg.calibration) if cfg.int8 else []
        engine = _trt_build.build_engine(
            onnx_path,
            profiles,
            fp16=cfg.fp16,
            int8=cfg.int8,
            workspace_mib=cfg.workspace_mib,
            timing_cache=cache,
            calibration=calib,
        )
        (out / ENGINE).write_bytes(engine)
        argv = trtexec_command(
            profiles,
            trtexec="trtexec",
            onnx="model.onnx",
            engine=ENGINE,
            fp16=cfg.fp16,
            int8=cfg.int8,
            workspace_mib=cfg.workspace_mib,
            timing_cache="timing.cache",
        )
        manifest = {
            "engine": {
                "file": ENGINE,
                "format": "plain serialized TensorRT engine (nothing prepended)",
                "sha256": hashlib.sha256(engine).hexdigest(),
                "bytes": len(engine),
            },
            "profiles": [p.to_json() for p in profiles],
            "precision": {"fp16": cfg.fp16, "int8": cfg.int8},
            "workspace_mib": cfg.workspace_mib,
            "environment": env,
            "trtexec_equivalent": shell_line(argv),
            "trt_lint": lint.status,
            "calibration_images": sum(b.shape[0] for b in calib),
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


def calibration_batches(ctx: TargetContext, opt: tuple[int, ...], images: list[str]) -> list[np.ndarray]:
    """The calibration images preprocessed as the recipe declares, grouped into opt-shaped batches."""
    import numpy as np

    from recipekit.core.errors import RecipeError
    from recipekit.onnx.preprocess import image_tensor, resolve_sample

    recipe = ctx.recipe
    specs = images or recipe.input.samples
    if not specs:
        raise RecipeError(
            recipe.base_dir, "targets.trt.calibration", "int8 needs calibration images (or input.samples)"
        )
    pre, layout = recipe.input.preprocess, recipe.input.preprocess.layout
    hw = (opt[2], opt[3]) if layout == "nchw" else (opt[1], opt[2])
    tensors = [image_tensor(resolve_sample(s, Path(recipe.base_dir)), hw, pre) for s in specs]
    n, k = opt[0], len(tensors)
    tensors = [tensors[i % k] for i in range(-(-k // n) * n)]  # fill the last batch cyclically
    return [np.ascontiguousarray(np.concatenate(tensors[i : i + n])) for i in range(0, len(tensors), n)]
