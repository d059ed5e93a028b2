"""Test helpers shared by the test modules (on pytest's pythonpath: `from helpers.common import ...`)."""
