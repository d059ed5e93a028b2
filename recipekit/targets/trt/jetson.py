"""trt-jetson: a self-contained bundle that builds and checks the TensorRT engine on the Jetson itself.

Built here without a GPU. The engine cannot be built off-device, so the bundle ships what the
device needs to build it and to prove it right at every batch size the profiles allow (field
note 2: batch 1 works, batch 4 crashes). `recipekit device-check BUNDLE --backend ort` runs the
bundle's own check program here; on the device `python3 check.py --backend trt` does the same
with TensorRT. The trt-lint runs first: a model TensorRT's parser would refuse is never bundled.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from recipekit.targets.base import BuildResult, Target, TargetContext
from recipekit.targets.trt.engine import TrtConfig

ENGINE, CACHE, CALIB_CACHE = "model.engine", "timing.cache", "calibration.cache"


class TrtJetsonConfig(TrtConfig):
    trtexec: str = Field("/usr/src/tensorrt/bin/trtexec", description="trtexec path on the device (JetPack's default)")


class TrtJetsonTarget(Target):
    name: ClassVar[str] = "trt-jetson"
    version: ClassVar[str] = "2"
    Config = TrtJetsonConfig
    default_gates: ClassVar[tuple[str, ...]] = ("trt-lint", "parity", "batch-consistency", "shape-sweep")
    reads_samples: ClassVar[bool] = True  # INT8 calibration images
    reads_gates: ClassVar[tuple[str, ...]] = ("trt-lint", "parity")  # the lint it runs, the tolerances it ships
    recipe_reads: ClassVar[tuple[str, ...]] = ("name",)  # the README names the recipe
    uses_golden: ClassVar[bool] = True  # the bundle ships the source's reference outputs

    def build(self, onnx_path: Path, out: Path, ctx: TargetContext) -> BuildResult:
        import onnx

        from recipekit.targets.trt import bundle as jb
        from recipekit.targets.trt.lint import require_lint
        from recipekit.targets.trt.profiles import cases, shape_profiles

        lint = require_lint(onnx_path, ctx.recipe, self.name)
        model = onnx.load(str(onnx_path), load_external_data=False)
        profiles = shape_profiles(model, ctx.recipe, self.config.profiles)
        from recipekit.onnx.external import copy_model

        copy_model(onnx_path, out / "model.onnx")  # with its external data files: check.py loads both
        golden = ctx.golden()
        index, missing = jb.write_golden(out, golden, cases(profiles, ctx.recipe))
        calib = self._calibration(out, ctx, profiles)
        line = self._commands(out, profiles, calib)
        spec = self._spec(ctx, model, golden.output_names, index, calib)
        jb.write_json(
            out / "profiles.json",
            {
                "input": profiles[0].input,
                "layout": ctx.recipe.input.preprocess.layout,
                "profiles": [p.to_json() for p in profiles],
            },
        )
        jb.write_json(out / "bundle.json", spec)
        self._copy_checker(out)
        jb.write_readme(
            out,
            name=ctx.recipe.name,
            target=self.name,
            engine=ENGINE,
            cache=CACHE,
            n_profiles=len(profiles),
            plural="s" if len(profiles) > 1 else "",
            extra="- calibration/: INT8 calibration batches (check.py --backend trt writes calibration.cache)\n"
            if calib
            else "",
        )
        sums = jb.write_sums(out)
        manifest = {
            "bundle": sorted(sums),
            "sha256": sums,
            "profiles": [p.to_json() for p in profiles],
            "cases": [{k: c[k] for k in ("shape", "batch", "profile")} for c in index],
            "missing_golden_shapes": missing,
            "trtexec": line,
            "trt_lint": lint.status,
            "precision": {"fp16": self.config.fp16, "int8": self.config.int8},
        }
        return BuildResult("model.onnx", manifest)

    def _calibration(self, out: Path, ctx: TargetContext, profiles: list[Any]) -> str | None:
        from recipekit.targets.trt import bundle as jb
        from recipekit.targets.trt.engine import calibration_batches

        if not self.config.int8:
            return None
        return jb.write_calibration(out, calibration_batches(ctx, profiles[0].opt, self.config.calibration))

    def _commands(self, out: Path, profiles: list[Any], calib: str | None) -> str:
        from recipekit.targets.trt import bundle as jb
        from recipekit.targets.trt.profiles import shell_line, trtexec_command

        cfg = self.config
        argv = trtexec_command(
            profiles,
            trtexec=cfg.trtexec,
            onnx="model.onnx",
            engine=ENGINE,
            fp16=cfg.fp16,
            int8=cfg.int8,
            workspace_mib=cfg.workspace_mib,
            timing_cache=CACHE,
            calib=CALIB_CACHE if calib else None,
        )
        line = shell_line(argv)
        jb.write_commands(out, line)
        return line

    def _spec(
        self, ctx: TargetContext, model: Any, outputs: list[str], index: list[dict], calib: str | None
    ) -> dict[str, Any]:
        """bundle.json: everything check.py reads (it imports nothing from recipekit)."""
        from recipekit.targets.trt.profiles import input_of, parity_tolerances, shape_profiles

        cfg, recipe = self.config, ctx.recipe
        return {
            "format": 1,
            "recipe": recipe.name,
            "model": "model.onnx",
            "input": input_of(model)[0],
            "dtype": recipe.input.dtype,
            "outputs": outputs,
            "output_kinds": dict(ctx.output_kinds),
            "tolerances": parity_tolerances(recipe, self.name, cfg.fp16),
            "cases": index,
            "profiles": [p.to_json() for p in shape_profiles(model, recipe, cfg.profiles)],
            "precision": {"fp16": cfg.fp16, "int8": cfg.int8},
            "workspace_mib": cfg.workspace_mib,
            "engine": ENGINE,
            "timing_cache": CACHE,
            "calibration": calib,
            "calibration_cache": CALIB_CACHE,
        }

    @staticmethod
    def _copy_checker(out: Path) -> None:
        import recipekit.onnx.compare

        here = Path(__file__).with_name("check.py")
        shutil.copyfile(here, out / "check.py")
        shutil.copyfile(Path(recipekit.onnx.compare.__file__), out / "compare.py")
