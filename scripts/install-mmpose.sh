#!/usr/bin/env bash
# Install the MMPose / MMDeploy stack (the `mmpose` source) into a virtual environment.
#
# Usage: scripts/install-mmpose.sh [VENV]      (default: .venv)
#
# Why a script and not only pip extras: the stack's declared dependencies cannot be resolved as
# published, so several packages go in with --no-deps and their real run-time needs are listed here.
#   - mmcv-lite 2.1.0, not mmcv: full mmcv compiles its C++/CUDA ops for ~50 min on this machine and
#     RTMO uses none of them; mmdet 3.3.0 requires mmcv < 2.2.0. recipekit.sources.mmpose.mmcv_compat
#     supplies the few `mmcv.ops` names that importing mmdet/mmpose reaches.
#   - mmpose 1.3.2 --no-deps: its `chumpy` requirement does not build (and is only for SMPL).
#   - mmdeploy 1.3.1 --no-deps: it pins protobuf<=3.20.2; onnx and the rest work with current protobuf.
#   - mmdet 3.3.0 --no-deps: it would pull a full `mmcv` build.
#   - xtcocotools: the PyPI wheel is compiled against numpy 1 and fails to import under numpy 2, so it
#     is built from source (needs gcc and the Python headers).
# Safe to run twice: each step is skipped when its package already imports at the right version.
set -euo pipefail

VENV="${1:-.venv}"
PY="$VENV/bin/python"
if [[ ! -x "$PY" ]]; then
    echo "install-mmpose: no Python at $PY (create the venv first)" >&2
    exit 2
fi
PIP=("$PY" -m pip install --disable-pip-version-check)

have() {  # have DIST VERSION: is distribution DIST installed at VERSION?
    "$PY" - "$1" "$2" <<'EOF'
import sys
from importlib.metadata import PackageNotFoundError, version
try:
    sys.exit(0 if version(sys.argv[1]) == sys.argv[2] else 1)
except PackageNotFoundError:
    sys.exit(1)
EOF
}

step() { echo "install-mmpose: $*"; }

step "run-time dependencies (mmengine and the small pure-Python packages the stack imports)"
"${PIP[@]}" -q mmengine==0.10.7 addict yapf termcolor rich json-tricks munkres scipy shapely \
    terminaltables tqdm six pycocotools aenum multiprocess prettytable cython

for spec in mmcv-lite==2.1.0 mmdet==3.3.0 mmpose==1.3.2 mmdeploy==1.3.1; do
    if have "${spec%%==*}" "${spec##*==}"; then
        step "$spec already installed"
    else
        step "installing $spec with --no-deps"
        "${PIP[@]}" -q --no-deps "$spec"
    fi
done

if "$PY" -c "import xtcocotools._mask" 2>/dev/null; then
    step "xtcocotools already imports under this numpy"
else
    step "building xtcocotools from source against the installed numpy (about a minute)"
    # --no-build-isolation: its setup.py imports numpy and Cython without declaring them as build needs.
    "${PIP[@]}" -q --no-binary xtcocotools --no-build-isolation --no-deps --force-reinstall --no-cache-dir \
        xtcocotools==1.14.3
fi

step "checking the stack imports"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" "$PY" - <<'EOF'
from recipekit.sources.mmpose.mmcv_compat import install
install()
import mmcv, mmdet, mmpose, mmdeploy, numpy, xtcocotools._mask  # noqa: F401,E401
print(f"install-mmpose: ok: mmcv-lite {mmcv.__version__}, mmdet {mmdet.__version__}, "
      f"mmpose {mmpose.__version__}, mmdeploy {mmdeploy.__version__}, numpy {numpy.__version__}")
EOF
