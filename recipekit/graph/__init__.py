"""The build graph: plan (recipe -> steps with keys), execution (inline, pool, Dask), and status."""
