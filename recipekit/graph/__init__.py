"""The build graph: plan (recipe -> steps with keys), execution on doit, and status."""
