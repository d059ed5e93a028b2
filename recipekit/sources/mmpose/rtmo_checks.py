"""Checks behind rtmo-rect-priors: is the installed mmpose defective, and is an exported graph right.

Both look at behaviour, not at source text, so a reformatted or upstream-fixed mmpose is judged by
what it builds: the library check runs the installed `switch_to_deploy` methods on tiny stand-ins,
and the graph check reads the constants the deploy path baked into the ONNX file.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import onnx

PROBE_WH = (64, 32)
"""A rectangular (W, H) input for the stand-ins: W != H, so a swap changes what gets built."""


def head_defect(head_cls: type) -> bool:
    """True when `head_cls.switch_to_deploy` lays its priors on a W/s x H/s grid (x never reaches H)."""
    from mmpose.models.task_modules.prior_generators import MlvlPointGenerator

    probe = SimpleNamespace(featmap_strides=(16,), prior_generator=MlvlPointGenerator([16], centralize_points=True))
    head_cls.switch_to_deploy(probe, {"input_size": PROBE_WH})
    return float(probe.flatten_priors[:, 0].max()) < PROBE_WH[1]


def encoder_defect(encoder_cls: type) -> bool:
    """True when `encoder_cls.switch_to_deploy` asks for the positional encoding of a (W/8, H/8) grid."""
    import torch

    class Probe(torch.nn.Module):
        num_encoder_layers, use_encoder_idx = 1, [0]

        def __init__(self) -> None:
            super().__init__()
            self.sizes: list[tuple[int, int]] = []

        def sincos_pos_enc(self, size: tuple[int, int]) -> torch.Tensor:
            self.sizes.append(tuple(size))
            return torch.zeros(1, 2, size[0] * size[1])

    probe = Probe()
    encoder_cls.switch_to_deploy(probe, {"input_size": PROBE_WH})
    return probe.sizes[0] != (PROBE_WH[1] // 8, PROBE_WH[0] // 8)


def _constants(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """Every float initializer and Constant-node value of the graph, by name."""
    import numpy as np
    from onnx import numpy_helper

    out = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            out[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return {k: v for k, v in out.items() if v.dtype == np.float32}


def _strides(consts: dict[str, np.ndarray], hw: tuple[int, int]) -> tuple[str, list[int]] | None:
    """The flatten_stride constant: one stride per prior, levels in runs, counts = (H/s)*(W/s)."""
    import numpy as np

    for name, arr in consts.items():
        flat = arr.reshape(-1)
        if arr.ndim and arr.shape[-1] in (flat.size, 1) and flat.size > 1:
            levels = [int(s) for s in dict.fromkeys(flat.tolist())]
            counts = [(hw[0] // s) * (hw[1] // s) for s in levels if s >= 1]
            if (
                len(counts) == len(levels)
                and sum(counts) == flat.size
                and np.array_equal(flat, np.repeat(np.array(levels, np.float32), counts))
            ):
                return name, levels
    return None


def _grid_ok(block: np.ndarray, rows: int, cols: int, stride: int) -> bool:
    """Points (x, y) in row-major order of a rows x cols grid spaced by `stride`."""
    import numpy as np

    g = block.reshape(rows, cols, 2)
    return bool(
        np.allclose(np.diff(g[..., 0], axis=1), stride)
        and np.allclose(np.diff(g[..., 1], axis=0), stride)
        and np.allclose(np.diff(g[..., 0], axis=0), 0)
        and np.allclose(np.diff(g[..., 1], axis=1), 0)
    )


def _priors_ok(consts: dict[str, np.ndarray], hw: tuple[int, int], levels: list[int]) -> tuple[bool, str]:
    total = sum((hw[0] // s) * (hw[1] // s) for s in levels)
    found = [(n, a.reshape(total, 2)) for n, a in consts.items() if a.size == total * 2 and a.shape[-1] == 2]
    if not found:
        return False, f"no prior-grid constant of {total} points found"
    for name, pts in found:
        start, good = 0, True
        for s in levels:
            rows, cols = hw[0] // s, hw[1] // s
            good = good and _grid_ok(pts[start : start + rows * cols], rows, cols, s)
            start += rows * cols
        if not good:
            return False, f"{name}: {total} priors are not row-major grids of {_grids(hw, levels)} (H x W) points"
    return True, f"{len(found)} prior constant(s) of {total} points form row-major {_grids(hw, levels)} (H x W) grids"


def _grids(hw: tuple[int, int], levels: list[int]) -> str:
    return " / ".join(f"{hw[0] // s}x{hw[1] // s}" for s in levels)


def _pos_enc_ok(consts: dict[str, np.ndarray], hw: tuple[int, int], levels: list[int]) -> tuple[bool, str]:
    """A 2-D sine encoding on an (h, w) grid: every channel varies along one grid axis only."""
    import numpy as np

    verdicts = []
    for name, enc in ((n, a) for n, a in consts.items() if ".pos_enc_" in n or n.startswith("pos_enc_")):
        for s in sorted({*levels, 8, 16, 32, 64}):
            h, w = hw[0] // s, hw[1] // s
            if enc.ndim == 3 and enc.shape[1] == h * w and h and w:
                g = enc.reshape(h, w, -1).astype(np.float64)
                along_y = np.abs(np.diff(g, axis=0)).max(axis=(0, 1)) if h > 1 else np.zeros(g.shape[-1])
                along_x = np.abs(np.diff(g, axis=1)).max(axis=(0, 1)) if w > 1 else np.zeros(g.shape[-1])
                bad = int((np.minimum(along_y, along_x) > 1e-5).sum())
                verdicts.append(
                    (bad == 0, f"{name} ({h}x{w} grid): {bad} of {g.shape[-1]} channels depend on both axes")
                )
                break
    if not verdicts:
        return True, "no cached positional encoding in the graph"
    return all(ok for ok, _ in verdicts), "; ".join(text for _, text in verdicts)


def verify_graph(model: onnx.ModelProto, hw: tuple[int, int]) -> tuple[bool, str]:
    """The deploy constants of an exported RTMO graph at input (H, W): priors and positional encoding."""
    consts = _constants(model)
    found = _strides(consts, hw)
    if found is None:
        return False, f"no flatten_stride constant matching an {hw[0]}x{hw[1]} input (not an RTMO deploy graph?)"
    levels = found[1]
    priors = _priors_ok(consts, hw, levels)
    pos = _pos_enc_ok(consts, hw, levels)
    return priors[0] and pos[0], f"{priors[1]}; {pos[1]}"
