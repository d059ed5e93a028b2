"""Recipes: the schema, loading through Hydra's compose API, and error reporting."""
