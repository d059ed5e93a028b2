"""A loopback HTTP server for the browser runs: static files with COOP/COEP, and a result inbox.

COOP `same-origin` + COEP `require-corp` make the page cross-origin isolated, so onnxruntime-web
gets SharedArrayBuffer (threads) exactly as a deployed page with those headers would. It binds
127.0.0.1 on an ephemeral port and nothing else: the machine's other addresses never see it.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".json": "application/json",
    ".wasm": "application/wasm",
    ".css": "text/css",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
}
ISOLATION = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cache-Control": "no-store",
}
MAX_POST = 512 * 1024 * 1024


class Inbox:
    """Jobs for the page (`queue`, handed out by GET /next) and the reports it POSTs back; `wait` blocks until
    a report arrives (for one job id, or any) or time runs out."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.reports: list[dict[str, Any]] = []
        self.progress: list[str] = []
        self._jobs: list[dict[str, Any]] = []

    def put(self, report: dict[str, Any]) -> None:
        with self._cond:
            self.reports.append(report)
            self._cond.notify_all()

    def queue(self, job: dict[str, Any]) -> None:
        with self._cond:
            self._jobs.append(job)
            self._cond.notify_all()

    def next_job(self, timeout: float) -> dict[str, Any]:
        """The next queued job, or {"wait": true} after `timeout` (the page asks again)."""
        with self._cond:
            self._cond.wait_for(lambda: bool(self._jobs), timeout)
            return self._jobs.pop(0) if self._jobs else {"wait": True}

    def wait(self, timeout: float, job: int | None = None) -> dict[str, Any] | None:
        """The last report (for `job`: the report with that id, or one that names no job, e.g. a page error)."""

        def found() -> dict[str, Any] | None:
            for r in reversed(self.reports):
                if job is None or r.get("id") in (job, None):
                    return r
            return None

        with self._cond:
            self._cond.wait_for(lambda: found() is not None, timeout)
            return found()


class _Quiet(ThreadingHTTPServer):
    """A page that goes away mid-request (Chromium closed while the page long-polls) is no error."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class LoopbackServer:
    """Serves `files` (url path -> file) and `mounts` (url prefix -> folder, flat), with isolation headers."""

    def __init__(
        self, files: dict[str, Path] | None = None, mounts: dict[str, Path] | None = None, port: int = 0
    ) -> None:
        """`port`: the one to prefer (any free one if it is taken); 0: any free one."""
        self.files = dict(files or {})
        self.mounts = dict(mounts or {})
        self.inbox = Inbox()
        try:
            self._httpd = _Quiet(("127.0.0.1", port), _handler(self))
        except OSError:  # taken (another build's gate): same page, another origin
            self._httpd = _Quiet(("127.0.0.1", 0), _handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="recipekit-web", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def resolve(self, path: str) -> Path | None:
        """The file behind a URL path, or None; mounts serve plain names only (no sub-folders, no '..')."""
        if path in self.files:
            return self.files[path]
        prefix, _, name = path.rpartition("/")
        folder = self.mounts.get(prefix + "/")
        if folder is None or not name or name.startswith("."):
            return None
        cand = folder / name
        return cand if cand.is_file() else None

    def __enter__(self) -> LoopbackServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop serving and release the port (safe to call twice)."""
        if self._thread.is_alive():
            self._httpd.shutdown()
            self._thread.join(timeout=5)
        self._httpd.server_close()


def _handler(server: LoopbackServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet by design
            pass

        def _head(self, code: int, ctype: str, length: int) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(length))
            for key, value in ISOLATION.items():
                self.send_header(key, value)
            self.end_headers()

        def do_GET(self) -> None:
            path = unquote(urlsplit(self.path).path)
            if path == "/next":  # the page's long poll for its next job
                body = json.dumps(server.inbox.next_job(2.0)).encode()
                self._head(200, "application/json", len(body))
                self.wfile.write(body)
                return
            found = server.resolve(path)
            if found is None:
                body = f"not found: {path}".encode()
                self._head(404, "text/plain", len(body))
                self.wfile.write(body)
                return
            data = found.read_bytes()
            self._head(200, TYPES.get(found.suffix.lower(), "application/octet-stream"), len(data))
            self.wfile.write(data)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(min(length, MAX_POST))
            path = urlsplit(self.path).path
            if path == "/progress":
                server.inbox.progress.append(body.decode("utf-8", "replace"))
            else:
                try:
                    server.inbox.put(json.loads(body))
                except ValueError as exc:
                    server.inbox.put({"error": f"page sent unreadable JSON to {path}: {exc}"})
            self._head(204, "text/plain", 0)

    return Handler
