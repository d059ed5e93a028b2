"""The core: plugin contract, registries, errors and tool versions. Imports nothing else of recipekit."""
