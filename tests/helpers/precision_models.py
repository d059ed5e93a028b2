"""tinydet: a small detector built from its architecture with a fixed seed, for the precision tests.

Four stride-2 convolutions (stride 16), a two-class score map and box offsets around each cell,
then top-k: output `dets` (B, K, 6) = x1, y1, x2, y2, score, class. The score head's scale and
bias are set once from the sample images (so a handful of cells score above 0.5 on photos), the
way the synthetic YOLO weights are made to detect something; unlike those template matchers, its
detections follow broad image content, so INT8 keeps most of them (measured: agreement about 0.93)
while a badly calibrated INT8 model does not.
"""

from __future__ import annotations

from pathlib import Path

SAMPLES = ["ultralytics:bus.jpg", "ultralytics:zidane.jpg"]
KINDS = {"dets": {"kind": "detections", "box": [0, 4], "score": 4, "class": 5}}


def _net(samples, k: int = 20):
    import torch
    from torch import nn

    class TinyDet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            gen = torch.Generator().manual_seed(0)
            chans, layers = [3, 16, 32, 32, 32], []
            for a, b in zip(chans, chans[1:], strict=False):
                layers += [nn.Conv2d(a, b, 3, 2, 1), nn.ReLU()]
            self.body = nn.Sequential(*layers)
            self.score, self.reg, self.k = nn.Conv2d(32, 2, 1), nn.Conv2d(32, 4, 1), k
            with torch.no_grad():
                for p in self.parameters():
                    p.copy_(torch.randn(p.shape, generator=gen) * (2 / max(1, p[0].numel())) ** 0.5)
                z = self.score(self.body(samples)).transpose(0, 1).flatten(1)
                hi, sd = z.quantile(0.97, dim=1), z.std(dim=1)
                self.score.weight.div_(sd[:, None, None, None] / 3)
                self.score.bias.copy_((self.score.bias - hi) / sd * 3)

        def forward(self, x):
            f = self.body(x)
            b, _, h, w = f.shape
            s = torch.sigmoid(self.score(f)).flatten(2)
            r = torch.tanh(self.reg(f)).flatten(2) * 8
            ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
            c = torch.stack([xs, ys], 0).flatten(1).float() * 16 + 8
            boxes = torch.cat([c - 24 + r[:, :2], c + 24 + r[:, 2:]], 1)
            score, cls = s.max(1)
            top, idx = score.topk(self.k, dim=1)
            bx = boxes.gather(2, idx[:, None].expand(b, 4, self.k)).transpose(1, 2)
            return torch.cat([bx, top[..., None], cls.gather(1, idx)[..., None].float()], 2)

    return TinyDet().eval()


def tinydet_onnx(path: Path, imgsz: int = 320) -> Path:
    import numpy as np
    import torch

    from recipekit.onnx.preprocess import image_tensor, resolve_sample
    from recipekit.recipe.schema import Preprocess

    pre = Preprocess()
    xs = [image_tensor(resolve_sample(s, path.parent), (imgsz, imgsz), pre) for s in SAMPLES]
    net = _net(torch.from_numpy(np.concatenate(xs)))
    torch.onnx.export(
        net,
        torch.zeros(1, 3, imgsz, imgsz),
        str(path),
        input_names=["images"],
        output_names=["dets"],
        opset_version=17,
        dynamo=False,
    )
    return path


RECIPE = """name: tinydet
source:
  kind: onnx
  path: tinydet.onnx
  output_kinds: {{dets: {{kind: detections, box: [0, 4], score: 4, class: 5}}}}
input: {{samples: [ultralytics:bus.jpg, ultralytics:zidane.jpg]{input}}}
export: {{opset: 17, imgsz: [{imgsz}, {imgsz}], precision: {precision}}}
targets: {{ort: {{}}}}
gates: {{parity: {{box_px: 1.0, score_abs: 0.01}}{gates}}}
"""


def write_recipe(folder: Path, precision: str, *, imgsz: int = 320, input: str = "", gates: str = "") -> Path:
    """tinydet.yaml (and tinydet.onnx) in `folder`: the onnx source with its detections declared."""
    if not (folder / "tinydet.onnx").is_file():
        tinydet_onnx(folder / "tinydet.onnx", imgsz)
    path = folder / "tinydet.yaml"
    path.write_text(RECIPE.format(imgsz=imgsz, precision=precision, input=input, gates=gates))
    return path
