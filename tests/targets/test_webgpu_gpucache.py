"""The browser gate keeps Chromium's GPU caches in the cache folder, one set per Chromium version,
and gives the same verdict and figures with them as without."""

from __future__ import annotations

import socket

import pytest
from helpers import webgpu_models as models

from recipekit.targets.webgpu.browser import WebGpuBrowser
from recipekit.targets.webgpu.web import find_chromium, find_ortweb
from recipekit.targets.webgpu.web.chromium import chromium_version
from recipekit.targets.webgpu.web.gpucache import KEPT, GpuCache
from recipekit.targets.webgpu.web.server import LoopbackServer

needs_browser = pytest.mark.skipif(
    find_chromium()[0] is None or find_ortweb()[0] is None, reason=find_chromium()[1] or find_ortweb()[1]
)


def test_one_folder_and_one_port_per_chromium_version(tmp_path):
    a, b = GpuCache(tmp_path, "Chromium 150.0.7871.100 built on Debian"), GpuCache(tmp_path, "Chromium 151.0.1")
    assert a.folder.parent == tmp_path and a.folder != b.folder and "150.0.7871.100" in a.folder.name
    assert a.preferred_port() == GpuCache(tmp_path, "Chromium 150.0.7871.100 built on Debian").preferred_port()
    assert 20000 <= a.preferred_port() < 60000
    assert GpuCache(None, "x").folder is None and GpuCache(None, "x").preferred_port() == 0


def test_a_taken_port_falls_back_to_another(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        taken = s.getsockname()[1]
        with LoopbackServer({}, {}, port=taken) as server:
            assert server.url.startswith("http://127.0.0.1:") and not server.url.endswith(f":{taken}")


@pytest.mark.slow
@needs_browser
def test_the_gate_fills_the_cache_and_passes_the_same_with_it(tmp_path):
    path = models.nonzero_pad(tmp_path / "np.onnx", (64, 64))
    ctx = models.gate_context(path, models.recipe(64, bundle="webgpu"), "webgpu")
    ctx.state = tmp_path / "state"
    first = WebGpuBrowser().check(ctx)
    folder = GpuCache(ctx.state, chromium_version()).folder
    kept = [name for name in KEPT if (folder / name).is_dir()]
    assert "Default/Code Cache" in kept, sorted(p.name for p in folder.rglob("*"))[:20]
    second = WebGpuBrowser().check(ctx)
    assert first.status == second.status == "passed", (first.failures, second.failures)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(first.figures["comparisons"]) == strip(second.figures["comparisons"])
    assert not list(tmp_path.glob("state/*.new")) and not list(folder.glob("**/*.old"))
