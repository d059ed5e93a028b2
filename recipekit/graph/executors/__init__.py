"""Executors of the step graph beyond doit's in-process runner.

- `cluster.run_on_dask`: every step a Dask task with its dependencies, on a distributed cluster
  (`--scheduler tcp://HOST:PORT`: files travel through the remote cache) or on a LocalCluster of
  pre-loaded worker processes (`-j N`: they share the local cache).
- `worker.run_task`: what a Dask worker runs for one step (imports nothing heavy until the step does).
"""
