"""Every error recipekit raises on purpose. Only the CLI turns these into exit codes."""

from __future__ import annotations


class RecipeKitError(Exception):
    """Root of recipekit's errors. `exit_code` is what the CLI exits with."""

    exit_code = 2


class RecipeError(RecipeKitError):
    """Bad input in a recipe or an override: names the file, the key path and what was expected."""

    def __init__(self, file: str, key_path: str, msg: str) -> None:
        self.file, self.key_path, self.msg = str(file), key_path, msg
        where = f"{self.file}: {key_path}: " if key_path else f"{self.file}: "
        super().__init__(where + msg)


class UsageError(RecipeKitError):
    """A command-line argument that is not usable (a missing file, an unknown target)."""


class StepFailed(RecipeKitError):
    """A build step raised; carries the task name. The cache keeps nothing of the failed step."""

    exit_code = 1

    def __init__(self, task: str, msg: str) -> None:
        self.task = task
        super().__init__(f"{task}: {msg}")


class GateFailed(RecipeKitError):
    """A validation gate did not pass, so its target was not published."""

    exit_code = 1


class Unavailable(RecipeKitError):
    """A capability that cannot run on this machine (no GPU, no browser): a third status, not a pass."""

    exit_code = 1

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)
