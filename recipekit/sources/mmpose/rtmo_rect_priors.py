"""rtmo-rect-priors: mmpose RTMO's deploy mode swaps (W, H) for rectangular inputs (field notes, case 4).

mmpose 1.3.2 keeps `test_cfg["input_size"]` as (W, H) but, in the two `switch_to_deploy` methods that
precompute constants for export, reads it as (H, W):
- `RTMOHead.switch_to_deploy` builds the prior grid from `torch.rand(1, 1, W // s, H // s)`, so the
  exported `flatten_priors` / `flatten_stride` describe a W/s x H/s grid;
- `HybridEncoder.switch_to_deploy` does `h, w = input_size` and caches the positional encoding of a
  W/32 x H/32 grid as `pos_enc_i`.
Square inputs hide both; at 640x1280 boxes and keypoints land at the wrong grid cells. The ordinary
(non-deploy) path derives both from the real feature maps, so the parity gate catches the defect.
This source fix swaps in corrected copies of the two methods while the model is built and exported.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar

from recipekit.fixes.base import Check, FixContext, Guarantee, SourceFix
from recipekit.sources.mmpose.rtmo_checks import encoder_defect, head_defect, verify_graph

if TYPE_CHECKING:
    import onnx


def head_switch_to_deploy(self: Any, test_cfg: dict | None) -> None:
    """RTMOHead.switch_to_deploy (mmpose 1.3.2) with feature maps of (H // s, W // s)."""
    import torch

    if getattr(self, "deploy", False):
        return
    self.deploy = True
    w, h = (test_cfg or {}).get("input_size", (640, 640))
    featmap_sizes = [torch.Size((h // s, w // s)) for s in self.featmap_strides]
    self.mlvl_priors = self.prior_generator.grid_priors(featmap_sizes, dtype=torch.float32, device="cpu")
    self.flatten_priors = torch.cat(self.mlvl_priors)
    mlvl_strides = [
        self.flatten_priors.new_full((size.numel(),), stride)
        for size, stride in zip(featmap_sizes, self.featmap_strides, strict=True)
    ]
    self.flatten_stride = torch.cat(mlvl_strides)


def encoder_switch_to_deploy(self: Any, test_cfg: dict) -> None:
    """HybridEncoder.switch_to_deploy (mmpose 1.3.2) reading input_size as (W, H)."""
    if getattr(self, "deploy", False):
        return
    if self.num_encoder_layers > 0:
        for i, enc_ind in enumerate(self.use_encoder_idx):
            w, h = test_cfg["input_size"]
            h, w = int(h / 2 ** (3 + enc_ind)), int(w / 2 ** (3 + enc_ind))
            pos_enc = self.sincos_pos_enc(size=(h, w))
            self.register_buffer(f"pos_enc_{i}", pos_enc.transpose(-1, -2).reshape(1, h * w, -1))
    self.deploy = True


def _classes() -> tuple[type, type]:
    from recipekit.sources.mmpose.mmcv_compat import install

    install()
    from mmpose.models.heads.hybrid_heads.rtmo_head import RTMOHead
    from mmpose.models.necks.hybrid_encoder import HybridEncoder

    return RTMOHead, HybridEncoder


class RtmoRectPriors(SourceFix):
    """Corrects RTMO's deploy-mode (W, H) / (H, W) swap in prior grid and positional encoding."""

    name: ClassVar[str] = "rtmo-rect-priors"
    version: ClassVar[str] = "1"
    summary: ClassVar[str] = "RTMO deploy mode: build priors and positional encoding on an (H, W) grid"

    def check(self, ctx: FixContext) -> Check:
        """Runs the installed methods on tiny stand-ins at W=64, H=32 and looks at what they build."""
        try:
            head_cls, encoder_cls = _classes()
        except ImportError as exc:
            return Check("cannot-apply", f"mmpose RTMO is not importable: {exc}")
        import mmpose

        found = [
            name
            for name, bad in (
                ("RTMOHead.switch_to_deploy priors", head_defect(head_cls)),
                ("HybridEncoder.switch_to_deploy positional encoding", encoder_defect(encoder_cls)),
            )
            if bad
        ]
        if not found:
            return Check("not-needed", f"mmpose {mmpose.__version__} builds deploy constants on an (H, W) grid")
        return Check("applies", f"mmpose {mmpose.__version__} swaps (W, H) in: {', '.join(found)}")

    def patch(self, ctx: FixContext) -> contextlib.AbstractContextManager[None]:
        return _patched()

    def guarantee(self, model: onnx.ModelProto, ctx: FixContext) -> Guarantee:
        """The exported prior grid and cached positional encoding are laid out on (H/s, W/s) grids."""
        ok, detail = verify_graph(model, tuple(ctx.recipe.export.imgsz))
        return Guarantee(ok, detail)


@contextlib.contextmanager
def _patched() -> Iterator[None]:
    """Swap both methods in; restore whatever was there before on exit (nesting is harmless)."""
    head_cls, encoder_cls = _classes()
    saved = (head_cls.switch_to_deploy, encoder_cls.switch_to_deploy)
    head_cls.switch_to_deploy, encoder_cls.switch_to_deploy = head_switch_to_deploy, encoder_switch_to_deploy
    try:
        yield
    finally:
        head_cls.switch_to_deploy, encoder_cls.switch_to_deploy = saved
