"""What a build shows while it runs, fed by step events (recipekit.core.events) from any executor.

Three forms, chosen once per command:
- `live` (stdout is a terminal): rich draws the running steps with their elapsed time under the
  finished steps' lines; colours unless NO_COLOR is set (https://no-color.org) or TERM=dumb.
- `plain` (a pipe, a file, CI): one line per finished step, no escape codes:
  `  <status:16> <seconds:7.2f>s  <task>  (<detail>)`, and the error's text under a failed step.
- `json` (`--json`): one JSON object per line per event; the command's summary is JSON lines too.
`quiet` keeps only failures (and the summary). The console writes to a duplicate of the terminal's
stdout taken at start, so a step that captures fd 1 and 2 for its log never swallows it.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import Any, TextIO

from recipekit.core.events import FINISHED, RUN_ERROR, STARTED, StepEvent

STYLES = {
    "ran": "green",
    "cached": "cyan",
    "failed": "bold red",
    "blocked": "yellow",
    "unavailable": "yellow",
    "unverified": "yellow",
    "skipped": "dim",
}


def choose_mode(json_lines: bool, stream: TextIO | None = None) -> str:
    """json when asked; live on a terminal that can move its cursor; plain otherwise."""
    if json_lines:
        return "json"
    stream = stream or sys.stdout
    dumb = os.environ.get("TERM", "") in {"dumb", "unknown"}
    return "live" if stream.isatty() and not dumb else "plain"


def step_line(event: StepEvent) -> str:
    extra = f"  ({event.detail})" if event.detail else ""
    return f"  {event.status:<16} {event.seconds:7.2f}s  {event.task}{extra}"


def target_lines(
    results: dict[str, dict[str, Any]], steps: list[Any], recipe: str, targets: list[str]
) -> list[tuple[str, dict[str, Any]]]:
    """Per target of a build: a line for people and the same as a JSON record ({"event": "target"}).

    A failure counts against a target when its step is that target's (by the step's target, never a
    substring of its name: a trt-jetson step is not trt's) or is shared by every target (export,
    golden, the fix chain, precision)."""
    lines = []
    for target in targets:
        record = {"event": "target", "recipe": recipe, "target": target}
        res = results.get(f"{recipe}:publish:{target}") or {}
        mine = [s.task for s in steps if s.task.split(":", 1)[0] == recipe and s.target in (None, target)]
        failed = [(t, results[t]) for t in mine if results.get(t, {}).get("status", "").startswith("failed")]
        status = res.get("status", "")
        if status in {"ran", "cached"} and res.get("reason"):  # published, but a gate was skipped
            text = f"{recipe}/{target}: published {res['path']}, UNVERIFIED ({res['reason']})"
            lines.append((text, {**record, "status": "unverified", "path": res["path"], "reason": res["reason"]}))
        elif status in {"ran", "cached"}:
            lines.append(
                (f"{recipe}/{target}: published {res['path']}", {**record, "status": "published", "path": res["path"]})
            )
        elif status in {"unavailable", "unverified", "skipped"}:
            text = f"{recipe}/{target}: {status} ({res.get('reason', '')})"
            lines.append((text, {**record, "status": status, "reason": res.get("reason", "")}))
        else:
            why = "; ".join(f"{t}: {r.get('error', '')}" for t, r in failed) or res.get("error") or "not built"
            lines.append(
                (f"{recipe}/{target}: FAILED, nothing published ({why})", {**record, "status": "failed", "reason": why})
            )
    return lines


class StepConsole:
    """An event sink and the command's output. Use as a context manager around the run."""

    def __init__(self, mode: str = "plain", quiet: bool = False) -> None:
        sys.stdout.flush()
        self.mode, self.quiet = mode, quiet
        self.stream = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1, encoding="utf-8")
        self.running: dict[str, float] = {}
        self.lock = threading.Lock()
        self._live: Any = None
        self._rich: Any = None

    def __enter__(self) -> StepConsole:
        if self.mode == "live":
            self._start_live()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
        if not self.stream.closed:
            self.stream.flush()
            self.stream.close()

    def __call__(self, event: StepEvent) -> None:
        with self.lock:
            if event.event == STARTED:
                self.running[event.task] = time.monotonic()
            elif event.event == FINISHED:
                self.running.pop(event.task, None)
            self._show(event)

    def _show(self, event: StepEvent) -> None:
        if self.mode == "json":
            self.stream.write(json.dumps(event.to_json()) + "\n")
        elif event.event == RUN_ERROR:
            self._line(f"error: {event.error}", "bold red")
        elif event.event == FINISHED and (event.failed or not self.quiet):
            self._line(step_line(event), STYLES.get(event.status.split(" ")[0]))
            if event.failed:
                self._line(f"      {event.error}", "red")

    def _line(self, text: str, style: str | None = None) -> None:
        if self._rich is None:
            self.stream.write(text + "\n")
            return
        from rich.text import Text

        self._rich.print(Text(text, style=style or ""), soft_wrap=True)

    def summary(self, text: str, record: dict[str, Any]) -> None:
        """One line of the command's result: text for people, `record` (an object) in json mode."""
        with self.lock:
            if self.mode == "json":
                self.stream.write(json.dumps(record, default=str) + "\n")
            else:
                self._line(text, "bold")

    def text(self, text: str) -> None:
        """Free text for people (a table); nothing in json mode."""
        if self.mode != "json":
            with self.lock:
                self._line(text)

    def _start_live(self) -> None:
        from rich.console import Console
        from rich.live import Live

        self._rich = Console(file=self.stream, highlight=False)
        if self.quiet or not self._rich.is_terminal:
            return
        self._live = Live(
            _Running(self),
            console=self._rich,
            refresh_per_second=4,
            transient=True,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._live.start()


class _Running:
    """The live part: one row per running step, its elapsed time redrawn on every refresh."""

    def __init__(self, console: StepConsole) -> None:
        self.console = console
        self.spinners: dict[str, Any] = {}

    def __rich__(self) -> Any:
        from rich.spinner import Spinner
        from rich.table import Table

        table = Table.grid(padding=(0, 1))
        now = time.monotonic()
        running = sorted(list(self.console.running.items()), key=lambda kv: kv[1])
        self.spinners = {t: self.spinners.get(t) or Spinner("dots", style="cyan") for t, _ in running}
        for task, t0 in running:
            table.add_row(self.spinners[task], f"running {now - t0:6.1f}s", task)
        return table
