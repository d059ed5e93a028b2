"""Executors of the step graph beyond the in-process run of -j 1 (graph/runner.py).

- `cluster.run_on_dask`: every step a Dask task with its dependencies, on a distributed cluster
  (`--scheduler tcp://HOST:PORT`: files travel through the remote cache).
- `local.run_local`: `-j N` on a pool of pre-loaded worker processes sharing the local cache.
- `warm.warm_start`: the console command's workers forked before the recipe is composed, when a
  build is likely (its composition not remembered): they load torch & co. while it plans.
- `worker.run_task`: what a worker (Dask's or the pool's) runs for one step (imports nothing heavy until the step does).
"""
