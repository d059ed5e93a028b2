"""trt-jetson: a self-contained bundle that builds and checks the TensorRT engine on the Jetson itself.

Built here without a GPU. The engine cannot be built off-device, so the bundle ships what the
device needs to build it and to prove it right at every batch size the profiles allow (field
note 2: batch 1 works, batch 4 crashes). `recipekit device-check BUNDLE --backend ort` runs the
bundle's own check program here; on the device `python3 check.py --backend trt` does the same
with TensorRT. The trt-lint runs first: a model TensorRT's parser would refuse is never bundled.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field

from recipekit.targets.base import BuildResult, Target, TargetContext
from recipekit.targets.trt.engine import TrtConfig, TrtTarget

if TYPE_CHECKING:
    from recipekit.onnx.golden import Golden

ENGINE, CACHE = "model.engine", "timing.cache"


@dataclass(frozen=True)
class DevicePlan:
    """One JetPack (or TensorRT line) the bundle plans for: the TensorRT versions that take it
    (`first` <= version < `below`) and how they build the engines: the API generation (8: explicit
    batch flag, --fp16/--int8, one profile per trtexec engine; 10: --stronglyTyped; 11: strongly
    typed always, no precision flags) and whether an fp32 network is built strongly typed too."""

    id: str
    title: str
    first: tuple[int, ...]
    below: tuple[int, ...]
    gen: str
    fp32_strongly_typed: bool = False

    @property
    def commands(self) -> str:
        return f"commands-{self.id}.txt"


PLANS = (
    DevicePlan("jp5", "JetPack 5 (TensorRT 8.5; 8.6)", (8, 5), (9,), "8"),
    DevicePlan("jp6", "JetPack 6 (TensorRT 10.3)", (10,), (10, 12), "10"),
    # weak typing is deprecated from 10.12: the network is strongly typed as TensorRT 11 builds it
    DevicePlan("jp7", "JetPack 7.x (TensorRT 10.13 on Thor; 10.16 on 7.2)", (10, 12), (11,), "10", True),
    DevicePlan("trt11", "TensorRT 11.4 (11.4.1 on JetPack >= 7.2.2, Orin and Thor)", (11,), (12,), "11"),
)
"""What each JetPack runs: 5.x TensorRT 8.5 (8.6), 6.x 10.3, 7.x on Thor 10.13, 7.2 10.16, and
TensorRT 11.4.1 on JetPack >= 7.2.2 (Orin and Thor). check.py takes the plan whose range holds the
TensorRT it finds; tests/targets/test_trt_api.py checks check.py against each plan's bindings."""
DEFAULT_PLAN = "jp6"
"""The plan check.py shows when it finds no TensorRT (a --backend ort run anywhere)."""


class TrtJetsonConfig(TrtConfig):
    trtexec: str = Field("/usr/src/tensorrt/bin/trtexec", description="trtexec path on the device (JetPack's default)")


class TrtJetsonTarget(Target):
    name: ClassVar[str] = "trt-jetson"
    version: ClassVar[str] = "3"
    Config = TrtJetsonConfig
    default_gates: ClassVar[tuple[str, ...]] = ("trt-lint", "parity", "batch-consistency", "shape-sweep")
    reads_gates: ClassVar[tuple[str, ...]] = ("trt-lint", "parity")  # the lint it runs, the tolerances it ships
    recipe_reads: ClassVar[tuple[str, ...]] = ("name",)  # the README names the recipe
    uses_golden: ClassVar[bool] = True  # the bundle ships the source's reference outputs
    int8_activations = TrtTarget.int8_activations

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
        jb.write_json(out / "bundle.json", {**spec, "plans": plans, "default_plan": DEFAULT_PLAN, "golden": source})
        self._copy_checker(out)
        plural = "s" if len(profiles) > 1 else ""
        jb.write_readme(
            out,
            plans=jb.plan_lines(plans),
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
            "trtexec": {p["id"]: [i["trtexec"] for i in p["engines"]] for p in plans},
            "trt_lint": lint.status,
            "precision": precision,
            "golden": source,
        }
        return BuildResult("model.onnx", manifest)

    def _plans(self, profiles: list[Any], precision: str) -> list[dict[str, Any]]:
        """Per planned JetPack: the TensorRT versions it takes, the engines (file, profiles) and the
        trtexec line that builds each."""
        from recipekit.targets.trt.profiles import engine_plan, shell_line, trtexec_command

        cfg, out = self.config, []
        common = {
            "trtexec": cfg.trtexec,
            "onnx": "model.onnx",
            "precision": precision,
            "workspace_mib": cfg.workspace_mib,
            "timing_cache": CACHE,
        }
        for plan in PLANS:
            typed = plan.gen == "11" or plan.gen == "10" and (plan.fp32_strongly_typed or precision != "fp32")
            items = engine_plan(profiles, plan.gen, ENGINE)
            for item in items:
                chosen = [profiles[k] for k in item["profiles"]]
                argv = trtexec_command(
                    chosen, engine=item["engine"], gen=plan.gen, strongly_typed=plan.fp32_strongly_typed, **common
                )
                item["trtexec"] = shell_line(argv)
            out.append(
                {
                    "id": plan.id,
                    "title": plan.title,
                    "first": list(plan.first),
                    "below": list(plan.below),
                    "strongly_typed": typed,
                    "commands": plan.commands,
                    "engines": items,
                }
            )
        return out

    def _spec(
        self, ctx: TargetContext, model: Any, outputs: list[str], index: list[dict], profiles: list[Any], precision: str
    ) -> dict[str, Any]:
        """bundle.json: everything check.py reads (it imports nothing from recipekit)."""
        from recipekit.targets.trt.profiles import input_of, parity_tolerances

        recipe = ctx.recipe
        return {
            "format": 3,
            "recipe": recipe.name,
            "model": "model.onnx",
            "input": input_of(model)[0],
            "dtype": recipe.input.dtype,
            "preprocess": recipe.input.preprocess.model_dump(mode="json"),  # check.py --image: pixels.py
            "input_shapes": [list(s) for s in recipe.shapes()],
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
        import recipekit.onnx.pixels

        here = Path(__file__).with_name("check.py")
        shutil.copyfile(here, out / "check.py")
        package = Path(recipekit.onnx.compare.__file__).parent  # the whole comparison, `import compare` there
        shutil.copytree(package, out / "compare", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        shutil.copyfile(Path(recipekit.onnx.pixels.__file__), out / "pixels.py")  # check.py's preprocessing


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
