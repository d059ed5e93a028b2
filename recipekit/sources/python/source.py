"""Any PyTorch module a user ships: a factory `module:function` returning a torch.nn.Module.

The recipe names the factory (an importable module on the Python path, its keyword arguments as
plain YAML values), the weights (a state dict: safetensors, or a torch.save read with
weights_only=True through the one safe loader; none: the factory's own initialisation under
`seed`), the files the factory reads itself (`files`: e.g. the trained weights a package ships,
`PNet(pretrained=True)`; hashed into the export key, checked at plan, read through the safe loader,
and any other file it opens is refused: see `reads`), the input (recipe `input` and `export`:
shape (B, C, H, W) or NHWC per the layout, dtype, preprocessing, dynamic axes) and what each
output means (`outputs`, in the output-semantics model of recipekit.recipe.outputs). It is
exported with torch's ONNX exporter (TorchScript-based).

Importing the factory's module runs the user's own code, by their explicit choice in the recipe:
that is what this source is for. At plan time nothing is imported: the module is located on the
path and its source parsed (ast) for the function, so a typo is refused with exit 2.
"""

from __future__ import annotations

import ast
import importlib.machinery
import importlib.util
import re
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, field_validator

from recipekit.core.errors import RecipeError
from recipekit.sources.base import ExportInfo, Forward, Source, WeightsConfig

if TYPE_CHECKING:
    from recipekit.recipe.schema import Recipe

FACTORY_RE = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*$")
STATE_FILE = "python_source.json"


class PythonConfig(WeightsConfig):
    """A model factory, its arguments and weights, and what its outputs mean."""

    kind: Literal["python"] = "python"
    factory: str = Field(description="`package.module:function` returning a torch.nn.Module (importable)")
    args: dict[str, Any] = Field(default_factory=dict, description="keyword arguments for the factory (YAML values)")
    weights: str | None = Field(
        None,
        description="state dict (safetensors or torch.save of tensors) recipekit loads into the factory's module, "
        "relative to the recipe; none: the factory's own initialisation (`seed`) or what it loads from `files`",
    )
    files: list[str] = Field(
        default_factory=list,
        description="every file the factory reads itself: a path relative to the recipe or `package:path` inside "
        "an installed package (e.g. facenet_pytorch:data/pnet.pt); hashed into the export key, checkpoints "
        "checked at plan and read through the safe loader; the factory opening any other file is refused",
    )
    seed: int = Field(0, description="torch seed around the factory call (its own initialisation when no weights)")
    channels: int = Field(3, ge=1, le=64, description="input channels")
    outputs: list[str] = Field(default_factory=list, description="output names, in the module's return order")
    output_kinds: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="output name -> semantics (recipekit.recipe.outputs: tensor, class_scores, raw_head, "
        "detections, prototype_masks); undeclared outputs are plain tensors",
    )

    @field_validator("factory")
    @classmethod
    def _factory(cls, v: str) -> str:
        if not FACTORY_RE.match(v):
            raise ValueError(f"expected `module:function` (e.g. mypkg.models:build), got {v!r}")
        return v


def _module_file(name: str) -> Path | None:
    """The source file of module `name`, located on sys.path without importing (executing) anything."""
    import sys

    path: list[str] | None = list(sys.path)
    spec = None
    for i, part in enumerate(name.split(".")):
        spec = importlib.machinery.PathFinder.find_spec(part, path)
        if spec is None:
            return None
        if i < name.count("."):
            path = list(spec.submodule_search_locations or [])
            if not path:
                return None
    origin = spec.origin if spec else None
    return Path(origin) if origin and origin.endswith(".py") else None


