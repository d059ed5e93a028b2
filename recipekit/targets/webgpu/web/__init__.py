"""Browser runs of ONNX models in onnxruntime-web: a loopback server, headless Chromium, the pages.

`BrowserSession` (one page, job after job) is what the webgpu-browser gate and the browser localization
backend use, `run_in_browser` its one-job form; the assets folder holds the gate's runner page
and the viewer page the webgpu target ships.
"""

from recipekit.targets.webgpu.web.chromium import find_chromium
from recipekit.targets.webgpu.web.ortweb import BUNDLES, find_ortweb, pinned_version
from recipekit.targets.webgpu.web.run import (
    BrowserReport,
    BrowserSession,
    CaseRun,
    EpRun,
    require_tools,
    run_in_browser,
)

__all__ = [
    "BUNDLES",
    "BrowserReport",
    "BrowserSession",
    "CaseRun",
    "EpRun",
    "find_chromium",
    "find_ortweb",
    "pinned_version",
    "require_tools",
    "run_in_browser",
]
