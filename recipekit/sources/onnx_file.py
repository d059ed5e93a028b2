"""onnx: bring your own ONNX file. It is copied as the export; the fixes and targets apply as usual.

Nothing can be re-exported, so export options that would need a re-export are refused with what to
do instead (the opset fix, or matching the file; precision is export.precision). The reference for the gates is the
original file run in ONNX Runtime on the CPU: parity then shows that the fixes and the target kept
the file's outputs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from recipekit.core.errors import RecipeError
from recipekit.recipe.outputs import OutputKind, declare
from recipekit.sources.base import ExportInfo, Forward, Source, SourceConfig

if TYPE_CHECKING:
    import onnx

    from recipekit.onnx.wire import Header, Tensor
    from recipekit.recipe.schema import Recipe


class OnnxFileConfig(SourceConfig):
    kind: Literal["onnx"] = "onnx"
    path: str = Field(
        description="the ONNX file: a path relative to the recipe, or `package:path` inside an installed package"
    )
    output_kinds: dict[str, OutputKind] = Field(
        default_factory=dict,
        description="what each output's elements are (recipekit.recipe.outputs), e.g. {output0: {kind: raw_head, "
        "groups: [{role: box, start: 0, stop: 4, format: cxcywh}, {role: class_scores, start: 4, stop: "
        "84}]}}; undeclared outputs are tensors",
    )


READS = {"tool": "onnxruntime 1.31.1", "opsets": (7, 26), "ir": 13}
"""What the installed ONNX Runtime loads (measured: tests/sources/test_onnx_file.py checks both ends)."""
FLOAT_TYPES = {1: "float32", 10: "float16"}
"""onnx.TensorProto element types recipekit feeds an image input as."""


def refusals(head: Header, recipe: Recipe) -> list[tuple[str, str]]:
    """(key path, why) for everything in the file's header that the tools cannot read or that
    contradicts the recipe: found at plan, from the header alone (no onnx import)."""
    out = _readable(head, recipe)
    if not head.inputs:
        return [*out, ("source.path", "the graph has no input (every input is an initializer)")]
    if len(head.inputs) > 1:
        names = [t.name for t in head.inputs]
        return [*out, ("input.name", f"the file has {len(names)} inputs {names}; recipekit feeds one image input")]
    out += _input(head.inputs[0], recipe)
    ex = recipe.export
    if ex.nms is not None:
        out.append(("export.nms", "NMS cannot be embedded into an existing ONNX file; remove export.nms"))
    if ex.simplify:
        out.append(("export.simplify", "use the `onnxslim` fix on an existing ONNX file instead of export.simplify"))
    return out


def _readable(head: Header, recipe: Recipe) -> list[tuple[str, str]]:
    lo, hi = READS["opsets"]
    opset = head.opset
    if head.ir_version is not None and head.ir_version > READS["ir"]:
        return [
            ("source.path", f"IR version {head.ir_version} is newer than {READS['tool']} reads (up to {READS['ir']})")
        ]
    if opset is None or not lo <= opset <= hi:
        what = f"opset {opset}" if opset is not None else "no default-domain (ai.onnx) opset"
        return [("source.path", f"the file has {what}; {READS['tool']} reads opsets {lo}..{hi}")]
    if opset != recipe.export.opset:
        why = f"the file has opset {opset}; set export.opset: {opset}, and add the `opset` fix to convert"
        return [("export.opset", why)]
    return []


def _input(t: Tensor, recipe: Recipe) -> list[tuple[str, str]]:
    inp, out = recipe.input, []
    if inp.name is not None and inp.name != t.name:
        out.append(("input.name", f"the file's input is {t.name!r}, not {inp.name!r}; set input.name: {t.name}"))
    if t.elem_type is not None and FLOAT_TYPES.get(t.elem_type) != inp.dtype:
        want = FLOAT_TYPES.get(t.elem_type)
        why = f"set input.dtype: {want}" if want else "recipekit feeds float32 or float16 images"
        out.append(("input.dtype", f"the file's input {t.name!r} has element type {t.elem_type}; {why}"))
    if t.dims is None:
        return out
    if len(t.dims) != 4:
        shown = ["?" if d is None else d for d in t.dims]
        return [*out, ("source.path", f"input {t.name!r} is {shown}: recipekit feeds 4-D images (N, C, H, W)")]
    return out + _layout(t, recipe) + _sizes(t, recipe) + _batch(t, recipe)


def _layout(t: Tensor, recipe: Recipe) -> list[tuple[str, str]]:
    layout = recipe.input.preprocess.layout
    c, other = (1, 3) if layout == "nchw" else (3, 1)
    have = t.dims[c]
    if not isinstance(have, int) or have == 3:
        return []
    if t.dims[other] == 3:
        flip = "nhwc" if layout == "nchw" else "nchw"
        return [("input.preprocess.layout", f"the file's input is {_shown(t)}: set input.preprocess.layout: {flip}")]
    return [("source.path", f"the file's input {_shown(t)} takes {have} channels; preprocessing makes 3 (RGB/BGR)")]


def _hw(t: Tensor, recipe: Recipe) -> tuple[Any, Any]:
    return (t.dims[2], t.dims[3]) if recipe.input.preprocess.layout == "nchw" else (t.dims[1], t.dims[2])


def _sizes(t: Tensor, recipe: Recipe) -> list[tuple[str, str]]:
    h, w = _hw(t, recipe)
    out: list[tuple[str, str]] = []
    if isinstance(h, int) and isinstance(w, int) and recipe.export.dynamic.hw:
        out.append(
            (
                "export.dynamic.hw",
                f"the file's input {_shown(t)} has a static {h}x{w}; dynamic H/W needs H and W dynamic",
            )
        )
    for key, (sh, sw) in [("export.imgsz", recipe.export.imgsz)] + [
        (f"input.shapes[{i}]", s) for i, s in enumerate(recipe.input.shapes)
    ]:
        if (isinstance(h, int) and h != sh) or (isinstance(w, int) and w != sw):
            fix = f"set export.imgsz: [{h}, {w}]" if key == "export.imgsz" else "remove it"
            out.append((key, f"the file's input {_shown(t)} is static at {h}x{w}, not {sh}x{sw}; {fix}"))
    return out


def _batch(t: Tensor, recipe: Recipe) -> list[tuple[str, str]]:
    n, ex = t.dims[0], recipe.export
    if not isinstance(n, int):
        return []
    if ex.dynamic_batch:
        return [("export.batch", f"the file has a static batch of {n}; a dynamic batch needs a re-export")]
    if ex.batch.max != n:
        return [
            ("export.batch", f"the file has a static batch of {n}; set export.batch: {{min: {n}, opt: {n}, max: {n}}}")
        ]
    return []


def _shown(t: Tensor) -> str:
    return f"{t.name!r} " + "x".join("?" if d is None else str(d) for d in (t.dims or []))


def named_dynamic_dims(model: onnx.ModelProto, layout: str) -> int:
    """Negative dim_values (Paddle's -1 for a dynamic batch) become named symbolic dims in the graph's
    inputs, outputs and value_info, so every later step reads them as dynamic. Returns how many."""
    names = {0: "batch", **({2: "height", 3: "width"} if layout == "nchw" else {1: "height", 2: "width"})}
    inputs = {i.name for i in model.graph.input}
    count = 0
    for v in [*model.graph.input, *model.graph.output, *model.graph.value_info]:
        for i, d in enumerate(v.type.tensor_type.shape.dim):
            if d.HasField("dim_value") and d.dim_value < 0:
                d.dim_param = names.get(i, f"{v.name}_d{i}") if v.name in inputs else f"{v.name}_d{i}"
                count += 1
    return count


class OnnxFileSource(Source):
    name: ClassVar[str] = "onnx"
    version: ClassVar[str] = "3"
    reference_name: ClassVar[str] = "the source ONNX (ONNX Runtime CPU)"
    reads_samples: ClassVar[bool] = False
    Config = OnnxFileConfig
    init = "weights"

    def weight_files(self, base: Path) -> list[Path]:
        from recipekit.onnx.preprocess import resolve_sample

        try:  # a path relative to the recipe, or `package:path` (an ONNX file an installed package ships)
            path = resolve_sample(self.config.path, base, "source.path")
        except RecipeError as exc:
            raise RecipeError(str(base), "source.path", f"ONNX {exc.msg}") from None
        from recipekit.onnx.external import data_files

        return [path, *data_files(path)]  # weights kept beside the graph (model.onnx.data) are part of the model

    def check_recipe(self, recipe: Recipe) -> None:
        """Plan time: the file is an ONNX model the tools read and its input agrees with the recipe
        (its protobuf header walked, onnx not imported); exit 2 naming the file and the key."""
        from recipekit.sources import checks

        super().check_recipe(recipe)
        src = self.weight_files(Path(recipe.base_dir))[0]
        header = checks.onnx_file(recipe, "source.path", src)
        problems = refusals(header, recipe)
        if problems:
            key, why = problems[0]
            also = "".join(f"; also {k}: {w}" for k, w in problems[1:])
            raise RecipeError(recipe.origin, key, f"{src.name}: {why}{also}")
        from recipekit.recipe.outputs import check_declared

        dims = {t.name: t.dims for t in header.outputs}
        check_declared(recipe, "source.output_kinds", dict(self.config.output_kinds), dims)

    def export(self, recipe: Recipe, out: Path, patches: list[Any]) -> ExportInfo:
        import onnx

        self.check_recipe(recipe)
        if patches:
            raise RecipeError(recipe.origin, "fixes", "source fixes need a model to patch; an ONNX file has none")
        from recipekit.onnx.external import copy_model

        src = self.weight_files(Path(recipe.base_dir))[0]
        copy_model(src, out / "model.onnx")
        model = onnx.load(str(out / "model.onnx"), load_external_data=False)
        renamed = named_dynamic_dims(model, recipe.input.preprocess.layout)
        if renamed:  # the graph only: external data files stay as copied, their locations unchanged
            onnx.save(model, str(out / "model.onnx"))
        inits = {i.name for i in model.graph.initializer}
        outputs = [o.name for o in model.graph.output]
        try:
            kinds = declare(dict(self.config.output_kinds), outputs)
        except ValueError as exc:
            raise RecipeError(recipe.origin, "source.output_kinds", " ".join(str(exc).split())) from None
        return ExportInfo(
            [i.name for i in model.graph.input if i.name not in inits],
            outputs,
            kinds,
            {"file": src.name, "negative_dims_named": renamed},
        )

    @contextmanager
    def reference(self, recipe: Recipe, export_dir: Path, patches: list[Any]) -> Iterator[Forward]:
        from recipekit.onnx.runtime import OrtRunner

        runner = OrtRunner(export_dir / "model.onnx")
        yield runner.run_one