def _defines(source: Path, name: str) -> bool:
    """Whether the module's top level defines (or imports) `name`: a def, a class, an assignment."""
    try:
        tree = ast.parse(source.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return True  # not provable here; the import at build time will say
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == name:
            return True
        if isinstance(node, (ast.Import, ast.ImportFrom)) and any(
            (a.asname or a.name) in (name, "*") for a in node.names
        ):
            return True  # imported by name, or a star import (not provable without running it)
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return True
    return False


class PythonSource(Source):
    """Builds the user's module from its factory and exports it with torch.onnx.export."""

    imports: ClassVar[tuple[str, ...]] = ("torch", "onnx", "cv2")  # gates import onnxruntime

    name: ClassVar[str] = "python"
    version: ClassVar[str] = "2"
    Config = PythonConfig
    checkpoint_family: ClassVar[str] = "state"

    loaded: dict[str, str] | None = None  # after build_module: declared file -> how it was read

    @property
    def init(self) -> str:  # type: ignore[override]
        """`weights` when a weights file was loaded (by recipekit or, through `files`, by the factory),
        else `random` (the factory's own initialisation). Before a build: what the recipe implies."""
        if self.loaded is not None:
            return "weights" if self.loaded else "random"
        return "weights" if self.config.weights or self.config.files else "random"

    def declared_files(self, base: Path) -> dict[Path, str]:
        """Every file the recipe declares: resolved path -> as the recipe names it."""
        from recipekit.onnx.preprocess import resolve_sample

        out: dict[Path, str] = {}
        if self.config.weights:
            path = (base / self.config.weights).resolve()
            if not path.is_file():
                raise RecipeError(str(base), "source.weights", f"weights file not found: {path}; nothing is downloaded")
            out[path] = self.config.weights
        for i, spec in enumerate(self.config.files):
            try:
                out[resolve_sample(spec, base, f"source.files[{i}]")] = spec
            except RecipeError as exc:
                raise RecipeError(str(base), f"source.files[{i}]", exc.msg) from None
        return out

    def weight_files(self, base: Path) -> list[Path]:
        return list(self.declared_files(base))

    def checkpoint_files(self, base: Path) -> list[Path]:
        """Declared files that are checkpoints (pickles, torch zips, safetensors): scanned at plan.
        Other declared files (a JSON config, a vocabulary) are data, hashed only."""
        from recipekit.sources.checkpoint import CheckpointRefused, sniff

        out = []
        for path in self.declared_files(base):
            try:
                sniff(path)
            except CheckpointRefused:
                if path == (base / (self.config.weights or "")).resolve():
                    out.append(path)  # `weights` must be a checkpoint: check() says what it is instead
                continue
            out.append(path)
        return out

    def check_recipe(self, recipe: Recipe) -> None:
        super().check_recipe(recipe)
        module, _, func = self.config.factory.partition(":")
        found = _module_file(module)
        if found is None and importlib.util.find_spec(module.split(".")[0]) is None:
            raise RecipeError(
                recipe.origin, "source.factory", f"no module {module!r} on the Python path (PYTHONPATH or installed)"
            )
        if found is not None and not _defines(found, func):
            raise RecipeError(recipe.origin, "source.factory", f"{found} defines no {func!r} at its top level")
        self._declared(recipe)
        if recipe.export.nms is not None:
            raise RecipeError(recipe.origin, "export.nms", "the python source exports the module as it is: no NMS")

    def _declared(self, recipe: Recipe) -> dict[str, Any]:
        """The declared output semantics, validated (exit 2 naming source.outputs / output_kinds)."""
        from recipekit.recipe import outputs as o

        names = self.config.outputs or list(self.config.output_kinds)
        if len(set(names)) != len(names):
            raise RecipeError(recipe.origin, "source.outputs", f"output names repeat: {names}")
        try:
            return o.declare(self.config.output_kinds, names or None)
        except ValueError as exc:
            first = " ".join(str(exc).split())[:400]
            raise RecipeError(recipe.origin, "source.output_kinds", first) from None

    def build_module(self, recipe: Recipe) -> Any:
        import importlib

        import torch

        from recipekit.sources.python.reads import guarded
        from recipekit.sources.synthetic import seeded

        module, _, func = self.config.factory.partition(":")
        try:
            factory = getattr(importlib.import_module(module), func)
        except (ImportError, AttributeError) as exc:
            raise RecipeError(recipe.origin, "source.factory", f"cannot import {self.config.factory}: {exc}") from None
        declared = self.declared_files(Path(recipe.base_dir))
        with guarded(declared, self.config.trust_code) as guard, seeded(self.config.seed):
            try:
                model = factory(**self.config.args)
            except Exception:
                if not (guard.refused or guard.refused_globals):
                    raise
        self._refuse(recipe, guard)
        self.loaded = {n: guard.loaded.get(n, "opened by the factory") for n in guard.opened}
        if not isinstance(model, torch.nn.Module):
            raise RecipeError(
                recipe.origin,
                "source.factory",
                f"{self.config.factory} returned {type(model).__name__}, not a torch.nn.Module",
            )
        if self.config.weights:
            self._load(model, next(iter(declared)))
            self.loaded[self.config.weights] = "state dict loaded by recipekit (safe loader) after the factory"
        return model.float().eval()

    def _refuse(self, recipe: Recipe, guard: Any) -> None:
        """Exit 2 when the factory opened an undeclared file or unpickled code."""
        if guard.refused:
            raise RecipeError(
                recipe.origin,
                "source.files",
                f"{self.config.factory} read {guard.refused[0]}, which the recipe does not declare; add it to "
                "source.files (it is then hashed into the export key and read through the safe loader)",
            )
        if guard.refused_globals:
            raise RecipeError(
                recipe.origin,
                "source.files",
                f"{self.config.factory} unpickled a file asking for {guard.refused_globals[0]}, which state-dict "
                "files do not hold; refused without running it. If this is your own file with custom classes, "
                "set source.trust_code: true (it may run code)",
            )

    def _load(self, model: Any, path: Path) -> None:
        from recipekit.sources import checkpoint

        state = checkpoint.state_dict(path, self.config.trust_code)
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise RecipeError(
                str(path),
                "source.weights",
                f"weights do not fit {self.config.factory}: missing {list(missing)[:5]}, unexpected "
                f"{list(unexpected)[:5]} (check source.args)",
            )

    def example(self, recipe: Recipe) -> Any:
        """A deterministic input of the recipe's shape (batch max, export size, layout, dtype)."""
        import torch

        ex, inp = recipe.export, recipe.input
        h, w = ex.imgsz
        shape = (ex.batch.max, self.config.channels, h, w)
        if inp.preprocess.layout == "nhwc":
            shape = (ex.batch.max, h, w, self.config.channels)
        gen = torch.Generator().manual_seed(0)
        return torch.rand(shape, generator=gen).to(getattr(torch, inp.dtype))

    def export(self, recipe: Recipe, out: Path, patches: list[Any]) -> ExportInfo:
        import warnings

        import torch

        self.check_recipe(recipe)
        with ExitStack() as stack:
            for p in patches:
                stack.enter_context(p)
            model = self.build_module(recipe)
            x = self.example(recipe)
            with torch.no_grad():
                y = model(x)
            count = len(y) if isinstance(y, (list, tuple)) else 1
            names = self.config.outputs or [f"output{i}" for i in range(count)]
            if len(names) != count:
                raise RecipeError(recipe.origin, "source.outputs", f"{len(names)} names for {count} outputs")
            input_name = recipe.input.name or "input"
            axes = self._axes(recipe, input_name, names, y)
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    model,
                    (x,),
                    str(out / "model.onnx"),
                    dynamo=False,
                    input_names=[input_name],
                    output_names=names,
                    dynamic_axes=axes or None,
                    opset_version=recipe.export.opset,
                )
        kinds = self._declared(recipe) if self.config.output_kinds else {n: {"kind": "tensor"} for n in names}
        notes = {
            "factory": self.config.factory,
            "args": self.config.args,
            "init": self.init,
            "weights_loaded": dict(self.loaded or {}),  # declared file -> how it was read
            "trust_code": self.config.trust_code,
            "exporter": "torch.onnx.export(dynamo=False)",
        }
        return ExportInfo(inputs=[input_name], outputs=names, output_kinds=kinds, notes=notes)

    def _axes(self, recipe: Recipe, input_name: str, names: list[str], y: Any) -> dict[str, dict[int, str]]:
        """Dynamic axes: batch (axis 0 of the input and of every output) and/or the input's H and W."""
        ex = recipe.export
        hw = (1, 2) if recipe.input.preprocess.layout == "nhwc" else (2, 3)
        axes: dict[str, dict[int, str]] = {}
        if ex.dynamic_batch:
            axes[input_name] = {0: "batch"}
            axes.update({n: {0: "batch"} for n in names})
        if ex.dynamic.hw:
            axes.setdefault(input_name, {}).update({hw[0]: "height", hw[1]: "width"})
        return axes

    @contextmanager
    def reference(self, recipe: Recipe, export_dir: Path, patches: list[Any]) -> Iterator[Forward]:
        import torch

        with ExitStack() as stack:
            for p in patches:
                stack.enter_context(p)
            model = self.build_module(recipe)

            def forward(x: Any) -> list[Any]:
                with torch.no_grad():
                    y = model(torch.from_numpy(x))
                ys = y if isinstance(y, (list, tuple)) else [y]
                return [t.numpy() for t in ys]

            yield forward
