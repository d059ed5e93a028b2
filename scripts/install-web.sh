#!/usr/bin/env bash
# Install what the webgpu target and the webgpu-browser gate need: Debian's Chromium and the
# onnxruntime-web version pinned in web/package.json, exactly as web/package-lock.json locks it.
#
# Usage: scripts/install-web.sh
#
# Safe to run twice: apt-get runs only when /usr/bin/chromium is missing (and `apt-get update` only
# when the package is not known yet); `npm ci` runs only when web/node_modules is missing or older
# than the lockfile, or holds another onnxruntime-web version than the one pinned.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WEB="$ROOT/web"
step() { echo "install-web: $*"; }

if [[ -x /usr/bin/chromium ]]; then
    step "chromium present: $(/usr/bin/chromium --version 2>/dev/null || echo /usr/bin/chromium)"
else
    SUDO=()
    [[ "$(id -u)" -ne 0 ]] && SUDO=(sudo)
    if ! apt-cache show chromium >/dev/null 2>&1; then
        step "apt-get update (chromium not in the package index yet)"
        "${SUDO[@]}" apt-get update
    fi
    step "apt-get install chromium"
    DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y --no-install-recommends chromium
fi

want="$(node -e "console.log(require('$WEB/package.json').dependencies['onnxruntime-web'])")"
have="$(node -e "try{console.log(require('$WEB/node_modules/onnxruntime-web/package.json').version)}catch(e){}")"
stamp="$WEB/node_modules/.package-lock.json"
if [[ "$have" == "$want" && -f "$stamp" && "$stamp" -nt "$WEB/package-lock.json" ]]; then
    step "onnxruntime-web $have already installed in web/node_modules"
else
    step "npm ci in web/ (onnxruntime-web $want; installed: ${have:-none})"
    (cd "$WEB" && npm ci --no-audit --no-fund)
fi
