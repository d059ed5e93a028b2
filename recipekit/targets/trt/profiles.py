"""TensorRT optimization profiles from the recipe, and the trtexec command lines that build them.

Peers derive one profile with opt batch = max batch. Here every profile comes from the recipe
(`targets.trt.profiles`, default `export.batch`), each with its own min/opt/max batch; height and
width are fixed where the ONNX input is static, else span the recipe's declared shapes with the
export size as opt. The same profiles feed the Python API builder, trtexec and the Jetson check.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import onnx

    from recipekit.recipe.schema import Batch, Recipe

Dims = tuple[int, ...]


@dataclass(frozen=True)
class ShapeProfile:
    """One optimization profile for the image input: full min/opt/max dims in the ONNX layout."""

    input: str
    min: Dims
    opt: Dims
    max: Dims

    def to_json(self) -> dict[str, Any]:
        return {"input": self.input, "min": list(self.min), "opt": list(self.opt), "max": list(self.max)}

    def contains(self, dims: Dims) -> bool:
        return len(dims) == len(self.min) and all(a <= d <= b for a, d, b in zip(self.min, dims, self.max, strict=True))


def input_of(model: onnx.ModelProto) -> tuple[str, list[int | None]]:
    """The image input's name and dims (None where dynamic)."""
    inits = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in inits]
    first = inputs[0]
    dims = [
        d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in first.type.tensor_type.shape.dim
    ]
    return first.name, dims


def batches(configured: list[Batch], recipe: Recipe) -> list[Batch]:
    """The configured batch profiles, else the recipe's one `export.batch`."""
    return list(configured) or [recipe.export.batch]


def _axes(layout: str) -> tuple[int, int, int]:
    """(channel, height, width) axis of a rank-4 image input."""
    return (1, 2, 3) if layout == "nchw" else (3, 1, 2)


def _hw(
    recipe: Recipe, dims: list[int | None], layout: str
) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    """(min, opt, max) of (H, W): the ONNX's own where static, else the recipe's declared shapes."""
    _, h, w = _axes(layout)
    shapes = recipe.shapes()
    lo = (dims[h] or min(s[0] for s in shapes), dims[w] or min(s[1] for s in shapes))
    hi = (dims[h] or max(s[0] for s in shapes), dims[w] or max(s[1] for s in shapes))
    opt = (dims[h] or recipe.export.imgsz[0], dims[w] or recipe.export.imgsz[1])
    return lo, opt, hi


def _full(batch: int, hw: tuple[int, int], channels: int, layout: str) -> Dims:
    return (batch, channels, *hw) if layout == "nchw" else (batch, *hw, channels)


def shape_profiles(model: onnx.ModelProto, recipe: Recipe, configured: list[Batch]) -> list[ShapeProfile]:
    """Every optimization profile: one per batch profile, over the declared (H, W) range."""
    name, dims = input_of(model)
    layout = recipe.input.preprocess.layout
    channels = dims[_axes(layout)[0]] or 3
    lo, opt, hi = _hw(recipe, dims, layout)
    return [
        ShapeProfile(
            name,
            _full(b.min, lo, channels, layout),
            _full(b.opt, opt, channels, layout),
            _full(b.max, hi, channels, layout),
        )
        for b in batches(configured, recipe)
    ]


def profile_findings(model: onnx.ModelProto, profiles: list[ShapeProfile]) -> list[str]:
    """Profiles that ask a static ONNX axis to take another size (TensorRT refuses such a profile)."""
    _, dims = input_of(model)
    out = []
    for k, p in enumerate(profiles):
        for axis, fixed in enumerate(dims):
            if fixed is None:
                continue
            sizes = {p.min[axis], p.opt[axis], p.max[axis]}
            if sizes != {fixed}:
                out.append(
                    f"profile {k}: input {p.input!r} axis {axis} is static ({fixed}) in the ONNX "
                    f"but the profile asks {p.min[axis]}..{p.max[axis]} (opt {p.opt[axis]})"
                )
    return out


