"""The WebGPU target family: the browser package, the webgpu-lint and webgpu-browser gates, and the
headless-Chromium runner (`web/`)."""
