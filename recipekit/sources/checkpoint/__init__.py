"""Load weight files without running code from them: every source loads checkpoints through here.

A pickle can call any function while it is read (`__reduce__` -> `os.system`), so no checkpoint is
read with `torch.load(weights_only=False)` unless the recipe says `source.trust_code: true`. By concern:

- `formats`: which format a file is in (torch zip, legacy torch pickle, safetensors), from headers.
- `pickles`: the globals a pickle asks for, read from its opcodes (never executed), split into module
  and attribute path the way the unpickler resolves them.
- `allow`: what each family may ask for: `state` (tensors and plain containers: torchvision, mmpose
  state dicts, python sources), `ultralytics` (Ultralytics' and torch.nn's layer classes and the data
  a trainer checkpoint pickles), `mmpose` (state dicts and mmengine's history buffer).
- `loader`: `check` at plan time (exit 2 naming the file and the global) and `load` at build time
  (`torch.load(weights_only=True)` with exactly the needed, allowed globals registered).

Each source family's patches of its library's own loaders live in that family's package
(`sources/ultralytics/loading.py`, `sources/mmpose/loading.py`).
"""

from recipekit.sources.checkpoint.allow import FAMILIES, NUMPY_DATA, TORCH_DATA, Family
from recipekit.sources.checkpoint.formats import CheckpointRefused, sniff
from recipekit.sources.checkpoint.loader import TRUST_HINT, check, load, refused_names, state_dict
from recipekit.sources.checkpoint.pickles import GlobalName, needed_globals, pickle_globals

__all__ = [
    "FAMILIES",
    "NUMPY_DATA",
    "TORCH_DATA",
    "TRUST_HINT",
    "CheckpointRefused",
    "Family",
    "GlobalName",
    "check",
    "load",
    "needed_globals",
    "pickle_globals",
    "refused_names",
    "sniff",
    "state_dict",
]
