"""Recipe -> steps: plain data, no imports of heavy libraries, no I/O.

One export and one fix chain feed every target; per target: pre-compile lints, compile, gates,
publish. Task names follow `<recipe>:<kind>:<plugin>` (`lint` for a gate that runs before the compile).

Each step names what it reads of the recipe (`reads`: sections, projected to its target and the
gates it reads); `config["recipe"]` is the dump of exactly that projection, so the key hashes
what the stage can see (graph.view builds the stage's recipe from the same projection).
Keys are assigned afterwards by graph.keys.assign_keys (that reads files).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from recipekit.core.errors import UsageError
from recipekit.graph.view import ALL_SECTIONS, dump_view
from recipekit.recipe.schema import Recipe

MODEL = ("source", "input", "export")


@dataclass(frozen=True)
class Step:
    task: str
    kind: str  # export | golden | fix | precision | compile | gate | publish
    plugin: str
    target: str | None = None
    deps: dict[str, str] = field(default_factory=dict)  # role -> task name
    config: dict[str, Any] = field(default_factory=dict)  # what the step reads; config["recipe"]: its recipe view
    reads: dict[str, Any] = field(default_factory=dict)  # the projection behind config["recipe"] (graph.view)
    key: str = ""  # set by graph.keys.assign_keys
    inputs: dict[str, Any] = field(default_factory=dict)  # what else the key hashes: files, upstream keys, environment
    files: dict[str, str] = field(default_factory=dict)  # declared input files: name -> absolute path

    def to_dict(self) -> dict[str, Any]:
        """The step as JSON data (its fields, not copied: a step is never changed)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _dump(model: Any) -> Any:
    return model.model_dump(mode="json")


def gate_configs(recipe: Recipe, target: str) -> dict[str, Any]:
    """Gates for `target`: the target's defaults, then recipe-wide settings, then the target's own."""
    from recipekit.gates import GATES
    from recipekit.graph.precision_plan import default_gates
    from recipekit.targets import TARGETS

    names = [*TARGETS.get(target).default_gates, *default_gates(recipe)]
    names += [g for g in [*recipe.gates, *recipe.targets[target].gates] if g not in names]
    out = {}
    for name in names:
        cls = GATES.get(name)
        if cls.targets is not None and target not in cls.targets:
            continue
        cfg = recipe.targets[target].gates.get(name) or recipe.gates.get(name) or cls.Config()
        out[name] = cfg
    return out


def source_fixes(recipe: Recipe) -> list[dict[str, Any]]:
    from recipekit.fixes import FIXES

    return [{"name": f.name, "config": _dump(f.config)} for f in recipe.fixes if FIXES.get(f.name).stage == "source"]


def onnx_fixes(recipe: Recipe) -> list[dict[str, Any]]:
    """The recipe's ONNX fixes in order (precision is its own step after them)."""
    from recipekit.fixes import FIXES

    return [{"name": f.name, "config": _dump(f.config)} for f in recipe.fixes if FIXES.get(f.name).stage == "onnx"]


def reads(
    sections: tuple[str, ...], target: str | None = None, gates: tuple[str, ...] = (), reset: Any = None
) -> dict[str, Any]:
    """A step's projection; `reset`: section -> fields it sees at their defaults (not hashed)."""
    out = {"sections": list(sections), "target": target, "gates": list(gates)}
    return {**out, "reset": reset} if reset else out


BEFORE_PRECISION = {"export": ["precision", "quantization"], "input": ["calibration"]}
"""What export, golden and the fix chain do not read: precision settings are the precision step's."""


def _step(task: str, kind: str, plugin: str, recipe: Recipe, spec: dict[str, Any], **kw: Any) -> Step:
    config = {"recipe": dump_view(recipe, spec), **kw.pop("config", {})}
    return Step(task, kind, plugin, config=config, reads=spec, **kw)


def _shared_steps(recipe: Recipe) -> list[Step]:
    from recipekit.fixes.base import chain_bundles  # which bundle workarounds apply (hashed with the chain)

    n, source, sfx = recipe.name, recipe.source.kind, source_fixes(recipe)  # type: ignore[attr-defined]
    model = reads(MODEL, reset=BEFORE_PRECISION)
    export = _step(f"{n}:export:{source}", "export", source, recipe, model, config={"source_fixes": sfx})
    golden = _step(
        f"{n}:golden:{source}",
        "golden",
        source,
        recipe,
        model,
        deps={"export": export.task},
        config={"source_fixes": sfx},
    )
    fix = _step(
        f"{n}:fix:chain",
        "fix",
        "chain",
        recipe,
        model,
        deps={"export": export.task},
        config={
            "fixes": onnx_fixes(recipe),
            "source_fixes": sfx,
            **chain_bundles(recipe, [f.name for f in recipe.fixes]),
        },
    )
    return [export, golden, fix]


def _deps(shared: dict[str, str], golden: bool) -> dict[str, str]:
    return {role: task for role, task in shared.items() if golden or role != "golden"}


