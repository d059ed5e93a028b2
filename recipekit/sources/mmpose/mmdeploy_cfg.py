"""MMPose model configs and MMDeploy deploy configs generated from a recipe, and the exporter settings.

Why generated: mmpose's RTMO config hard-codes a 640x640 input in four places (codec, test pipeline,
test_cfg and the deploy-mode priors), and mmdeploy traces the model on an image run through that test
pipeline, so exporting at another (H, W) means rewriting all of them consistently. mmpose and mmdeploy
write sizes as (W, H); recipes always say (H, W): the swap happens here and nowhere else.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recipekit.sources.mmpose.mmcv_compat import install as install_compat

DEFAULT_CONFIG = "body_2d_keypoint/rtmo/coco/rtmo-s_8xb32-600e_coco-640x640.py"
"""RTMO-s, COCO body keypoints, as mmpose ships it (relative to mmpose's packaged configs)."""


@dataclass(frozen=True)
class NmsParams:
    """The NMS the graph embeds; the reference applies the same thresholds."""

    score_thr: float
    iou_thr: float
    max_det: int


def configs_root() -> Path:
    """The `configs/` folder mmpose installs in its package (`.mim/configs`), found without importing
    mmpose (which imports torch): weight lookups happen while planning a build."""
    import importlib.util

    spec = importlib.util.find_spec("mmpose")
    if spec is None or not spec.submodule_search_locations:
        from recipekit.core.errors import RecipeKitError

        raise RecipeKitError("source kind mmpose needs the mmpose extra: run scripts/install-mmpose.sh")
    return Path(next(iter(spec.submodule_search_locations))) / ".mim" / "configs"


def named_checkpoint(name: str, config: str) -> tuple[Path, str] | None:
    """Where mmpose / mmengine keep the checkpoint of model `name` once downloaded, and its URL.

    Looks `name` up in the model-index files next to `config` (e.g. rtmo_coco.yml) and maps its
    Weights URL to torch's hub cache ($TORCH_HOME/hub/checkpoints). Nothing is downloaded here.
    """
    import os

    import yaml

    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    hub = Path(os.environ.get("TORCH_HOME", cache / "torch"))
    for index in sorted((configs_root() / config).parent.glob("*.yml")):
        for model in (yaml.safe_load(index.read_text()) or {}).get("Models", []):
            if model.get("Name") == name and model.get("Weights"):
                url = str(model["Weights"])
                return hub / "hub" / "checkpoints" / url.rsplit("/", 1)[-1], url
    return None


def resolve_weights(base: Path, weights: str, config: str) -> Path:
    """A checkpoint path relative to the recipe folder `base`, or an mmpose model name's cached file.

    Raises RecipeError naming the missing file (and, for a model name, the URL to fetch by hand).
    """
    from recipekit.core.errors import RecipeError

    path = (base / weights).resolve()
    named = None if path.is_file() or Path(weights).suffix else named_checkpoint(weights, config)
    if named is not None:
        path = named[0]
    if not path.is_file():
        where = f" (mmpose model {weights}: download {named[1]} there yourself)" if named else ""
        raise RecipeError(
            str(base),
            "source.weights",
            f"weights file {path} not found{where}; to build from the architecture alone set source.init: synthetic",
        )
    return path


def num_priors(hw: tuple[int, int], strides: tuple[int, ...] = (16, 32)) -> int:
    """Grid points over all levels at input (H, W): the candidates NMS chooses from."""
    return sum((hw[0] // s) * (hw[1] // s) for s in strides)


def _set_input_size(cfg: Any, wh: tuple[int, int]) -> None:
    """Every place an RTMO config names the input size, as (W, H)."""
    if "codec" in cfg:
        cfg.codec.input_size = wh
    cfg.model.test_cfg.input_size = wh
    for step in cfg.test_dataloader.dataset.pipeline:
        if "input_size" in step:
            step["input_size"] = wh


def model_config(config_file: Path, hw: tuple[int, int], nms: NmsParams) -> Any:
    """The mmpose config at input (H, W) with the recipe's NMS and no download-on-init."""
    install_compat()
    from mmengine.config import Config

    cfg = Config.fromfile(str(config_file))
    cfg.test_dataloader = cfg.val_dataloader
    _set_input_size(cfg, (hw[1], hw[0]))
    cfg.model.test_cfg.update(score_thr=nms.score_thr, nms_thr=nms.iou_thr, max_per_img=nms.max_det)
    # The backbone's init_cfg downloads YOLOX weights on init_weights(): never here.
    cfg.model.backbone.init_cfg = None
    return cfg


def deploy_config(hw: tuple[int, int], opset: int, dynamic_batch: bool, nms: NmsParams) -> Any:
    """mmdeploy's pose-detection config for ONNX Runtime, as its rtmo_onnxruntime config reads.

    pre_top_k equals the number of priors (so it drops nothing) because mmdeploy's batched NMS maps
    its kept rows back to prior indices only when pre_top_k > 0.
    """
    install_compat()
    from mmengine.config import Config

    onnx_config = {
        "type": "onnx",
        "export_params": True,
        "keep_initializers_as_inputs": False,
        "opset_version": opset,
        "save_file": "end2end.onnx",
        "input_names": ["input"],
        "output_names": ["dets", "keypoints"],
        "input_shape": [hw[1], hw[0]],
        "optimize": False,
    }
    if dynamic_batch:
        onnx_config["dynamic_axes"] = {name: {0: "batch"} for name in ("input", "dets", "keypoints")}
    post = {
        "score_threshold": nms.score_thr,
        "iou_threshold": nms.iou_thr,
        "max_output_boxes_per_class": num_priors(hw),
        "pre_top_k": num_priors(hw),
        "keep_top_k": nms.max_det,
        "background_label_id": -1,
    }
    return Config(
        {
            "onnx_config": onnx_config,
            "backend_config": {"type": "onnxruntime"},
            "codebase_config": {"type": "mmpose", "task": "PoseDetection", "post_processing": post},
        }
    )


def zero_padding_rows(path: Path, score_thr: float) -> None:
    """Rewrite the graph at `path` so rows scoring <= score_thr are all zeros in dets and keypoints.

    mmdeploy pads its NMS result with index -1, which gathers a real prior's (sub-threshold) box and
    keypoints, and in a batch of several images the flattened index -1 even reaches another image.
    Zero rows are what recipekit's comparisons and consumers treat as padding; real detections
    always score above the NMS threshold, so they are untouched.
    """
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(path))
    graph, names = model.graph, {"dets": "dets_raw", "keypoints": "keypoints_raw"}
    for node in graph.node:
        node.input[:] = [names.get(n, n) for n in node.input]
        node.output[:] = [names.get(n, n) for n in node.output]
    consts = {
        "pad_thr": np.float32(score_thr),
        "pad_zero": np.float32(0),
        "pad_start": np.array([4], np.int64),
        "pad_end": np.array([5], np.int64),
        "pad_axis": np.array([-1], np.int64),
        "pad_kpt_axis": np.array([3], np.int64),
    }
    graph.initializer.extend(numpy_helper.from_array(np.asarray(v), k) for k, v in consts.items())
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    unsqueeze = (
        helper.make_node("Unsqueeze", ["pad_keep", "pad_kpt_axis"], ["pad_keep4"])
        if opset >= 13
        else helper.make_node("Unsqueeze", ["pad_keep"], ["pad_keep4"], axes=[3])
    )
    graph.node.extend(
        [
            helper.make_node("Slice", ["dets_raw", "pad_start", "pad_end", "pad_axis"], ["pad_score"]),
            helper.make_node("Greater", ["pad_score", "pad_thr"], ["pad_keep"]),
            helper.make_node("Where", ["pad_keep", "dets_raw", "pad_zero"], ["dets"]),
            unsqueeze,
            helper.make_node("Where", ["pad_keep4", "keypoints_raw", "pad_zero"], ["keypoints"]),
        ]
    )
    _name_output_dims(graph)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def _name_output_dims(graph: Any) -> None:
    """Declare dets (B, num_dets, 5) and keypoints (B, num_dets, K, 3) instead of the exporter's
    generated dim names, B being the input's batch dim."""
    batch = graph.input[0].type.tensor_type.shape.dim[0]
    for out in graph.output:
        dims = out.type.tensor_type.shape.dim
        for i, dim in enumerate(dims):
            if i == 0:
                dim.CopyFrom(batch)
            elif i == 1:
                dim.Clear()
                dim.dim_param = "num_dets"
            elif out.name == "dets" and i == 2:
                dim.Clear()
                dim.dim_value = 5


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence mmengine / mmdeploy logs below ERROR (init_weights dumps every parameter; mmdeploy warns
    about registry scopes it then resolves) and the tracer's warnings about constants it bakes in."""
    import logging
    import warnings

    import torch

    install_compat()
    from mmengine.logging import MMLogger

    MMLogger.get_current_instance()
    MMLogger.get_instance("mmdeploy")
    saved = {name: lg.level for name, lg in MMLogger._instance_dict.items()}  # noqa: SLF001
    for lg in MMLogger._instance_dict.values():  # noqa: SLF001
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        for name, level in saved.items():
            MMLogger._instance_dict[name].setLevel(level)  # noqa: SLF001


@contextlib.contextmanager
def torchscript_onnx_export() -> Iterator[None]:
    """mmdeploy calls torch.onnx.export without `dynamo=`; torch >= 2.9 defaults to the dynamo
    exporter, which ignores mmdeploy's rewriters. Pin the TorchScript exporter while mmdeploy runs."""
    import torch

    original = torch.onnx.export
    torch.onnx.export = functools.partial(original, dynamo=False)
    try:
        yield
    finally:
        torch.onnx.export = original
