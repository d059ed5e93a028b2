"""What every plugin (source, fix, target, gate) shares: a name, a version and a static Config."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """A config section that rejects unknown keys, so a typo is an error and not a silent default."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Plugin:
    """Base of every plugin. `version` goes into step keys: bump it when the output would change."""

    name: ClassVar[str]
    version: ClassVar[str] = "1"
    Config: ClassVar[type[Strict]] = Strict
    resources: ClassVar[dict[str, float]] = {}
    """What its steps need of a machine, as Dask worker resources (e.g. {"trt": 1}: a CUDA GPU with
    TensorRT; {"jetson": 1}: the device itself). On a cluster they run only on workers started with
    `dask worker --resources "trt=1"`; a target's resources also apply to the gates that run its artifact."""
    imports: ClassVar[tuple[str, ...]] = ("onnx", "onnxruntime", "cv2")  # cv2: samples' preprocessing
    """The heavy modules its steps import. A `-j N` worker imports those of the planned steps once, as it
    starts, and nothing else (an unneeded torchvision costs a second on the critical path)."""

    @classmethod
    def before_import(cls) -> None:
        """Set up what its libraries read when they are first imported (environment, settings folders,
        import shims). Its steps call this themselves; a worker that preloads `imports` calls it first."""

    def __init__(self, config: Strict | None = None) -> None:
        self.config = config if config is not None else self.Config()