def _uses_golden(gate: str, config: Any) -> bool:
    from recipekit.gates import GATES

    return GATES.get(gate).uses_golden and not config.skip


def _gate_step(recipe: Recipe, target: str, gate: str, cfg: Any, stage: str, deps: dict[str, str]) -> Step:
    from recipekit.gates import GATES

    label = "lint" if stage == "pre" else "gate"  # the task name's word; the step kind is "gate"
    extra = tuple(getattr(GATES.get(gate), "recipe_reads", ()))
    spec = reads(("input", "export", "targets", "gates", *extra), target, (gate, *GATES.get(gate).reads_gates))
    return _step(
        f"{recipe.name}:{label}:{target}.{gate}",
        "gate",
        gate,
        recipe,
        spec,
        target=target,
        deps=deps,
        config={"gate": _dump(cfg), "stage": stage, "not_applicable": GATES.get(gate).not_applicable(recipe, target)},
    )


def _compile_step(recipe: Recipe, target: str, deps: dict[str, str]) -> Step:
    from recipekit.targets import TARGETS

    cls = TARGETS.get(target)
    extra = tuple(getattr(cls, "recipe_reads", ()))
    spec = reads(("input", "export", "targets", "gates", *extra), target, tuple(getattr(cls, "reads_gates", ())))
    return _step(f"{recipe.name}:compile:{target}", "compile", target, recipe, spec, target=target, deps=deps)


def _target_steps(recipe: Recipe, target: str, shared: dict[str, str]) -> list[Step]:
    from recipekit.gates import GATES
    from recipekit.targets import TARGETS

    gates = gate_configs(recipe, target)
    pre = [g for g in gates if GATES.get(g).before_compile]
    lints = [_gate_step(recipe, target, g, gates[g], "pre", _deps(shared, _uses_golden(g, gates[g]))) for g in pre]
    compile_ = _compile_step(
        recipe,
        target,
        {**_deps(shared, TARGETS.get(target).uses_golden), **{f"lint.{s.plugin}": s.task for s in lints}},
    )
    post = [
        _gate_step(
            recipe, target, g, gates[g], "post", {**_deps(shared, _uses_golden(g, gates[g])), "compile": compile_.task}
        )
        for g in gates
        if g not in pre
    ]
    publish = _step(
        f"{recipe.name}:publish:{target}",
        "publish",
        target,
        recipe,
        reads(ALL_SECTIONS),
        target=target,
        deps={**_deps(shared, False), "compile": compile_.task, **{f"gate.{s.plugin}": s.task for s in lints + post}},
    )
    return [*lints, compile_, *post, publish]


def _precision_step(recipe: Recipe, fix_task: str) -> Step | None:
    from recipekit.graph.precision_plan import measures_sensitivity, precision_plugin, twin_activations

    plugin = precision_plugin(recipe)
    if plugin is None:
        return None
    task, deps, config = f"{recipe.name}:precision:{plugin}", {"fix": fix_task}, {}
    if plugin == "int8" and measures_sensitivity(recipe.export.quantization):
        from recipekit.precision.metric import options

        deps["export"] = f"{recipe.name}:export:{recipe.source.kind}"  # the output kinds the metric decodes
        config = {"metric": options(recipe)}  # the accuracy gate's measure (and labelled set) it ranks nodes by
    if twin_activations(recipe):  # TensorRT's symmetric QDQ beside uint8 for ONNX Runtime
        config["twin"] = twin_activations(recipe)
    return _step(task, "precision", plugin, recipe, reads(("input", "export")), deps=deps, config=config)


def plan(recipe: Recipe, targets: list[str] | None = None, check: bool = True) -> list[Step]:
    """Every step of a build of `recipe` for `targets` (default: all the recipe declares).

    `check`: refuse first what the source cannot build (off only to study keys of any recipe)."""
    chosen = targets or list(recipe.targets)
    unknown = [t for t in chosen if t not in recipe.targets]
    if unknown:
        raise UsageError(
            f"--targets: {', '.join(unknown)} not declared by recipe {recipe.name!r} (it declares: "
            f"{', '.join(recipe.targets)})"
        )
    from recipekit.core.errors import RecipeError
    from recipekit.sources import SOURCES

    try:  # refuse what the source cannot build before any step runs
        if check:
            SOURCES.get(recipe.source.kind)(recipe.source).check_recipe(recipe)  # type: ignore[attr-defined]
    except RecipeError as exc:
        raise RecipeError(recipe.origin or recipe.name, exc.key_path, exc.msg) from None
    from recipekit.graph.precision_plan import refuse

    refuse(recipe, chosen)
    export, golden, fix = _shared_steps(recipe)
    deps = {"export": export.task, "golden": golden.task, "fix": fix.task}
    prec = _precision_step(recipe, fix.task)
    deps.update({"precision": prec.task} if prec else {})
    per_target = [s for t in chosen for s in _target_steps(recipe, t, deps)]
    needs_golden = any(golden.task in s.deps.values() for s in per_target)
    return [export, *([golden] if needs_golden else []), fix, *([prec] if prec else []), *per_target]
