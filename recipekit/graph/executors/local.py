"""Runs recipekit's doit tasks on this machine with doit itself: `DoitMain` with a `TaskLoader2`,
doit's runner, and a reporter feeding the build's step events (executors.events).

What doit does not do, and is added here:
- Longest chain first: doit dispatches ready tasks first in, first out; here a free worker takes
  the ready step that leads the longest chain of steps after it (a cell's fix and gates start
  before another cell's last gate, so the run ends with every worker busy).
- Steps that need no worker run in this process, between dispatches: a publish (it copies files
  into the output folder), a step whose entry is already in the local cache (a cached gate failure
  to report) or in the remote one (to fetch). A run in which nothing must be built starts no process.
- A watchdog: doit's process runner waits on its result queue for ever; a worker that dies (OOM
  killer, SIGKILL) fails the step it was running (the build exits 1), and the other workers go on;
  if none is left, the steps handed to them fail too.
- doit's state file lives in the cache folder (`doit/state.sqlite3`); no doit.cfg or pyproject
  [tool.doit] is read. It never decides whether a step is built: the cache does (`uptodate`).
"""

from __future__ import annotations

import heapq
import itertools
import os
import queue
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from doit.cmd_base import DoitCmdBase, TaskLoader2
from doit.cmd_run import Run
from doit.control import TaskControl, TaskDispatcher
from doit.dependency import SqliteDB
from doit.doit_cmd import DoitMain
from doit.loader import generate_tasks
from doit.runner import JobHold, JobTaskPickle, MReporter, MRunner, Runner
from doit.task import Stream

POLL_S = 0.5
"""How often the watchdog looks at the workers while no result arrives."""


@dataclass
class RunSpec:
    """How BuildRun runs: `jobs` worker processes (0: in this process), forked by `server`."""

    jobs: int
    server: Any  # executors.workers.Forkserver
    steps: list[Any]
    settings_by_recipe: dict[str, dict[str, Any]]

    def plugins(self) -> list[tuple[str, str]]:
        """What the workers should import: the plugins of the steps whose entry is not in the local cache."""
        from recipekit.graph.executors.workers import step_plugins
        from recipekit.graph.settled import plan_skip, store_of

        def pending(step: Any) -> bool:
            settings = self.settings_by_recipe[step.task.split(":", 1)[0]]
            return step.kind != "publish" and plan_skip(step) is None and store_of(settings).read(step.key) is None

        return step_plugins([s for s in self.steps if pending(s)])


def state_file(cache: str | Path) -> Path:
    """doit's own state (ignored tasks, last results shown by dumpdb), kept in the cache folder."""
    return Path(cache).resolve() / "doit" / "state.sqlite3"


def doit_config(cache: str | Path, **extra: Any) -> dict[str, Any]:
    """What a dodo file's DOIT_CONFIG would say: the state file in the cache, quiet tasks."""
    path = state_file(cache)
    path.parent.mkdir(parents=True, exist_ok=True)
    return {"dep_file": str(path), "backend": "sqlite3", "verbosity": 0, **extra}


class StateDB(SqliteDB):
    """doit's sqlite3 state; if another build holds the file (sqlite's lock wait ran out), this
    run's state is not written: it only records what doit shows (`dumpdb`), never what is built."""

    def dump(self) -> None:
        import sqlite3

        try:
            super().dump()
        except sqlite3.OperationalError:
            self._conn.close()


class StepLoader(TaskLoader2):
    """doit's loader API over ready task dicts (graph.doit_tasks); `config`: the DOIT_CONFIG."""

    def __init__(self, tasks: list[dict[str, Any]], config: dict[str, Any], run: Any = None) -> None:
        super().__init__()
        self.tasks, self.doit_config, self.run = tasks, config, run

    def load_doit_config(self) -> dict[str, Any]:
        return dict(self.doit_config)

    def load_tasks(self, cmd: Any, pos_args: list[str]) -> list[Any]:
        return list(generate_tasks("recipekit", (dict(t) for t in self.tasks)))


def chain_lengths(tasks: dict[str, Any]) -> dict[str, int]:
    """Per task, the number of tasks in the longest chain from it to a task nothing depends on."""
    below: dict[str, list[str]] = {name: [] for name in tasks}
    for name, task in tasks.items():
        for dep in task.task_dep:
            below.setdefault(dep, []).append(name)
    memo: dict[str, int] = {}

    def length(name: str) -> int:
        if name not in memo:
            memo[name] = 1 + max((length(t) for t in below.get(name, [])), default=0)
        return memo[name]

    return {name: length(name) for name in tasks}


