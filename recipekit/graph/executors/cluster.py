"""The step graph on Dask: each step one task with its upstream steps' futures as arguments.

Resources: a step runs only on workers that offer what its plugin declares (`Plugin.resources`,
e.g. {"trt": 1}). A step whose resource no worker offers (or no longer offers, after a worker
left) is `unavailable` naming the resource, never left waiting. Publish steps run here, on the
machine that asked for the build, from entries fetched (verified) out of the caches. Step lines
are events here as each task starts and finishes, through the same `step_started` / `report_step`
as a local run, so the console shows them alike.
"""

from __future__ import annotations

import uuid
from typing import Any

from recipekit.core.events import EventSink, discard
from recipekit.graph.plan import Step
from recipekit.graph.runner import Outcome, report_step, settings_of, step_started

POLL_S = 0.5


def step_resources(step: Step) -> dict[str, float]:
    """What `step` needs of a worker: its plugin's resources, and its target's for the compile and
    the gates that run the built artifact (lints before the compile read only the ONNX)."""
    from recipekit.gates import GATES
    from recipekit.targets import TARGETS

    need: dict[str, float] = {}
    if step.kind == "gate":
        need.update(GATES.get(step.plugin).resources)
    if step.target and (step.kind == "compile" or (step.kind == "gate" and step.config.get("stage") == "post")):
        need.update(TARGETS.get(step.target).resources)
    return need


def offered(client: Any) -> set[str]:
    """The resources at least one connected worker offers."""
    workers = client.scheduler_info(n_workers=-1).get("workers", {}) if _takes_n(client) else None
    workers = workers if workers is not None else client.scheduler_info().get("workers", {})
    return {r for w in workers.values() for r, amount in (w.get("resources") or {}).items() if amount > 0}


def _takes_n(client: Any) -> bool:
    import inspect

    return "n_workers" in inspect.signature(client.scheduler_info).parameters


def _missing(need: dict[str, float], have: set[str]) -> list[str]:
    return sorted(r for r in need if r not in have)


def unavailable(step: Step, missing: list[str], left: bool = False, reason: str | None = None) -> dict[str, Any]:
    """The result of a step no worker can take, as its stage reports `unavailable`."""
    from recipekit.graph.context import Output
    from recipekit.graph.results import GateOutcome

    if reason is None:
        hint = " ".join(f'--resources "{r}=1"' for r in missing)
        why = "the worker that offered it left" if left else "no worker offers it"
        reason = f"needs resource {', '.join(missing)}: {why} (start one with: dask worker SCHEDULER {hint})"
    result = GateOutcome(status="unavailable", message=reason) if step.kind == "gate" else None
    out = Output(step.task, step.kind, "unavailable", step.key, result=result, reason=reason).to_json()
    return {**out, "seconds_wall": 0.0}


