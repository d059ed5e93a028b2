"""Open a page in real headless Chromium over the DevTools protocol (on a pipe: no port, no network),
take a screenshot and collect every console error, uncaught exception and failed load it logged."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--mute-audio",
)


class DevTools:
    """Chromium started with --remote-debugging-pipe: commands on its fd 3, replies and events on fd 4."""

    def __init__(self, chromium: str, width: int = 1280, height: int = 900) -> None:
        self.profile = tempfile.mkdtemp(prefix="rk-cdp-")
        to_child, self._out = os.pipe()
        self._in, from_child = os.pipe()

        def fds() -> None:
            os.dup2(to_child, 3)
            os.dup2(from_child, 4)

        args = [
            chromium,
            *FLAGS,
            "--remote-debugging-pipe",
            f"--window-size={width},{height}",
            f"--user-data-dir={self.profile}",
            "about:blank",
        ]
        self.proc = subprocess.Popen(
            args,
            pass_fds=(3, 4),
            preexec_fn=fds,
            start_new_session=True,  # noqa: PLW1509
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_child)
        os.close(from_child)
        self._buf, self._id, self.events = b"", 0, []

    def send(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 30) -> dict:
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._out, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            reply = self._next(deadline)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)
        raise TimeoutError(method)

    def wait_event(self, method: str, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        for seen in self.events:
            if seen.get("method") == method:
                return seen
        while time.monotonic() < deadline:
            event = self._next(deadline)
            self.events.append(event)
            if event.get("method") == method:
                return event
        raise TimeoutError(method)

    def _next(self, deadline: float) -> dict:
        while b"\0" not in self._buf:
            if time.monotonic() > deadline:
                raise TimeoutError("no message from Chromium")
            chunk = os.read(self._in, 1 << 20)
            if not chunk:
                raise RuntimeError(f"Chromium closed the pipe (exit code {self.proc.poll()})")
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def close(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)
        os.close(self._in)
        os.close(self._out)
        subprocess.run(["rm", "-rf", self.profile], check=False)


def errors_of(events: list[dict]) -> list[str]:
    """Console errors, uncaught exceptions and error log entries (e.g. a failed load) as text."""
    out = []
    for e in events:
        p = e.get("params", {})
        if e.get("method") == "Runtime.consoleAPICalled" and p.get("type") in {"error", "assert"}:
            out.append("console: " + " ".join(str(a.get("value", a.get("description", ""))) for a in p["args"]))
        elif e.get("method") == "Runtime.exceptionThrown":
            out.append("exception: " + json.dumps(p.get("exceptionDetails", {}))[:500])
        elif e.get("method") == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            out.append(f"log: {p['entry'].get('text')} {p['entry'].get('url', '')}")
    return out


def screenshot(chromium: str, url: str, png: Path, settle_s: float = 0.5) -> dict[str, Any]:
    """Load `url`, wait for its load event, save a full-page PNG; returns errors, title and page size."""
    dt = DevTools(chromium)
    try:
        target = dt.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = dt.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            dt.send(f"{domain}.enable", session=session)
        dt.send("Page.navigate", {"url": url}, session=session)
        dt.wait_event("Page.loadEventFired")
        time.sleep(settle_s)
        size = dt.send(
            "Runtime.evaluate",
            {
                "expression": "[document.title, document.body.scrollWidth, "
                "document.body.scrollHeight, document.querySelectorAll('svg').length]",
                "returnByValue": True,
            },
            session=session,
        )["result"]["value"]
        shot = dt.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}, session=session)
        png.write_bytes(base64.b64decode(shot["data"]))
        return {"errors": errors_of(dt.events), "title": size[0], "width": size[1], "height": size[2], "svgs": size[3]}
    finally:
        dt.close()
