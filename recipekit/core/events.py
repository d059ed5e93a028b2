"""Step events: what every executor (inline, the local pool, Dask) reports while a run goes on, and what the console,
`--json` and the reports are fed by. An event sink is any callable taking a StepEvent.

As JSON (`--json`, one object per line):
  {"event": "step-started", "task": "yolo11n:export", "time": 1733040000.12}
  {"event": "step-finished", "task": ..., "status": "ran", "seconds": 2.31, "key": "<sha256>" | null,
   "detail": "why it was skipped or where it came from", "error": "the failure's text", "time": ...}
  {"event": "run-error", "message": ..., "time": ...}
status: ran | cached | failed | failed (cached) | blocked | unavailable | unverified | skipped.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

STARTED, FINISHED, RUN_ERROR = "step-started", "step-finished", "run-error"
NOTE_KEYS = ("reason", "remote", "where", "note")  # result fields that say why or where, joined into `detail`


@dataclass(frozen=True)
class StepEvent:
    event: str
    task: str = ""
    status: str = ""
    seconds: float = 0.0
    key: str | None = None
    detail: str = ""
    error: str = ""
    time: float = field(default_factory=time.time)

    @classmethod
    def started(cls, task: str) -> StepEvent:
        return cls(STARTED, task)

    @classmethod
    def finished(cls, result: dict[str, Any]) -> StepEvent:
        """From a step's result dict (status, seconds_wall, key, reason, error, ...)."""
        notes = [str(result[k]) for k in NOTE_KEYS if result.get(k)]
        return cls(
            FINISHED,
            result["task"],
            result["status"],
            float(result.get("seconds_wall") or 0.0),
            result.get("key"),
            "; ".join(notes),
            str(result.get("error") or ""),
        )

    @classmethod
    def run_error(cls, message: str) -> StepEvent:
        return cls(RUN_ERROR, error=message)

    @property
    def failed(self) -> bool:
        return self.status.startswith("failed")

    def to_json(self) -> dict[str, Any]:
        if self.event == STARTED:
            return {"event": self.event, "task": self.task, "time": round(self.time, 3)}
        if self.event == RUN_ERROR:
            return {"event": self.event, "message": self.error, "time": round(self.time, 3)}
        return {
            "event": self.event,
            "task": self.task,
            "status": self.status,
            "seconds": round(self.seconds, 3),
            "key": self.key,
            "detail": self.detail,
            "error": self.error,
            "time": round(self.time, 3),
        }


EventSink = Callable[[StepEvent], None]


def discard(event: StepEvent) -> None:
    """The sink of a run nobody watches."""
