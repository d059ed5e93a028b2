"""recipekit's doit tasks on Dask: each task's action (graph.doit_tasks) submitted with the results
of the tasks it depends on (`task_dep`) as futures. The same task definitions as a local run; only
the runner differs: the Dask scheduler orders the tasks, and every step goes to a worker, whose
action asks the caches itself (its own local cache, then the remote one). A worker that finds a
step's entry in its local cache makes sure the remote cache holds it (uploads it when missing)
before it reports the step, so the files always travel.

Resources: a step runs only on workers that offer what its plugin declares (`Plugin.resources`,
e.g. {"trt": 1}). A step whose resource no worker offers (or no longer offers, after a worker
left) is `unavailable` naming the resource, never left waiting. Publish steps run here, on the
machine that asked for the build, from entries fetched (verified) out of the caches. Step lines
are events here as each task starts and finishes, the same StepEvents as a local run, so the
console shows them alike.
"""

from __future__ import annotations

import uuid
from typing import Any

from recipekit.core.events import EventSink, StepEvent, discard
from recipekit.graph.plan import Step
from recipekit.graph.results import Outcome

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


def _unwrapped(result: Any) -> dict[str, Any]:
    """A step action's result: its dict, also out of the StepFailure a failed step returns to doit."""
    return getattr(result, "result", result)


class Graph:
    """One run of `steps` (their doit task dicts) on `client`; results recorded in `outcome` as they finish."""

    def __init__(
        self,
        client: Any,
        steps: list[Step],
        settings_by_recipe: dict[str, dict[str, Any]],
        events: EventSink,
        outcome: Outcome,
        on_cluster: bool,
    ) -> None:
        from recipekit.graph.doit_tasks import step_of, step_tasks

        self.client, self.steps, self.events, self.outcome = client, steps, events, outcome
        self.settings_by_recipe = settings_by_recipe
        self.started: set[str] = set()
        self.on_cluster = on_cluster
        self.by_task = {s.task: s for s in steps}
        self.tasks = {t["basename"]: t for t in step_tasks(steps, settings_by_recipe) if step_of(t) is not None}
        self.futures: dict[str, Any] = {}  # task -> Future
        self.tag = uuid.uuid4().hex[:8]

    def done(self, task: str) -> dict[str, Any] | None:
        return self.outcome.results.get(task)

    def report(self, result: dict[str, Any]) -> None:
        self.outcome.results[result["task"]] = result
        self.events(StepEvent.finished(result))

    def submit_all(self) -> None:
        have = offered(self.client)
        for step in self.steps:
            if step.kind == "publish":
                continue
            need = step_resources(step)
            missing = _missing(need, have)
            if missing:
                self.finish(unavailable(step, missing))
                continue
            task = self.tasks[step.task]
            up = {dep: self.futures.get(dep) or self.done(dep) for dep in task["task_dep"]}
            if any(v is None for v in up.values()):  # an upstream that was never submitted
                self.finish({"status": "blocked", "task": step.task, "reason": "after an unplanned step"})
                continue
            action, (step_json, settings, skipped) = task["actions"][0]
            self.futures[step.task] = self.client.submit(
                action,
                step_json,
                {**settings, "on_cluster": self.on_cluster},  # the worker's own cache (graph.execute)
                skipped,
                results=up,
                key=f"{step.task}#{self.tag}",
                resources=need or None,
                pure=False,
            )

    def finish(self, result: dict[str, Any]) -> None:
        self.report(result)
        self.publish_ready()

    def publish_ready(self) -> None:
        """Publish every target whose steps have all finished, here (the output folder is ours)."""
        for step in self.steps:
            if step.kind != "publish" or step.task in self.outcome.results:
                continue
            task = self.tasks[step.task]
            up = {dep: self.done(dep) for dep in task["task_dep"]}
            if any(v is None for v in up.values()):
                continue
            action, args = task["actions"][0]
            self.report(_unwrapped(action(*args, results=up)))

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
            return _unwrapped(fut.result())
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
                    self.events(StepEvent.started(task))


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
    from recipekit.graph.keys import key_steps

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