def cases(profiles: list[ShapeProfile], recipe: Recipe) -> list[tuple[tuple[int, int], int, int]]:
    """(shape, batch, profile index) for every declared shape and every batch a profile allows."""
    layout = recipe.input.preprocess.layout
    c, _, _ = _axes(layout)
    out, seen = [], set()
    for k, p in enumerate(profiles):
        for shape in recipe.shapes():
            for b in range(p.min[0], p.max[0] + 1):
                if (shape, b) not in seen and p.contains(_full(b, shape, p.min[c], layout)):
                    seen.add((shape, b))
                    out.append((tuple(shape), b, k))
    return out


def _spec(p: ShapeProfile, which: str) -> str:
    name = f"'{p.input}'" if ":" in p.input else p.input  # trtexec's quoting of names with ':'
    return f"{name}:" + "x".join(str(d) for d in getattr(p, which))


def generation(version: str) -> str:
    """The TensorRT API generation a version string belongs to: "8" (JetPack 5: 8.5/8.6), "10" or "11"."""
    major = int(str(version).split(".")[0])
    if major < 8 or major > 11 or major == 9:
        raise ValueError(f"TensorRT {version} is not supported (8.5/8.6 on JetPack 5, 10.x, 11.x)")
    return str(major)


def precision_flags(precision: str, gen: str, strongly_typed: bool = False) -> list[str]:
    """trtexec's precision flags: 8.x needs --fp16/--int8 to use the ONNX's fp16/QDQ; 10.x builds a
    strongly typed network from it (`strongly_typed`: an fp32 one too); 11.x is always strongly typed
    (no flags)."""
    if gen == "10":
        return ["--stronglyTyped"] if strongly_typed or precision != "fp32" else []
    if precision == "fp32" or gen == "11":
        return []
    return ["--fp16"] if precision == "fp16" else ["--int8"]


def trtexec_command(
    profiles: list[ShapeProfile],
    *,
    trtexec: str,
    onnx: str,
    engine: str,
    precision: str,
    workspace_mib: int,
    timing_cache: str,
    gen: str = "10",
    strongly_typed: bool = False,
) -> list[str]:
    """trtexec's argv for the same engine the Python API builds (several profiles need TensorRT >= 10)."""
    if gen == "8" and len(profiles) > 1:
        raise ValueError("TensorRT 8.x trtexec builds one optimization profile per engine")
    argv = [trtexec, f"--onnx={onnx}", f"--saveEngine={engine}"]
    for k, p in enumerate(profiles):
        if len(profiles) > 1:
            argv.append(f"--profile={k}")
        argv += [f"--minShapes={_spec(p, 'min')}", f"--optShapes={_spec(p, 'opt')}", f"--maxShapes={_spec(p, 'max')}"]
    argv += precision_flags(precision, gen, strongly_typed)
    argv += [f"--memPoolSize=workspace:{workspace_mib}", f"--timingCacheFile={timing_cache}"]
    return argv


def engine_plan(profiles: list[ShapeProfile], gen: str, engine: str) -> list[dict[str, Any]]:
    """Engines to build: one with every profile (10.x, 11.x), or one per profile (8.x's trtexec).

    Each entry: the engine file, the profile indices it holds, and for each of them its index
    inside that engine."""
    if gen != "8" or len(profiles) == 1:
        return [{"engine": engine, "profiles": list(range(len(profiles)))}]
    stem, dot, ext = engine.rpartition(".")
    return [
        {"engine": f"{stem}.p{k}.{ext}" if dot else f"{engine}.p{k}", "profiles": [k]} for k in range(len(profiles))
    ]


def shell_line(argv: list[str]) -> str:
    """One POSIX shell line (argv elements quoted as needed)."""
    return shlex.join(argv)


def parity_tolerances(recipe: Recipe, target: str, fp16: bool = False) -> list[dict[str, Any]]:
    """The recipe's parity tolerances for `target` (the target's own gate settings first) as the layers
    recipekit.onnx.compare resolves, with the documented fp16 margin for fp16 engines."""
    from recipekit.gates.tolerance import layers, recipe_tolerances

    return layers(None, {}, recipe_tolerances(recipe, target, "parity"), fp16=fp16)


def relative(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()