class _Ready:
    """doit's ready queue (a deque it appends to and pops from the left), longest chain first."""

    def __init__(self, chain: dict[str, int]) -> None:
        self.chain, self.heap, self.order = chain, [], itertools.count()

    def append(self, node: Any) -> None:
        heapq.heappush(self.heap, (-self.chain.get(node.task.name, 0), next(self.order), node))

    def popleft(self) -> Any:
        return heapq.heappop(self.heap)[2]

    def __len__(self) -> int:
        return len(self.heap)


class LongestChainFirst(TaskDispatcher):
    """doit's dispatcher, taking the selected tasks and then the ready ones longest chain first."""

    def __init__(self, tasks: dict[str, Any], targets: dict[str, Any], selected: list[str]) -> None:
        chain = chain_lengths(tasks)
        super().__init__(tasks, targets, sorted(selected, key=lambda name: -chain.get(name, 0)))
        self.ready = _Ready(chain)


def needs_worker(task: Any) -> bool:
    """False for a step this process runs itself: a publish, or one whose entry is in the local cache
    (a cached gate failure to report) or in the remote one (to fetch)."""
    from recipekit.graph.doit_tasks import run
    from recipekit.graph.settled import in_remote, store_of

    meta = (task.meta or {}).get("recipekit")
    if meta is None or meta["kind"] == "publish":
        return False
    settings = next(a for a in task.actions if getattr(a, "py_callable", None) is run).args[1]
    if settings.get("force"):
        return True
    return store_of(settings).read(meta["key"]) is None and not in_remote(meta["key"])


class _Queue:
    """doit's job and result queues, made on first use: a run in which nothing must be built starts
    no process, not even the resource tracker their semaphores need. In this process the result
    queue's `get` lets the watchdog look at the workers while it waits."""

    watchdog: Any = None
    tasks: dict[str, Any] = {}

    def __init__(self) -> None:
        self._queue: Any = None

    @property
    def queue(self) -> Any:
        if self._queue is None:
            import multiprocessing

            self._queue = multiprocessing.Queue()
        return self._queue

    def put(self, obj: Any) -> None:
        self.queue.put(obj)

    def empty(self) -> bool:
        return self._queue is None or self._queue.empty()

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        while self.watchdog is not None:
            try:
                return self.watchdog.seen(self.queue.get(timeout=POLL_S))
            except queue.Empty:
                lost = self.watchdog.lost(self.tasks)
                if lost is not None:
                    return lost
        return self.queue.get(block, timeout)

    def __reduce__(self) -> Any:
        return _as_is, (self.queue,)  # a worker gets the multiprocessing queue itself


def _as_is(obj: Any) -> Any:
    return obj


class Watchdog:
    """Which worker runs which step; the failure of a step whose worker died, or that no live worker
    is left to run."""

    def __init__(self, procs: list[Any]) -> None:
        self.procs = procs
        self.pending: set[str] = set()  # steps handed to the workers, without a result yet
        self.running: dict[int, str] = {}  # worker pid -> its step
        self.dead: set[int] = set()

    def seen(self, message: dict[str, Any]) -> dict[str, Any]:
        if message.get("reporter") == "execute_task" and "pid" in message:
            self.running[message["pid"]] = message["name"]
        elif "task" in message:  # a finished step
            self.pending.discard(message["name"])
            self.running = {pid: t for pid, t in self.running.items() if t != message["name"]}
        return message

    def lost(self, tasks: dict[str, Any]) -> dict[str, Any] | None:
        """The result message of a step lost with its worker, or None (nothing lost)."""
        for proc in self.procs:
            if proc.is_alive() or proc.exitcode == 0 or proc.pid in self.dead:
                continue
            self.dead.add(proc.pid)
            if proc.pid in self.running:
                how = f"killed by signal {-proc.exitcode}" if proc.exitcode < 0 else f"exit code {proc.exitcode}"
                return self._failed(tasks[self.running.pop(proc.pid)], f"the worker process running it died ({how})")
        if self.pending and not any(proc.is_alive() for proc in self.procs):
            return self._failed(tasks[sorted(self.pending)[0]], "no worker process is left to run it")
        return None

    def _failed(self, task: Any, why: str) -> dict[str, Any]:
        from recipekit.graph.doit_tasks import StepFailure

        self.pending.discard(task.name)
        failure = StepFailure({"status": "failed", "task": task.name, "error": why})
        return {"name": task.name, "failure": failure, "task": task.pickle_safe_dict(), "out": [], "err": []}


