"""Executors of recipekit's doit tasks (graph.doit_tasks): one task definition, two executors.

- `local`: doit itself (`DoitMain`, a `TaskLoader2`, doit's runner): in this process for -j 1, on
  worker processes for -j N, longest chain first, with a watchdog for a worker that dies.
- `workers`: the forkserver those workers are forked from (heavy imports done once), and the warm
  start of the `recipekit` command; `boot` is its preload.
- `events`: the doit reporter that turns doit's callbacks into the build's step events.
- `cluster`: the same task dicts on a Dask cluster (`--scheduler tcp://HOST:PORT`: files travel
  through the remote cache).
"""
