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
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field

from recipekit.targets.base import BuildResult, Target, TargetContext
from recipekit.targets.trt.engine import TrtConfig, TrtTarget

if TYPE_CHECKING:
    from recipekit.onnx.golden import Golden

ENGINE, CACHE = "model.engine", "timing.cache"
GENERATIONS = ("8", "10", "11")


class TrtJetsonConfig(TrtConfig):
    trtexec: str = Field("/usr/src/tensorrt/bin/trtexec", description="trtexec path on the device (JetPack's default)")


class TrtJetsonTarget(Target):
    name: ClassVar[str] = "trt-jetson"
    version: ClassVar[str] = "2"
    Config = TrtJetsonConfig
    default_gates: ClassVar[tuple[str, ...]] = ("trt-lint", "parity", "batch-consistency", "shape-sweep")
    reads_gates: ClassVar[tuple[str, ...]] = ("trt-lint", "parity")  # the lint it runs, the tolerances it ships
    recipe_reads: ClassVar[tuple[str, ...]] = ("name",)  # the README names the recipe
    uses_golden: ClassVar[bool] = True  # the bundle ships the source's reference outputs
    refuses_precision = TrtTarget.refuses_precision

    def build(self, onnx_path: Path, out: Path, ctx: TargetContext) -> BuildResult:
        import onnx

        from recipekit.precision import graph_precision
        from recipekit.targets.trt import bundle as jb
        from recipekit.targets.trt.lint import require_lint
        from recipekit.targets.trt.profiles import cases, shape_profiles

        lint = require_lint(onnx_path, ctx.recipe, self.name)
        model = onnx.load(str(onnx_path), load_external_data=False)
        profiles, precision = shape_profiles(model, ctx.recipe, self.config.profiles), graph_precision(model)
        from recipekit.onnx.external import copy_model

        copy_model(onnx_path, out / "model.onnx")  # with its external data files: check.py loads both
        golden, source = precision_golden(ctx.golden(), out / "model.onnx", precision)
        index, missing = jb.write_golden(out, golden, cases(profiles, ctx.recipe))
        plans = self._plans(profiles, precision)
        jb.write_commands(out, plans)
        spec = self._spec(ctx, model, golden.output_names, index, profiles, precision)
        jb.write_json(
            out / "profiles.json",
            {
                "input": profiles[0].input,
                "layout": ctx.recipe.input.preprocess.layout,
                "profiles": [p.to_json() for p in profiles],
            },
        )
        jb.write_json(out / "bundle.json", {**spec, "engines": plans, "golden": source})
        self._copy_checker(out)
        plural = "s" if len(profiles) > 1 else ""
        jb.write_readme(
            out,
            name=ctx.recipe.name,
            target=self.name,
            cache=CACHE,
            n_profiles=len(profiles),
            plural=plural,
            precision=precision,
            golden=source,
        )
        sums = jb.write_sums(out)
        manifest = {
            "bundle": sorted(sums),
            "sha256": sums,
            "profiles": [p.to_json() for p in profiles],
            "cases": [{k: c[k] for k in ("shape", "batch", "profile")} for c in index],
            "missing_golden_shapes": missing,
            "trtexec": {g: [i["trtexec"] for i in plans[g]] for g in plans},
            "trt_lint": lint.status,
            "precision": precision,
            "golden": source,
        }
        return BuildResult("model.onnx", manifest)

    def _plans(self, profiles: list[Any], precision: str) -> dict[str, list[dict[str, Any]]]:
        """Per TensorRT generation: the engines (file, profiles) and the trtexec line that builds each."""
        from recipekit.targets.trt.profiles import engine_plan, shell_line, trtexec_command

        cfg, out = self.config, {}
        common = {
            "trtexec": cfg.trtexec,
            "onnx": "model.onnx",
            "precision": precision,
            "workspace_mib": cfg.workspace_mib,
            "timing_cache": CACHE,
        }
        for gen in GENERATIONS:
            items = engine_plan(profiles, gen, ENGINE)
            for item in items:
                chosen = [profiles[k] for k in item["profiles"]]
                item["trtexec"] = shell_line(trtexec_command(chosen, engine=item["engine"], gen=gen, **common))
            out[gen] = items
        return out

    def _spec(
        self, ctx: TargetContext, model: Any, outputs: list[str], index: list[dict], profiles: list[Any], precision: str
    ) -> dict[str, Any]:
        """bundle.json: everything check.py reads (it imports nothing from recipekit)."""
        from recipekit.targets.trt.profiles import input_of, parity_tolerances

        recipe = ctx.recipe
        return {
            "format": 2,
            "recipe": recipe.name,
            "model": "model.onnx",
            "input": input_of(model)[0],
            "dtype": recipe.input.dtype,
            "outputs": outputs,
            "output_kinds": dict(ctx.output_kinds),
            "tolerances": parity_tolerances(recipe, self.name, precision == "fp16"),
            "cases": index,
            "profiles": [p.to_json() for p in profiles],
            "precision": precision,
            "workspace_mib": self.config.workspace_mib,
            "timing_cache": CACHE,
        }

    @staticmethod
    def _copy_checker(out: Path) -> None:
        import recipekit.onnx.compare

        here = Path(__file__).with_name("check.py")
        shutil.copyfile(here, out / "check.py")
        package = Path(recipekit.onnx.compare.__file__).parent  # the whole comparison, `import compare` there
        shutil.copytree(package, out / "compare", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def precision_golden(golden: Golden, model: Path, precision: str) -> tuple[Golden, str]:
    """Golden outputs for the bundle's precision: PyTorch's for fp32; for fp16 and INT8 the bundle's
    own ONNX run by ONNX Runtime on the same inputs (an engine is then judged against its precision,
    and the accuracy gate has judged that precision against PyTorch)."""
    if precision == "fp32":
        return golden, "PyTorch source outputs"
    from recipekit.onnx.golden import Case, Golden
    from recipekit.onnx.runtime import OrtRunner

    runner = OrtRunner(model)
    cases = [Case(c.shape, c.sample, c.input, runner.run_one(c.input)) for c in golden.cases]
    return Golden(
        golden.output_names, cases, golden.meta
    ), f"{runner.description} outputs of the {precision} model.onnx"