class Graph:
    """One run of `steps` on `client`; results recorded in `outcome` as they finish."""

    def __init__(
        self,
        client: Any,
        steps: list[Step],
        settings_by_recipe: dict[str, dict[str, Any]],
        events: EventSink,
        outcome: Outcome,
        on_cluster: bool,
    ) -> None:
        self.client, self.steps, self.events, self.outcome = client, steps, events, outcome
        self.settings_by_recipe = settings_by_recipe
        self.started: set[str] = set()
        self.on_cluster = on_cluster
        self.by_task = {s.task: s for s in steps}
        self.futures: dict[str, Any] = {}  # task -> Future
        self.tag = uuid.uuid4().hex[:8]

    def settings(self, step: Step) -> dict[str, Any]:
        """The build settings a worker gets for `step`."""
        return {**settings_of(self.settings_by_recipe, step.task), "on_cluster": self.on_cluster}

    def done(self, task: str) -> dict[str, Any] | None:
        return self.outcome.results.get(task)

    def submit_all(self) -> None:
        from recipekit.graph.executors.worker import run_task

        have = offered(self.client)
        for step in self.steps:
            if step.kind == "publish":
                continue
            need = step_resources(step)
            missing = _missing(need, have)
            if missing:
                self.finish(unavailable(step, missing))
                continue
            up = {role: self.futures.get(dep) or self.done(dep) for role, dep in step.deps.items()}
            if any(v is None for v in up.values()):  # an upstream that was never submitted
                self.finish({"status": "blocked", "task": step.task, "reason": "after an unplanned step"})
                continue
            self.futures[step.task] = self.client.submit(
                run_task,
                step.to_dict(),
                self.settings(step),
                up,
                key=f"{step.task}#{self.tag}",
                resources=need or None,
                pure=False,
            )

    def finish(self, result: dict[str, Any]) -> None:
        report_step(self.events, self.outcome, result)
        self.publish_ready()

    def publish_ready(self) -> None:
        """Publish every target whose steps have all finished, here (the output folder is ours)."""
        from recipekit.graph.execute import execute
        from recipekit.graph.executors.worker import blocked

        for step in self.steps:
            if step.kind != "publish" or step.task in self.outcome.results:
                continue
            up = {role: self.done(dep) for role, dep in step.deps.items()}
            if any(v is None for v in up.values()):
                continue
            result = blocked(step.to_dict(), up)  # type: ignore[arg-type]
            if result is None:
                upstream = {role: {**res, "task": step.deps[role]} for role, res in up.items()}  # type: ignore[dict-item]
                result = execute(step.to_dict(), settings_of(self.settings_by_recipe, step.task), upstream)
                result["task"] = step.task
            report_step(self.events, self.outcome, result)

    def collect(self) -> None:
        """Wait for every task, printing each as it ends; give up on tasks no worker can take."""
        from distributed import wait

        pending = {f: t for t, f in self.futures.items()}
        while pending:
            try:
                done = wait(list(pending), timeout=POLL_S, return_when="FIRST_COMPLETED").done
            except TimeoutError:
                done = set()
            for fut in done:
                self.finish(self.result_of(pending.pop(fut), fut))
            self.tick(pending)
            if pending:
                self.drop_stranded(pending)

    def result_of(self, task: str, fut: Any) -> dict[str, Any]:
        if fut.status == "finished":
            return fut.result()
        ups = [self.done(d) or {} for d in self.by_task[task].deps.values()]
        gone = [u for u in ups if u.get("status") == "unavailable" and "needs resource" in u.get("reason", "")]
        if fut.status == "cancelled" and gone:  # an upstream step no worker could take
            return unavailable(self.by_task[task], [], reason=gone[0]["reason"])
        try:
            exc = fut.exception()
        except Exception as err:  # noqa: BLE001 - a cancelled future
            exc = err
        return {"status": "failed", "task": task, "error": f"{type(exc).__name__}: {exc}", "seconds_wall": 0.0}

    def drop_stranded(self, pending: dict[Any, str]) -> None:
        """Tasks whose resource no connected worker offers any more: unavailable, not a hang."""
        have = offered(self.client)
        for fut, task in list(pending.items()):
            missing = _missing(step_resources(self.by_task[task]), have)
            if missing:
                fut.cancel()
                pending.pop(fut)
                self.finish(unavailable(self.by_task[task], missing, left=True))

    def tick(self, pending: dict[Any, str]) -> None:
        """A started event for each task a worker has begun (the scheduler's processing list)."""
        running = self.client.processing()
        for keys in running.values():
            for k in keys:
                task = str(k).split("#", 1)[0]
                if task in self.by_task and task not in self.started:
                    self.started.add(task)
                    step_started(self.events, task)


def check_scheduler(address: str, remote_url: str | None, remote_mode: str) -> None:
    """UsageError (exit 2) unless `address` is tcp://HOST:PORT and a writable remote cache is set."""
    import re

    from recipekit.core.errors import UsageError

    if not re.fullmatch(r"(tcp|tls)://[^:/\s]+:\d{1,5}", address):
        raise UsageError(f"--scheduler: expected tcp://HOST:PORT (a `dask scheduler` address), got {address!r}")
    if not remote_url:
        raise UsageError(
            "--scheduler: the steps' files travel between workers through a remote cache: "
            "give --remote-cache URL (s3://bucket/prefix, file:///shared/mount, ...) or set RECIPEKIT_REMOTE_CACHE"
        )
    if remote_mode == "read-only":
        raise UsageError("--scheduler: workers upload what they build, so the remote cache cannot be read-only")


def on_scheduler(
    address: str, steps: list[Step], settings_by_recipe: dict[str, dict[str, Any]], events: EventSink = discard
) -> Outcome:
    """Connect to the `dask scheduler` at `address` and run the steps on its workers."""
    from distributed import Client

    from recipekit.core.errors import UsageError
    from recipekit.graph.runner import key_steps

    steps = key_steps(steps, settings_by_recipe)
    try:
        client = Client(address, timeout=15)
    except (OSError, TimeoutError) as exc:
        raise UsageError(f"--scheduler: cannot reach {address} ({type(exc).__name__}: {exc})") from None
    with client:
        try:
            client.wait_for_workers(1, timeout=60)
        except TimeoutError:
            raise UsageError(f"--scheduler: no worker connected to {address} within 60 s") from None
        return run_on_dask(client, steps, settings_by_recipe, events, on_cluster=True)


def run_on_dask(
    client: Any,
    steps: list[Step],
    settings_by_recipe: dict[str, dict[str, Any]],
    events: EventSink = discard,
    on_cluster: bool = True,
) -> Outcome:
    """Run `steps` (keyed) as Dask tasks on `client`'s workers; returns the same Outcome as a local run."""
    outcome = Outcome()
    graph = Graph(client, steps, settings_by_recipe, events, outcome, on_cluster)
    graph.submit_all()
    graph.publish_ready()
    graph.collect()
    outcome.exit_code = 1 if outcome.failed() else 0
    return outcome
