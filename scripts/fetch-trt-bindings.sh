#!/usr/bin/env bash
# Download the TensorRT Python bindings wheels the TensorRT code is checked against (no GPU libraries:
# the bindings wheels hold only the pybind11 module). tests/targets/test_trt_api.py reads the names
# they export. The releases: every TensorRT the trt-jetson bundle plans (8.6 for JetPack 5: PyPI has
# no 8.5 bindings; 10.3 for JetPack 6; 10.13 and 10.16 for JetPack 7.x; 11.4.0 for TensorRT 11.4.1 on
# JetPack >= 7.2.2, whose SBSA build is not on PyPI), which also span the `tensorrt` extra's range.
# Safe to run again: a wheel already there is not downloaded again.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="$ROOT/.cache/trt-bindings"
PY="${1:-$ROOT/.venv}/bin/python"
mkdir -p "$DEST"
for spec in tensorrt-bindings==8.6.1 tensorrt-cu12-bindings==10.3.0 tensorrt-cu13-bindings==10.13.3.9 \
            tensorrt-cu12-bindings==10.16.1.11 tensorrt-cu13-bindings==11.4.0.106; do
    name="${spec%%==*}"; version="${spec##*==}"
    if compgen -G "$DEST/${name//-/_}-${version}-*.whl" > /dev/null; then
        echo "setup: $spec bindings wheel present"
    else
        echo "setup: downloading the $spec bindings wheel"
        "$PY" -m pip download --disable-pip-version-check -q --no-deps --only-binary=:all: \
            --python-version 3.11 --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
            -d "$DEST" "$spec"
    fi
done
