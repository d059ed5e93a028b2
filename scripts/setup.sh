#!/usr/bin/env bash
# Set up everything recipekit needs on a fresh machine, into .venv at the repository root:
#   1. the virtual environment (Python 3.11)
#   2. torch 2.14.1 + torchvision 0.29.1 (pip takes both from this machine's disk)
#   3. recipekit itself (editable) with its pinned dependencies and the test tools
#   4. the OpenMMLab stack for the mmpose source (scripts/install-mmpose.sh)
#   5. Debian's chromium and the locked onnxruntime-web (scripts/install-web.sh)
#   6. the TensorRT bindings wheels the TensorRT code is checked against (scripts/fetch-trt-bindings.sh)
# Safe to run again: every step is skipped when what it installs is already there.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
step() { echo "setup: $*"; }

if [[ ! -x "$PY" ]]; then
    step "creating $VENV"
    "${PYTHON:-python3.11}" -m venv "$VENV"
fi
PIP=("$PY" -m pip install --disable-pip-version-check -q)

have() { "$PY" -c "import sys; from importlib.metadata import version; sys.exit(version('$1') != '$2')" 2>/dev/null; }

if have torch 2.14.1 && have torchvision 0.29.1; then
    step "torch 2.14.1 + torchvision 0.29.1 present"
else
    step "installing torch 2.14.1 + torchvision 0.29.1"
    "${PIP[@]}" torch==2.14.1 torchvision==0.29.1
fi

stamp="$VENV/.recipekit-installed"
# find_spec, not import: importing ultralytics would write its settings file into the home folder
if [[ -f "$stamp" && "$stamp" -nt pyproject.toml ]] && "$PY" -c "import importlib.util as u, sys; sys.exit(not all(u.find_spec(m) for m in ('recipekit', 'hydra', 'ultralytics', 'onnxruntime', 's3fs', 'distributed', 'moto')))" 2>/dev/null; then
    step "recipekit and its dependencies present"
else
    step "installing recipekit (editable) with pinned dependencies"
    "${PIP[@]}" -e ".[dev]"
    touch "$stamp"
fi

# A trained YOLOv8n (nudenet's 320n.onnx) for the INT8 benchmark and the shapes fixture's training:
# --no-deps, as its opencv-python-headless requirement would replace opencv-python's cv2.
if have nudenet 3.4.2; then
    step "nudenet 3.4.2 present"
else
    step "installing nudenet 3.4.2 (--no-deps)"
    "${PIP[@]}" --no-deps nudenet==3.4.2
fi

bash scripts/install-mmpose.sh "$VENV"
bash scripts/install-web.sh
bash scripts/fetch-trt-bindings.sh "$VENV"
step "done: $("$VENV/bin/recipekit" --version 2>/dev/null || echo recipekit installed)"
