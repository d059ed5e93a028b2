"""`-j N` on this machine: a Dask LocalCluster of N worker processes that import the heavy libraries
once, as they start (while this process plans), and then run step after step without re-importing.

Started only when some step must run: a no-op build never starts it and never imports torch.
The workers share this machine's cache, so no file travels; each gets its share of the cores.
"""

from __future__ import annotations

import os
from typing import Any

from recipekit.graph.plan import Step

QUIET_WORKER = {
    "DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED": "False",  # its stack sampler holds the GIL every 10 ms
    "DASK_DISTRIBUTED__ADMIN__SYSTEM_MONITOR__INTERVAL": "2s",
}


def must_run(steps: list[Step], envs: dict[str, dict[str, Any]]) -> bool:
    """True when some (keyed) step's entry is neither in the local cache nor in the remote one."""
    from recipekit.cache.store import Store
    from recipekit.graph.status import _in_remote

    for step in steps:
        env = envs[step.task.split(":", 1)[0]]
        if env.get("force"):
            return True
        if step.kind == "publish":
            continue
        if Store(env["cache"], readonly=True).get(step.key) is None and not _in_remote(env, step.key):
            return True
    return False


def local_cluster(jobs: int) -> Any:
    """A LocalCluster of `jobs` single-threaded worker processes on 127.0.0.1, without a dashboard."""
    import dask.config
    from distributed import LocalCluster

    os.environ.update(QUIET_WORKER)
    dask.config.refresh()
    return LocalCluster(
        n_workers=jobs,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        silence_logs=50,
        scheduler_port=0,
    )


def run_local(steps: list[Step], envs: dict[str, dict[str, Any]], jobs: int, events: Any = None) -> Any:
    """The steps on `jobs` pre-loaded local worker processes; the Outcome of a local run."""
    from distributed import Client

    from recipekit.core.events import discard
    from recipekit.graph.executors.cluster import run_on_dask
    from recipekit.graph.executors.worker import preload

    threads = max(1, (os.cpu_count() or 1) // jobs)
    envs = {name: {**env, "threads": threads} for name, env in envs.items()}
    with local_cluster(jobs) as cluster, Client(cluster) as client:
        for address in client.scheduler_info(n_workers=-1)["workers"]:
            client.submit(preload, workers=[address], pure=False, key=f"preload-{address}")
        return run_on_dask(client, steps, envs, events or discard, on_cluster=False)