class StepRunner(MRunner):
    """doit's process runner with the additions of this module (see its docstring)."""

    Queue = staticmethod(_Queue)

    spec: RunSpec | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state.pop("watchdog", None)
        state.pop("spec", None)
        return state

    def get_next_job(self, completed: Any) -> Any:
        """doit's MRunner.get_next_job, except that a step needing no worker runs here at once."""
        if self._stop_running:
            return None
        node = completed
        while True:
            try:
                node = self.task_dispatcher.generator.send(node)
            except StopIteration:
                return None
            if node == "hold on":
                self.free_proc += 1
                return JobHold()
            if not self.select_task(node, self.tasks):
                continue
            if needs_worker(node.task):
                self.watchdog.pending.add(node.task.name)
                return JobTaskPickle(node.task)
            self.process_task_result(node, self.execute_task(node.task))
            if self._stop_running:
                return None

    def _run_start_processes(self, job_q: Any, result_q: Any) -> list[Any]:
        """doit's: one worker per job ready at the start, up to num_process (none if nothing must be
        built); here with the watchdog on the result queue."""
        procs: list[Any] = []
        self.watchdog = result_q.watchdog = Watchdog(procs)
        result_q.tasks = self.tasks
        for _ in range(self.num_process):
            job = self.get_next_job(None)
            if job is None:
                break
            job_q.put(job)
            procs.append(self.new_worker(job_q, result_q))
        return procs

    def new_worker(self, job_q: Any, result_q: Any) -> Any:
        if self.spec is not None:
            self.spec.server.start(self.spec.plugins())  # now, unless the warm start did
        proc = self.Child(target=self.execute_task_subprocess, args=(job_q, result_q, self.reporter.__class__))
        proc.start()
        return proc

    def execute_task(self, task: Any) -> Any:
        if isinstance(self.reporter, MReporter):  # in a worker: tell the build which process has the step
            self.result_q.put({"name": task.name, "reporter": "execute_task", "pid": os.getpid()})
            return task.execute(self.stream)
        return super().execute_task(task)


class BuildRun(Run):
    """doit's `run` with recipekit's runner and dispatcher (the loader's `run` says how many workers)."""

    name = "run"

    def get_reporters(self) -> dict[str, Any]:
        return {}  # the loader's config names the reporter (executors.events); no plugin is looked up

    def get_backends(self) -> dict[str, Any]:
        return {"sqlite3": StateDB}

    def _execute(self, verbosity: Any = None, reporter: Any = None, continue_: bool = False) -> int:
        control = TaskControl(self.task_list)
        control.process(self.sel_tasks)
        spec = self.loader.run
        args = [self.dep_manager, reporter, continue_, False, Stream(verbosity)]
        dispatcher = LongestChainFirst(control.tasks, control.targets, control.selected_tasks)
        if not spec.jobs:
            return Runner(*args).run_all(dispatcher)
        from recipekit.graph.executors.workers import start_method

        runner = StepRunner(*args, num_process=spec.jobs)
        runner.spec = spec
        with start_method():
            return runner.run_all(dispatcher)


class DumpState(DoitCmdBase):
    """doit's `dumpdb` for the state file recipekit keeps (sqlite3; doit's own reads dbm files only)."""

    name = "dumpdb"
    doc_purpose = "dump doit's state of these tasks (ignored tasks, last results)"
    doc_usage = ""

    def _execute(self, dep_file: str) -> int:
        import json
        import pprint
        import sqlite3

        self.dep_manager.close()
        with sqlite3.connect(f"file:{dep_file}?mode=ro", uri=True) as conn:
            for task, data in conn.execute("select task_id, task_data from doit order by task_id"):
                print(f"{task} -> {pprint.pformat(json.loads(data), indent=4, width=100)}")
        return 0


class Main(DoitMain):
    """doit's command line over recipekit's tasks; no config file is read (pyproject.toml, doit.cfg)."""

    BIN_NAME = "recipekit doit"

    def __init__(self, loader: StepLoader, commands: tuple[type, ...]) -> None:
        super().__init__(loader, config_filenames=())
        self.commands = commands

    def get_cmds(self) -> Any:
        from doit.plugin import PluginDict

        cmds = PluginDict()
        for cmd in self.commands:
            cmds[cmd.get_name()] = cmd
        return cmds
